"""The closed loop, end to end, in the production layout (tests/faults/world.py): every service in two replica
processes behind Envoy, their RQ workers and one scheduler on Redis, PostgreSQL, rbldnsd and nsd, MailWizz's table
in MariaDB under the strict MailWizz stand-in, two PowerMTA nodes over real OpenSSH, the Telegram stand-in.

Two IPs of `sos-expat` on a one-day-per-step schedule (50, 200, 500 a day), one on each node; the tenant's IPs are
scanned every 2 s; the days are moved by the services' clock file (EE_CLOCK_OFFSET_FILE), everything else is real
time. The tests run in order, each from where the one before left the system:

1. a clean day on each node's accounting file -> both IPs climb to 200 a day, in MailWizz and in PowerMTA;
2. IP A listed on Spamhaus -> within 10 s STANDBY, its MailWizz server inactive, its queues paused and its VMTA out
   of the pool on its node, one Telegram message in the tenant's chat and one in the admins', no volume for it;
3. delisted -> after the cool-down (3 s) it warms again one step lower (50), and MailWizz and PowerMTA follow;
4. a day with 6 % bounces on IP B -> one step back (50), and both follow;
5. listed again while a replica of each service, the workers and Redis are killed with SIGKILL -> the loop completes
   once they are back, no alert twice, no event lost.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.faults.world import FaultWorld, describe, serving
from tests.harness.servers import wait_until

pytestmark = pytest.mark.e2e

TENANT = "sos-expat"
TENANT_CHAT = -1002000000001
ADMIN_CHAT = -1002000000099
SCHEDULE = "loop-daily"
STEPS = (50, 200, 500)
IP_A, IP_B = "192.0.2.50", "192.0.2.60"  # inside the sending domain's SPF
NODE_OF = {IP_A: "pmta-a", IP_B: "pmta-b"}
COOLDOWN_SECONDS = 3
SERVICES = ("ip-pool", "reputation", "campaign-gateway", "notifier")
LOOP_WORKERS = ("ip-pool", "reputation", "notifier")  # campaign-gateway's runs for every fault test
ONE_CYCLE: dict[int, list[str]] = {}  # what a chat was told about IP A over one listing and delisting
HEADER = "type,timeLogged,timeQueued,orig,rcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,dlvSourceIp,vmta,jobId"


def vmta(address: str) -> str:
    return f"vmta-{address.replace('.', '-')}"


# -- what each side shows --------------------------------------------------------------------------------------


def ip(world: FaultWorld, address: str) -> dict:
    got = world.rest("GET", f"/api/v2/ips/{address}", "sos")
    assert got.status_code == 200, got.text
    return got.json()


def node_side(world: FaultWorld, address: str) -> tuple[bool, int | None, bool]:
    """(VMTA in the tenant's pool, its daily quota in the running config, its queues paused) on the IP's node."""
    node = world.pmta_node(NODE_OF[address])
    config = node.active_config()
    name = vmta(address)
    block = re.search(rf"<virtual-mta {name}>(.*?)</virtual-mta>", config, re.S)
    quota = re.search(r"(\d+)/day", block.group(1)) if block else None
    pools = re.findall(r"<virtual-mta-pool [^>]*>(.*?)</virtual-mta-pool>", config, re.S)
    in_pool = any(f"virtual-mta {name}\n" in pool for pool in pools)
    return in_pool, int(quota.group(1)) if quota else None, f"*/{name}" in node.queues()["paused"]


def mailwizz_side(world: FaultWorld, address: str) -> tuple[str, int, int] | None:
    row = world.delivery_server(address)
    return (row.status, row.daily_quota, row.hourly_quota) if row is not None else None


def sending_at(world: FaultWorld, address: str, daily: int) -> bool:
    """Both sides let the IP send `daily` a day: MailWizz's server active with it, the VMTA in the pool with it and
    its queues not paused."""
    mailwizz = mailwizz_side(world, address)
    in_pool, quota, paused = node_side(world, address)
    return (
        mailwizz is not None
        and mailwizz[0] == "active"
        and mailwizz[1] == daily
        and mailwizz[2] > 0
        and in_pool
        and quota == daily
        and not paused
    )


def alerts_about(world: FaultWorld, chat: int, address: str) -> list[str]:
    return [m.text for m in world.telegram.messages(chat) if address in m.text]


def first_line(message: str) -> str:
    return message.splitlines()[0]


def message_kind(line: str) -> str:
    """What a Telegram message about an IP tells, from its first line."""
    for marker, kind in (
        ("on standby", "standby"),
        ("delisted from", "delisted"),
        ("back in service", "back"),
        ("listed on", "listed"),
    ):
        if marker in line:
            return kind
    return line


def timed(checks: dict[str, Callable[[], bool]], deadline: float, start: float) -> dict[str, float]:
    """Seconds from `start` until each check first held; fails naming those still not holding at the deadline."""
    seen: dict[str, float] = {}
    while len(seen) < len(checks):
        for name, check in checks.items():
            if name not in seen:
                try:
                    if check():
                        seen[name] = time.monotonic() - start
                except Exception:
                    pass
        if time.monotonic() - start > deadline:
            missing = sorted(set(checks) - set(seen))
            raise AssertionError(f"not within {deadline:.0f} s: {missing} (done: {seen})")
        time.sleep(0.05)
    return seen


# -- the accounting files and the days ------------------------------------------------------------------------


def write_day(world: FaultWorld, address: str, when: datetime, *, delivered: int, bounced: int) -> Path:
    """A PowerMTA accounting file on the IP's node: `delivered` d records and `bounced` b records (bad-mailbox)
    logged at `when`, as PowerMTA writes them (a new file per rotation, CRLF lines)."""
    node = world.pmta_node(NODE_OF[address])
    stamp = when.strftime("%Y-%m-%d %H:%M:%S%z")
    lines = [HEADER]
    for n in range(delivered + bounced):
        bounce = n >= delivered
        lines.append(
            ",".join(
                [
                    "b" if bounce else "d",
                    stamp,
                    stamp,
                    f"bounce+{n}@sos-mail.test",
                    f"user{n}@r{n % 5 + 1}.test",
                    "failed" if bounce else "relayed",
                    "5.1.1" if bounce else "2.0.0",
                    "smtp;550 5.1.1 user unknown" if bounce else "smtp;250 2.0.0 ok",
                    "mx.r.test (198.51.100.7)",
                    "bad-mailbox" if bounce else "",
                    address,
                    vmta(address),
                    "",
                ]
            )
        )
    path = node.accounting_dir / f"acct-{when:%Y-%m-%d}-{address.replace('.', '-')}.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return path


def counted(world: FaultWorld, address: str, day: str) -> tuple[int, int]:
    """(sent, bounced) ip-pool holds for the IP's day (what its warmup decision will read)."""
    row = world.rows(
        "ip-pool",
        "SELECT coalesce(sum(sent), 0), coalesce(sum(bounced), 0) FROM delivery_stats WHERE address = :a AND day = :d",
        a=address,
        d=day,
    )[0]
    return int(row[0]), int(row[1])


def tenant_zone(world: FaultWorld) -> tuple[ZoneInfo, int]:
    """The tenant's time zone and the middle hour of its sending window (MailWizz's servers are active inside it)."""
    tenant = world.rest("GET", f"/api/v2/tenants/{TENANT}").json()
    start, end = tenant.get("sending_window_start_hour", 0), tenant.get("sending_window_end_hour", 24)
    middle = (start + (end - start) // 2) if end > start else start
    return ZoneInfo(tenant.get("time_zone") or "UTC"), middle


def next_sending_moment(world: FaultWorld, *, next_day: bool) -> datetime:
    """The middle of the tenant's sending window, on its next local day or (when still ahead) today, as the
    services' clocks see it now."""
    zone, hour = tenant_zone(world)
    now = world.now().astimezone(zone)
    moment = datetime.combine(now.date(), datetime.min.time(), zone) + timedelta(hours=hour)
    if next_day or moment <= now:
        moment = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), zone) + timedelta(hours=hour)
    return moment


# -- the loop's setting up --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loop(fault_world: FaultWorld) -> Iterator[FaultWorld]:
    world = fault_world
    stack = world.stack
    started = [stack.start_worker(service) for service in LOOP_WORKERS]
    started.append(stack.start_scheduler())
    world.telegram.add_chat(TENANT_CHAT, title="sos-expat alerts")
    world.telegram.add_chat(ADMIN_CHAT, title="email-engine admins")
    try:
        _set_up_loop(world)
        yield world
    finally:
        for name in started:
            stack.stop_process(name)
        world.rest("DELETE", "/api/v2/alert-routes/loop-admins")
        for node in world.pmta_nodes:
            world.rest(
                "PATCH",
                f"/api/v2/pmta-nodes/{node.name}?update_mask=accounting_push_only",
                json={"accounting_push_only": True},
            )


def _ok(reply: object) -> None:
    assert reply.status_code == 200, reply.text  # type: ignore[attr-defined]


def _set_up_loop(world: FaultWorld) -> None:
    _ok(world.rest("PATCH", f"/api/v2/alert-settings/{TENANT}", json={"allowed_telegram_chat_ids": [str(TENANT_CHAT)]}))
    _ok(
        world.rest(
            "POST", "/api/v2/alert-routes", "sos", json={"route_id": "loop", "telegram_chat_id": str(TENANT_CHAT)}
        )
    )
    _ok(
        world.rest(
            "POST",
            "/api/v2/alert-routes",
            json={"route_id": "loop-admins", "admin": True, "telegram_chat_id": str(ADMIN_CHAT)},
        )
    )
    # Scans every 2 s (an admin may go below the default, down to the installation's floor, 1 s here).
    settings = world.rest("PATCH", f"/api/v2/reputation/tenants/{TENANT}/scan-settings", json={"scan_interval": "2s"})
    _ok(settings)
    assert settings.json()["effective_scan_interval"] == "2s", settings.text
    _ok(
        world.rest(
            "PATCH",
            f"/api/v2/tenants/{TENANT}?update_mask=health.standby_cooldown,health.decision_hour",
            json={"health": {"standby_cooldown": f"{COOLDOWN_SECONDS}s", "decision_hour": 0}},
        )
    )
    steps = [{"daily_volume": v, "sending_days": 1} for v in STEPS[:-1]] + [
        {"daily_volume": STEPS[-1], "sending_days": 0}
    ]
    _ok(
        world.rest(
            "POST",
            f"/api/v2/tenants/{TENANT}/schedules",
            "sos",
            json={"schedule_id": SCHEDULE, "display_name": "a step a day", "steps": steps},
        )
    )
    # The day starts inside the sending window (MailWizz's servers are inactive outside it).
    world.shift_clock(next_sending_moment(world, next_day=False))
    for node in world.pmta_nodes:  # accounting pulled from the node's files over SFTP
        _ok(
            world.rest(
                "PATCH",
                f"/api/v2/pmta-nodes/{node.name}?update_mask=accounting_push_only",
                json={"accounting_push_only": False},
            )
        )
    for address, node in NODE_OF.items():
        _ok(
            world.rest(
                "POST",
                "/api/v2/ips",
                "sos",
                json={
                    "address": address,
                    "tenant_id": TENANT,
                    "pmta_node": node,
                    "helo_hostname": f"mta{address.split('.')[-1]}.sos-mail.test",
                    "schedule_id": SCHEDULE,
                },
            )
        )
    for address in NODE_OF:
        wait_until(lambda a=address: sending_at(world, a, STEPS[0]), 60, f"{address} sending at {STEPS[0]} a day")


# -- the loop ------------------------------------------------------------------------------------------------------


def test_1_a_clean_day_raises_the_quota_in_mailwizz_and_powermta(loop: FaultWorld) -> None:
    world = loop
    zone, _ = tenant_zone(world)
    today = world.now()
    for address in NODE_OF:
        write_day(world, address, today, delivered=STEPS[0], bounced=0)
    day = today.astimezone(zone).date().isoformat()
    for address in NODE_OF:
        wait_until(lambda a=address: counted(world, a, day) == (STEPS[0], 0), 30, f"{address}'s day pulled and counted")
    world.shift_clock(next_sending_moment(world, next_day=True))
    start = time.monotonic()
    seconds = timed({a: (lambda a=a: sending_at(world, a, STEPS[1])) for a in NODE_OF}, 60, start)
    print(f"\nclean day -> {STEPS[1]}/day in MailWizz and PowerMTA after {seconds} s")
    for address in NODE_OF:
        decisions = world.rest("GET", f"/api/v2/ips/{address}/decisions", "sos").json()["decisions"]
        assert any(d.get("action") == "ADVANCE" for d in decisions), decisions
        quota = ip(world, address)["quota"]
        assert mailwizz_side(world, address) == ("active", quota["daily"], quota["hourly"]), quota


def test_2_a_listing_stops_the_ip_everywhere_within_10_seconds(loop: FaultWorld) -> None:
    world = loop
    world.set_listed([IP_A])
    start = time.monotonic()
    seconds = timed(
        {
            "ip-pool STANDBY": lambda: ip(world, IP_A)["state"] == "IP_STATE_STANDBY",
            "MailWizz server inactive": lambda: (mailwizz_side(world, IP_A) or ("",))[0] == "inactive",
            "PowerMTA queues paused": lambda: node_side(world, IP_A)[2],
            "PowerMTA VMTA out of the pool": lambda: not node_side(world, IP_A)[0],
            "Telegram tenant chat": lambda: len(alerts_about(world, TENANT_CHAT, IP_A)) >= 1,
            "Telegram admin chat": lambda: len(alerts_about(world, ADMIN_CHAT, IP_A)) >= 1,
        },
        10,
        start,
    )
    print(f"\nlisted -> stopped everywhere: { ({k: round(v, 2) for k, v in seconds.items()}) }")
    print(f"listed -> all done in {max(seconds.values()):.2f} s")
    time.sleep(2)  # a second message would have come by now
    for chat in (TENANT_CHAT, ADMIN_CHAT):
        told = alerts_about(world, chat, IP_A)
        assert len(told) == 1, "\n----\n".join(told)
    print(f"the tenant's chat was told:\n{alerts_about(world, TENANT_CHAT, IP_A)[0]}")
    allocation = world.rest(
        "POST", f"/api/v2/tenants/{TENANT}:allocate", "sos", json={"volume": 100, "validate_only": True}
    )
    _ok(allocation)
    assert IP_A not in {a["address"] for a in allocation.json().get("allocations", [])}, allocation.text
    assert IP_B in {a["address"] for a in allocation.json().get("allocations", [])}, allocation.text


def test_3_delisted_it_warms_again_one_step_lower_everywhere(loop: FaultWorld) -> None:
    world = loop
    world.set_listed([])
    start = time.monotonic()
    seconds = timed({"warming at 50 on both sides": lambda: sending_at(world, IP_A, STEPS[0])}, 60, start)
    got = ip(world, IP_A)
    assert got["state"] == "IP_STATE_WARMING" and got["quota"]["daily"] == STEPS[0], got
    print(f"\ndelisted -> warming at {STEPS[0]}/day everywhere after {seconds} s (cool-down {COOLDOWN_SECONDS} s)")
    time.sleep(2)  # the delisting's and the resumption's messages are out
    for chat in (TENANT_CHAT, ADMIN_CHAT):
        ONE_CYCLE[chat] = alerts_about(world, chat, IP_A)
        print(f"chat {chat} was told over the first cycle: {[first_line(m) for m in ONE_CYCLE[chat]]}")


def test_4_a_day_with_6_percent_bounces_steps_back_everywhere(loop: FaultWorld) -> None:
    world = loop
    zone, _ = tenant_zone(world)
    today = world.now()
    write_day(world, IP_B, today, delivered=141, bounced=9)  # 150 sent, 6 % bounced
    day = today.astimezone(zone).date().isoformat()
    wait_until(lambda: counted(world, IP_B, day) == (150, 9), 30, "the bouncy day pulled and counted")
    world.shift_clock(next_sending_moment(world, next_day=True))
    start = time.monotonic()
    seconds = timed({"B at 50 on both sides": lambda: sending_at(world, IP_B, STEPS[0])}, 60, start)
    decisions = world.rest("GET", f"/api/v2/ips/{IP_B}/decisions", "sos").json()["decisions"]
    assert decisions[0]["action"] == "STEP_BACK", decisions[0]
    print(f"\n6 % bounces -> {STEPS[0]}/day in MailWizz and PowerMTA after {seconds} s")
    # A's day had no mail: it holds (warmup counts sending days), both sides unchanged.
    assert sending_at(world, IP_A, STEPS[0])
    found = world.consistent()
    assert not found, describe(found)


def test_5_kill_9_of_every_service_and_redis_in_the_middle_of_the_loop(loop: FaultWorld) -> None:
    """IP A listed again; as soon as reputation has recorded it, SIGKILL to every replica of every service (no
    service is left to answer), every worker, the scheduler and Redis; all started again a second later. The loop still
    completes (stopped everywhere, then warming again everywhere once delisted), each chat is told the standby, the
    delisting and the return once each (nothing twice, nothing missing, nothing else), and no event is lost."""
    world = loop
    stack = world.stack
    told_before = {chat: len(alerts_about(world, chat, IP_A)) for chat in (TENANT_CHAT, ADMIN_CHAT)}
    listing_type = "emailengine.reputation.v1.IpListingChanged"
    recorded = len(world.events("reputation", listing_type))
    world.set_listed([IP_A])
    wait_until(lambda: len(world.events("reputation", listing_type)) > recorded, 10, "reputation recorded the listing")
    replicas = [replica for service in SERVICES for replica in stack.replicas_of(service)]
    killed = [*replicas, *(f"{s}-worker" for s in SERVICES), "scheduler"]
    world.redis.kill()
    for name in killed:
        stack.kill(name)
    start = time.monotonic()
    time.sleep(1)
    world.redis.start_again()
    for replica in replicas:
        stack.start_service(replica)
    for replica in replicas:  # started together, as an orchestrator would, then each waited for
        wait_until(lambda r=replica: serving(world, r), 60, f"{replica} serving again")
    for service in SERVICES:
        stack.start_worker(service)
    stack.start_scheduler()
    print(f"\nkilled {killed} and Redis; all back after {time.monotonic() - start:.1f} s")
    seconds = timed(
        {
            "ip-pool STANDBY": lambda: ip(world, IP_A)["state"] == "IP_STATE_STANDBY",
            "MailWizz server inactive": lambda: (mailwizz_side(world, IP_A) or ("",))[0] == "inactive",
            "PowerMTA queues paused": lambda: node_side(world, IP_A)[2],
            "PowerMTA VMTA out of the pool": lambda: not node_side(world, IP_A)[0],
            "Telegram tenant chat": lambda: len(alerts_about(world, TENANT_CHAT, IP_A)) > told_before[TENANT_CHAT],
            "Telegram admin chat": lambda: len(alerts_about(world, ADMIN_CHAT, IP_A)) > told_before[ADMIN_CHAT],
        },
        90,
        start,
    )
    print(f"listed, killed, restarted -> stopped everywhere: { ({k: round(v, 2) for k, v in seconds.items()}) }")
    world.set_listed([])
    wait_until(lambda: sending_at(world, IP_A, STEPS[0]), 60, "warming again everywhere")
    time.sleep(2)
    for chat in (TENANT_CHAT, ADMIN_CHAT):
        again = alerts_about(world, chat, IP_A)[told_before[chat] :]
        print(f"chat {chat} was told over the second cycle: {[first_line(m) for m in again]}")
        # Each chat is told the loop once, nothing twice: the standby (with the listing in it, or after a listing
        # message of its own when the standby came after the listing's wait for it: every ip-pool replica was down
        # then), the delisting and the return to warming; nothing else about the IP.
        shown = "\n----\n".join(again) + f"\n==== the first cycle: {[first_line(m) for m in ONE_CYCLE[chat]]}"
        assert len(set(again)) == len(again), shown
        kinds = Counter(message_kind(first_line(m)) for m in again)
        assert kinds == {"standby": 1, "delisted": 1, "back": 1} or kinds == {
            "listed": 1,
            "standby": 1,
            "delisted": 1,
            "back": 1,
        }, shown
    found = world.consistent()
    assert not found, describe(found)
