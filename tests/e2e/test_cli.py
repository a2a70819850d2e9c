"""The operator commands against the product as `make run` starts it (`emailengine run`, embedded, behind the real
Envoy), pointed at the sandbox the README tells a newcomer to start (the strict MailWizz stand-in with a real
MariaDB, nsd and rbldnsd). Each command runs as its own process, as an operator runs it.

The newcomer path is the README's own block, run line by line: if the README is wrong, this fails.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from libs.config import REPO_ROOT
from tests.harness.mariadb import MariadbServer
from tests.harness.servers import free_port, stack_env, wait_until
from tests.standins.sandbox import Sandbox, running_sandbox

pytestmark = pytest.mark.e2e

README = REPO_ROOT / "README.md"
CLI = [sys.executable, "-m", "libs.cli"]


@pytest.fixture(scope="module")
def sandbox(mariadb: MariadbServer) -> Iterator[Sandbox]:
    with running_sandbox(mariadb=mariadb, database="mailwizz_cli") as running:
        yield running


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory, sandbox: Sandbox) -> Iterator[dict[str, str]]:
    """`emailengine run` on the embedded default (what `make run` starts), with the sandbox's settings sourced."""
    data = tmp_path_factory.mktemp("cli-product")
    env = stack_env(data, extra=sandbox.env)
    env.pop("REDIS_URL")
    env.pop("DATABASE_URL")
    log = (data / "run.log").open("wb")
    proc = subprocess.Popen([*CLI, "run"], env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    health = f"http://127.0.0.1:{env['EE_GATEWAY_PORT']}/api/v2/health"
    try:
        wait_until(lambda: httpx.get(health, timeout=2).json()["status"] == "SERVING", 60, "emailengine run", proc)
        yield env
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def emailengine(
    env: dict[str, str], *args: str, cwd: Path | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, cwd=cwd or REPO_ROOT, input=stdin, capture_output=True, text=True, timeout=180
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The whole of stderr, checked to be one `error: ...` line and no traceback."""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0]


def newcomer_block() -> list[str]:
    """The README's newcomer commands: the bash block of "Your first IP, domain and campaign" that uses the CLI."""
    section = README.read_text().split("### Your first IP, domain and campaign", 1)[1]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return next(block for block in blocks if "emailengine health" in block).splitlines()


def test_the_readme_newcomer_path_adds_an_ip_checks_a_domain_and_creates_a_campaign(
    product: dict[str, str], sandbox: Sandbox, tmp_path: Path
) -> None:
    lines = iter(newcomer_block())
    outputs: dict[str, str] = {}
    for line in lines:
        heredoc = re.fullmatch(r"cat > (\S+) <<'EOF'", line.strip())
        if heredoc:
            body = []
            for content in lines:
                if content == "EOF":
                    break
                body.append(content)
            (tmp_path / heredoc.group(1)).write_text("\n".join(body) + "\n")
            continue
        args = shlex.split(line, comments=True)
        if not args:
            continue
        assert args[0] == ".venv/bin/emailengine", f"a README step the test cannot run: {line}"
        result = emailengine(product, *args[1:], cwd=tmp_path)
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
        outputs[" ".join(args[1:3])] = result.stdout

    assert "serving" in outputs["health"]
    assert "warming" in outputs["ips add"] and "pmta1" in outputs["ips add"]
    assert re.search(r"verdict\s+pass", outputs["domains check"])
    created = outputs["campaigns create"]
    assert re.search(r"state\s+sending", created) and re.search(r"contacts sent to\s+2 of 3", created)
    assert "malformed" in created and "not-an-address" in created
    assert "IP_STATE_" not in outputs["ips add"] and "CAMPAIGN_STATE_" not in created
    # MailWizz holds the list with its two subscribers and the campaign on the new IP's delivery server.
    customer = sandbox.customers["sos-expat"]
    (campaign,) = customer.campaigns.values()
    (mail_list,) = customer.lists.values()
    assert sorted(s.email for s in mail_list.subscribers.values()) == [
        "jean@inbox.sandbox.test",
        "marie@inbox.sandbox.test",
    ]
    assert len(campaign.delivery_servers) == 1
    assert "sending" in outputs["campaigns list"]


def test_json_prints_the_apis_answer_untouched(product: dict[str, str]) -> None:
    emailengine(product, "ips", "add", "192.0.2.20", "--tenant", "sos-expat", "--pmta-node", "pmta1")
    shown = emailengine(product, "ips", "show", "192.0.2.20", "--tenant", "sos-expat", "--json")
    assert shown.returncode == 0 and shown.stderr == ""
    token = emailengine(product, "token", "--tenant", "sos-expat").stdout.strip()
    direct = httpx.get(
        f"http://127.0.0.1:{product['EE_GATEWAY_PORT']}/api/v2/ips/192.0.2.20",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert shown.stdout == direct.text + "\n"
    assert json.loads(shown.stdout)["state"] == "IP_STATE_WARMING"


def test_a_large_list_streams_over_grpc_and_answers_like_rest(product: dict[str, str], tmp_path: Path) -> None:
    contacts = tmp_path / "people.csv"
    rows = [f"p{n}@inbox.sandbox.test;P{n};Gold" for n in range(40)]
    contacts.write_text("\ufeffE-mail;Firstname;Plan\n" + "\n".join(rows) + "\n")  # a French spreadsheet's CSV
    args = ["campaigns", "create", str(contacts), "--tenant", "sos-expat", "--template-id", "cold_v1"]
    streamed = emailengine(product, *args, "--stream", "--request-id", "cli-stream-1", "--json")
    assert streamed.returncode == 0, streamed.stderr
    campaign = json.loads(streamed.stdout)
    assert campaign["state"] == "CAMPAIGN_STATE_SENDING" and campaign["contact_count"] == 40
    # The same request over REST, with the same request_id: the same campaign, nothing made twice.
    again = emailengine(product, *args, "--no-stream", "--request-id", "cli-stream-1", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["campaign_id"] == campaign["campaign_id"]
    assert set(json.loads(again.stdout)) == set(campaign)


def test_bad_input_is_one_line_naming_the_field_and_exit_1(product: dict[str, str], tmp_path: Path) -> None:
    loopback = emailengine(product, "ips", "add", "127.0.0.1", "--tenant", "sos-expat")
    assert loopback.returncode == 1 and loopback.stdout == ""
    assert one_error_line(loopback).startswith("error: invalid address (ADDRESS): 127.0.0.1 is refused")

    gate = emailengine(product, "tenants", "update", "sos-expat", "--health-min-sample", "0")
    assert gate.returncode == 1
    assert "tenant.health.min_sample (--health-min-sample)" in one_error_line(gate)

    usage = emailengine(product, "campaigns", "create", "contacts.csv", "--tenant", "sos-expat")
    assert usage.returncode == 1 and "--template-id" in one_error_line(usage)

    no_email = tmp_path / "names.csv"
    no_email.write_text("name,city\nMarie,Paris\n")
    bad_file = emailengine(product, "campaigns", "create", str(no_email), "--tenant", "sos-expat", "--template-id", "x")
    assert bad_file.returncode == 1
    assert one_error_line(bad_file) == f"error: {no_email}: no email column (the header names: name, city)"


def test_a_stopped_gateway_is_one_line_and_exit_3(product: dict[str, str], tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    rest = emailengine(product, "ips", "list", "--tenant", "sos-expat", "--gateway", closed)
    assert rest.returncode == 3
    assert one_error_line(rest) == f"error: cannot reach the gateway at {closed}: connection refused"

    contacts = tmp_path / "c.csv"
    contacts.write_text("email\na@inbox.sandbox.test\n")
    args = ["campaigns", "create", str(contacts), "--tenant", "sos-expat", "--template-id", "cold_v1"]
    streamed = emailengine(product, *args, "--stream", "--gateway", closed)
    assert streamed.returncode == 3
    assert one_error_line(streamed) == f"error: cannot reach the gateway at {closed}: connection refused"

    health = emailengine(product, "health", "--gateway", closed)
    assert health.returncode == 3


def test_refused_calls_exit_2(product: dict[str, str]) -> None:
    viewer = emailengine(product, "token", "--tenant", "sos-expat", "--role", "viewer").stdout.strip()
    emailengine(product, "ips", "add", "192.0.2.30", "--tenant", "sos-expat")
    forbidden = emailengine(product, "ips", "pause", "192.0.2.30", "--token", viewer)
    assert forbidden.returncode == 2
    assert one_error_line(forbidden) == (
        "error: the token (subject sos-expat-viewer, viewer of sos-expat) is not allowed to do this: "
        "role viewer may only read"
    )
    admin_only = emailengine(product, "dead-letters", "list", "--tenant", "sos-expat")
    assert admin_only.returncode == 2 and "admin role required" in one_error_line(admin_only)
    missing = emailengine(product, "ips", "show", "192.0.2.99", "--tenant", "sos-expat")
    assert missing.returncode == 2 and one_error_line(missing) == "error: ip '192.0.2.99' not found"
    garbage = emailengine(product, "ips", "list", "--token", "not-a-token")
    assert garbage.returncode == 2 and "the gateway refused the token" in one_error_line(garbage)
    # Without a token, and nothing to sign one for.
    anonymous = emailengine({k: v for k, v in product.items() if k != "EE_TOKEN"}, "ips", "show", "192.0.2.30")
    assert anonymous.returncode == 1 and "no token" in one_error_line(anonymous)


def test_help_needs_no_gateway(product: dict[str, str]) -> None:
    env = {**product, "EE_GATEWAY_URL": f"http://127.0.0.1:{free_port()}"}
    top = emailengine(env, "--help")
    assert top.returncode == 0
    for group in ("ips", "campaigns", "domains", "dead-letters", "health"):
        assert group in top.stdout
    assert "Exit codes" in top.stdout
