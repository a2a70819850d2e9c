#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks run for real, when they are missing.
# One `apt-get update` at most, and only when something is to be installed.
set -euo pipefail
declare -A NEED=(
  [redis-server]=redis-server     # Redis + RQ and event streams
  [rbldnsd]=rbldnsd               # a real DNSBL server for the reputation tests
  [nsd]=nsd                       # a real authoritative DNS server for SPF/DKIM/DMARC/PTR checks
  [dnsperf]=dnsperf               # the DNS server's own ceiling, in the benchmark
  [pg_ctl]=postgresql             # a throwaway PostgreSQL cluster (initdb/pg_ctl)
  [sshd]=openssh-server           # a real OpenSSH server per PowerMTA node in the campaign-gateway tests
  [ssh-keygen]=openssh-client     # host and client keys for those servers
)
missing=()
for cmd in "${!NEED[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/"$cmd" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$cmd" ]; then
    missing+=("${NEED[$cmd]}")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian packages start their own daemons on the standard ports; the tests start their own
# instances on free loopback ports, so the system ones are stopped and not needed.
for svc in redis-server nsd rbldnsd; do
  (command -v systemctl >/dev/null && systemctl stop "$svc" >/dev/null 2>&1) || true
  pkill -x "$svc" >/dev/null 2>&1 || true
done
