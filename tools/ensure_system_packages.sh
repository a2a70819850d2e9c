#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks run for real, when they are missing.
# One `apt-get update` at most, and only when something is to be installed.
#
# It never stops or kills a process: the tests start their own servers on free loopback ports and stop only
# those. A package whose installation would start a system daemon (redis-server, nsd, mariadb, sshd...) is
# installed with starting services forbidden (policy-rc.d answering 101, the Debian way), so nothing is
# started behind anybody's back and nothing that was already running is touched.
set -euo pipefail
declare -A NEED=(
  [redis-server]=redis-server     # Redis + RQ and event streams
  [rbldnsd]=rbldnsd               # a real DNSBL server for the reputation tests
  [nsd]=nsd                       # a real authoritative DNS server for SPF/DKIM/DMARC/PTR checks
  [dnsperf]=dnsperf               # the DNS server's own ceiling, in the benchmark
  [pg_ctl]=postgresql             # a throwaway PostgreSQL cluster (initdb/pg_ctl)
  [mariadbd]=mariadb-server       # a real MariaDB holding MailWizz's delivery_server table
  [wrk]=wrk                       # HTTP load for the gateway benchmark
  [h2load]=nghttp2-client         # HTTP/2 (gRPC) load for the gateway benchmark
  [sshd]=openssh-server           # a real OpenSSH server per PowerMTA node in the campaign-gateway tests
  [ssh-keygen]=openssh-client     # host and client keys for those servers
  [promtool]=prometheus           # checks and unit-tests the alerting rules (deploy/prometheus)
)
missing=()
for cmd in "${!NEED[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/"$cmd" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$cmd" ]; then
    missing+=("${NEED[$cmd]}")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# Written by email-engine while installing test packages: start no daemon.\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
