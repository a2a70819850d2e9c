"""The delivery_server adapter on a real MariaDB holding MailWizz 2.1.13's real table."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

import phpserialize
import pymysql
import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine

from campaign_gateway.adapters.mailwizz_db import (
    MailwizzDbError,
    MailwizzDbSettings,
    MailwizzDeliveryServers,
    NewServerDefaults,
    additional_headers_meta,
    headers_from_meta,
)
from campaign_gateway.domain.quota_sync import (
    ChangeKind,
    IpSending,
    IpState,
    ServerSettings,
    ServerStatus,
    desired_server,
    plan_sync,
)
from tests.harness.mariadb import MariadbServer
from tests.harness.servers import free_port

pytestmark = pytest.mark.integration

_names = itertools.count()
NOW = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
DEFAULTS = NewServerDefaults(hostname="pmta1.example", from_email="news@sos-expat.example", port=2525)


@pytest.fixture
def database(mariadb: MariadbServer) -> Iterator[tuple[str, str]]:
    name = f"mailwizz_{next(_names)}"
    url = mariadb.create_mailwizz_database(name, prefix="mw_")
    yield name, url


@pytest.fixture
def servers(database: tuple[str, str]) -> Iterator[MailwizzDeliveryServers]:
    engine = create_engine(database[1])
    yield MailwizzDeliveryServers(engine, table_prefix="mw_", clock=lambda: NOW)
    engine.dispose()


def _query(mariadb: MariadbServer, database: str, sql: str, *args: object) -> list[tuple]:
    with pymysql.connect(host="127.0.0.1", port=mariadb.port, user="root", database=database) as connection:
        with connection.cursor() as cursor:
            cursor.execute(sql, args)
            rows = list(cursor.fetchall())
        connection.commit()
    return rows


def _hand_made_row(mariadb: MariadbServer, database: str, vmta: str, *, status: str = "active", **extra: object) -> int:
    """A row as an admin makes it in MailWizz's UI (so its meta_data is PHP's serialize())."""
    columns = {
        "type": "smtp-pmta",
        "name": f"hand {vmta}",
        "hostname": "pmta1.example",
        "username": "",
        "from_email": "x@example.com",
        "hourly_quota": 0,
        "daily_quota": 0,
        "meta_data": additional_headers_meta([("X-Virtual-MTA", vmta)]),
        "status": status,
        "date_added": "2024-01-01 00:00:00",
        "last_updated": "2024-01-01 00:00:00",
        **extra,
    }
    names = ", ".join(f"`{name}`" for name in columns)
    marks = ", ".join(["%s"] * len(columns))
    _query(mariadb, database, f"INSERT INTO mw_delivery_server ({names}) VALUES ({marks})", *columns.values())
    return int(_query(mariadb, database, "SELECT MAX(server_id) FROM mw_delivery_server")[0][0])


def _ip(vmta: str, state: IpState = IpState.WARMING, daily: int = 500, hourly: int = 50, **extra: object):
    return desired_server(ip=IpSending(f"addr-{vmta}", vmta, state, daily, hourly, **extra))  # type: ignore[arg-type]


def _settings(mariadb: MariadbServer, database: str, server_id: int) -> tuple:
    return _query(
        mariadb,
        database,
        "SELECT status, hourly_quota, daily_quota, last_updated FROM mw_delivery_server WHERE server_id = %s",
        server_id,
    )[0]


def test_a_new_ip_gets_an_inactive_smtp_pmta_server_with_its_vmta_header(
    mariadb: MariadbServer, database: tuple[str, str], servers: MailwizzDeliveryServers
) -> None:
    plan = plan_sync(current=servers.current_servers(), desired=[_ip("ee-a")])
    report = servers.apply(plan, defaults=DEFAULTS)

    assert len(report.created) == 1
    (row,) = _query(
        mariadb,
        database[0],
        "SELECT type, name, hostname, port, status, hourly_quota, daily_quota, meta_data, from_email"
        " FROM mw_delivery_server",
    )
    assert row[:7] == ("smtp-pmta", "email-engine addr-ee-a", "pmta1.example", 2525, "inactive", 50, 500)
    assert (
        row[7]
        == b'a:1:{s:18:"additional_headers";a:1:{i:0;a:2:{s:4:"name";s:13:"X-Virtual-MTA";s:5:"value";s:4:"ee-a";}}}'
    )
    assert [s.vmta for s in servers.current_servers()] == ["ee-a"]


def test_meta_data_round_trips_through_php_unserialize_semantics(
    mariadb: MariadbServer, database: tuple[str, str], servers: MailwizzDeliveryServers
) -> None:
    servers.insert_server(
        address="203.0.113.7", vmta="ee-é", settings=ServerSettings(ServerStatus.INACTIVE, 1, 1), defaults=DEFAULTS
    )
    blob = _query(mariadb, database[0], "SELECT meta_data FROM mw_delivery_server")[0][0]
    meta = phpserialize.loads(blob, decode_strings=True)
    # What DeliveryServer::parseHeadersFormat() reads back: a list of name/value pairs.
    assert meta == {"additional_headers": {0: {"name": "X-Virtual-MTA", "value": "ee-é"}}}
    assert b's:5:"ee-\xc3\xa9"' in blob  # PHP counts bytes, not characters
    assert headers_from_meta(blob) == [("X-Virtual-MTA", "ee-é")]


def test_hand_edited_rows_are_still_recognised(
    mariadb: MariadbServer, database: tuple[str, str], servers: MailwizzDeliveryServers
) -> None:
    old_format = phpserialize.dumps({"additional_headers": {"x-virtual-mta": " ee-old "}, "other": 1})
    _hand_made_row(mariadb, database[0], "unused", meta_data=old_format)
    _hand_made_row(mariadb, database[0], "unused", meta_data=b"not php at all")
    _hand_made_row(mariadb, database[0], "unused", meta_data=None)
    assert [row.vmta for row in servers.rows()] == ["ee-old", None, None]


def test_quotas_are_synced_only_when_different(
    mariadb: MariadbServer, database: tuple[str, str], servers: MailwizzDeliveryServers
) -> None:
    server_id = _hand_made_row(mariadb, database[0], "ee-a", status="inactive")
    first = servers.apply(plan_sync(current=servers.current_servers(), desired=[_ip("ee-a")]), defaults=DEFAULTS)
    assert first.written == (server_id,)
    assert _settings(mariadb, database[0], server_id) == ("active", 50, 500, NOW.replace(tzinfo=None))

    again = plan_sync(current=servers.current_servers(), desired=[_ip("ee-a")])
    assert [c.kind for c in again.changes] == [ChangeKind.UNCHANGED]
    assert servers.update_settings(server_id, ServerSettings(ServerStatus.ACTIVE, 50, 500)) is False


def test_an_ip_with_quota_zero_goes_inactive_never_active_unlimited(
    mariadb: MariadbServer, database: tuple[str, str], servers: MailwizzDeliveryServers
) -> None:
    server_id = _hand_made_row(mariadb, database[0], "ee-a", hourly_quota=50, daily_quota=500)
    plan = plan_sync(current=servers.current_servers(), desired=[_ip("ee-a", daily=0, hourly=0)])
    servers.apply(plan, defaults=DEFAULTS)
    status, hourly, daily, _ = _settings(mariadb, database[0], server_id)
    assert (status, hourly, daily) == ("inactive", 1, 1)
    assert _query(
        mariadb,
        database[0],
        "SELECT COUNT(*) FROM mw_delivery_server WHERE status = 'active' AND (hourly_quota = 0 OR daily_quota = 0)",
    ) == [(0,)]


def test_a_server_with_a_warmup_plan_is_a_conflict_left_untouched(
    mariadb: MariadbServer, database: tuple[str, str], servers: MailwizzDeliveryServers
) -> None:
    _query(
        mariadb,
        database[0],
        "INSERT INTO mw_delivery_server_warmup_plan (name, date_added, last_updated) VALUES ('mw plan', NOW(), NOW())",
    )
    server_id = _hand_made_row(mariadb, database[0], "ee-a", warmup_plan_id=1, hourly_quota=7, daily_quota=70)
    plan = plan_sync(current=servers.current_servers(), desired=[_ip("ee-a")])
    report = servers.apply(plan, defaults=DEFAULTS)

    assert [c.kind for c in plan.conflicts()] == [ChangeKind.CONFLICT]
    assert report.written == () and report.created == ()
    assert _settings(mariadb, database[0], server_id)[:3] == ("active", 7, 70)
    # Even a direct write is refused by the guard in the UPDATE itself.
    assert servers.update_settings(server_id, ServerSettings(ServerStatus.INACTIVE, 1, 1)) is False


def test_a_retired_ip_is_disabled_never_deleted(
    mariadb: MariadbServer, database: tuple[str, str], servers: MailwizzDeliveryServers
) -> None:
    server_id = _hand_made_row(mariadb, database[0], "ee-a", hourly_quota=50, daily_quota=500)
    plan = plan_sync(current=servers.current_servers(), desired=[_ip("ee-a", IpState.RETIRED, 0, 0)])
    servers.apply(plan, defaults=DEFAULTS)
    assert _settings(mariadb, database[0], server_id)[:3] == ("disabled", 1, 1)
    assert servers.disable(server_id) is False  # already disabled: nothing to write
    assert len(servers.rows()) == 1


def test_the_table_prefix_is_a_setting(mariadb: MariadbServer) -> None:
    url = mariadb.create_mailwizz_database("mailwizz_prefixed", prefix="tenant_")
    servers = MailwizzDeliveryServers.connect(MailwizzDbSettings(SecretStr(url), table_prefix="tenant_"))
    servers.insert_server(
        address="a", vmta="ee-a", settings=ServerSettings(ServerStatus.INACTIVE, 1, 1), defaults=DEFAULTS
    )
    assert [row.vmta for row in servers.rows()] == ["ee-a"]


def test_an_unreachable_database_is_a_clear_error_without_the_password() -> None:
    url = f"mysql+pymysql://mailwizz:hunter2-secret@127.0.0.1:{free_port()}/mailwizz"
    settings = MailwizzDbSettings(SecretStr(url))
    servers = MailwizzDeliveryServers.connect(settings, timeout_seconds=2)
    with pytest.raises(MailwizzDbError) as caught:
        servers.rows()
    assert "hunter2" not in str(caught.value) and "hunter2" not in repr(settings)
    assert "unreachable" in str(caught.value)
