"""One tenant's MailWizz MySQL database: the `delivery_server` rows of the IPs this platform manages.

MailWizz has no API that writes quotas (its delivery-servers endpoints are read-only), so the quota sync writes
the `{prefix}delivery_server` table directly, as MailWizz's own admins do.

Public API:
    MailwizzDbSettings(url: SecretStr, table_prefix="mw_")
    NewServerDefaults(hostname, from_email, port=25, customer_id=None, username="", name_prefix="email-engine")
    ServerRow            -- a smtp-pmta row as read (id, owner, name, hostname, status, quotas, warmup plan, vmta)
    ApplyReport          -- written server ids, created server ids, skipped changes with the reason
    MailwizzDeliveryServers(engine, *, table_prefix="mw_", clock=utc_now)
        .connect(settings) -> MailwizzDeliveryServers       (PyMySQL engine with connect/read timeouts)
        .dispose()                                          closes its connections
        .rows() -> list[ServerRow]                          every smtp-pmta row, any status
        .current_servers() -> list[CurrentServer]           the rows that carry a VMTA, for domain.quota_sync
        .apply(plan, *, defaults) -> ApplyReport            CREATE and UPDATE lines of a SyncPlan
        .exclusive() -> context of LockedDeliveryServers    the named lock held on one connection: rows(),
                                                            current_servers() and apply() without another
                                                            sync in between (read the IP pool inside it too)
        .update_settings(server_id, settings) -> bool       one row, one statement, only when different
        .insert_server(*, address, vmta, settings, defaults) -> int
        .disable(server_id) -> bool                         status `disabled` (rows are never deleted)
    additional_headers_meta(headers) -> bytes   meta_data exactly as PHP's serialize() writes it
    headers_from_meta(blob) -> list[(name, value)] | None   both MailWizz formats; None when unreadable
    MailwizzDbError                             a failure of the database (message without password)

Which row is which IP: the row's `X-Virtual-MTA` additional header. PowerMTA routes a message to the IP of the
virtual MTA named in that header, so the header (not the hostname, which is the PMTA node and is shared by all
its IPs, nor the name, which people edit) is what ties a MailWizz server to an IP. Robust to hand edits: header
names compare case-insensitively, values are trimmed, both of MailWizz's `additional_headers` formats are read
(the `[{name, value}]` list since 1.3.5.9 and the older `{name: value}` map), and a row whose meta_data cannot be
read is simply not matched (it is reported by `rows()` with `vmta=None`). Rows created here are named
"<name_prefix> <address>" for the people who read MailWizz's server list.

MailWizz stores `meta_data` as `serialize(['additional_headers' => [['name' => ..., 'value' => ...]]])`
(DeliveryServer::beforeSave via ModelMetaDataBehavior); it is written here byte for byte the same way, and
other keys a row already has are kept because updates never touch meta_data.

Every write is one UPDATE of status + quotas + last_updated guarded in its WHERE clause (no warmup plan, not being
deleted, values different), so a row is never seen half-written and a warmup plan added by hand between the read
and the write still wins. `apply` holds a MySQL named lock (GET_LOCK) so two replicas never sync one database
at once. MailWizz caches a server's remaining quota for 300 s, so a change is seen within five minutes.

`defaults` (what a created row gets besides its VMTA and quotas) is one NewServerDefaults, or a function of the
change giving each IP its own (its PMTA node's SMTP host); when it gives None the CREATE is skipped and reported,
and the next sync tries again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import phpserialize
from pydantic import SecretStr
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from campaign_gateway.domain.quota_sync import (
    ChangeKind,
    CurrentServer,
    ServerChange,
    ServerSettings,
    ServerStatus,
    SyncPlan,
)

VMTA_HEADER = "X-Virtual-MTA"
PMTA_TYPE = "smtp-pmta"
_LOCK_SECONDS = 30


class MailwizzDbError(Exception):
    """The MailWizz database failed or could not be reached; the message never holds the password."""


@dataclass(frozen=True)
class MailwizzDbSettings:
    url: SecretStr  # mysql+pymysql://user:password@host:3306/mailwizz?charset=utf8mb4
    table_prefix: str = "mw_"

    def __repr__(self) -> str:
        return f"MailwizzDbSettings(url=**********, table_prefix={self.table_prefix!r})"


@dataclass(frozen=True)
class NewServerDefaults:
    """What a server created for a new IP gets besides its VMTA and quotas."""

    hostname: str  # the PowerMTA node that owns the IP
    from_email: str
    port: int = 25
    customer_id: int | None = None  # the tenant's MailWizz customer; None makes a system server
    username: str = ""
    name_prefix: str = "email-engine"


Defaults = NewServerDefaults | Callable[[ServerChange], NewServerDefaults | None]


@dataclass(frozen=True)
class ServerRow:
    server_id: int
    customer_id: int | None
    name: str | None
    hostname: str
    port: int | None
    status: str
    hourly_quota: int
    daily_quota: int
    warmup_plan_id: int | None
    vmta: str | None
    use_for: str = "all"  # all, campaigns, transactional, ...: what MailWizz uses the server for


@dataclass(frozen=True)
class ApplyReport:
    written: tuple[int, ...] = ()
    created: tuple[int, ...] = ()
    skipped: tuple[tuple[ServerChange, str], ...] = ()


@dataclass
class _Report:
    written: list[int] = field(default_factory=list)
    created: list[int] = field(default_factory=list)
    skipped: list[tuple[ServerChange, str]] = field(default_factory=list)

    def frozen(self) -> ApplyReport:
        return ApplyReport(tuple(self.written), tuple(self.created), tuple(self.skipped))


# --------------------------------------------------------------------------- PHP meta_data


def additional_headers_meta(headers: Sequence[tuple[str, str]]) -> bytes:
    """meta_data as MailWizz's PHP serialize() writes it for these additional headers."""
    listed = [{"name": name, "value": value} for name, value in headers]
    return phpserialize.dumps({"additional_headers": listed})


def headers_from_meta(blob: bytes | str | None) -> list[tuple[str, str]] | None:
    """The additional headers in a meta_data blob ([] when none), or None when the blob cannot be read."""
    if blob is None or blob in (b"", ""):
        return []
    raw = blob.encode() if isinstance(blob, str) else bytes(blob)
    try:
        meta = phpserialize.loads(raw, decode_strings=True)
    except (ValueError, TypeError, EOFError, UnicodeDecodeError):
        return None
    if not isinstance(meta, Mapping):
        return None
    return _headers(meta.get("additional_headers"))


def _headers(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, Mapping):
        return []
    found: list[tuple[str, str]] = []
    for key, item in value.items():
        if isinstance(key, str) and isinstance(item, str):  # before 1.3.5.9: name => value
            found.append((key, item))
        elif isinstance(item, Mapping) and "name" in item and "value" in item:
            found.append((str(item["name"]), str(item["value"])))
    return found


def vmta_of(headers: Iterable[tuple[str, str]] | None) -> str | None:
    for name, value in headers or ():
        if name.strip().lower() == VMTA_HEADER.lower() and value.strip():
            return value.strip()
    return None


# --------------------------------------------------------------------------- the table


def _table(prefix: str) -> Table:
    """The columns of MailWizz 2.1.13's delivery_server that this adapter reads or writes."""
    return Table(
        f"{prefix}delivery_server",
        MetaData(),
        Column("server_id", Integer, primary_key=True, autoincrement=True),
        Column("customer_id", Integer, nullable=True),
        Column("warmup_plan_id", Integer, nullable=True),
        Column("type", String(20), nullable=False),
        Column("name", String(255)),
        Column("hostname", String(255), nullable=False),
        Column("username", String(255), nullable=False),
        Column("port", Integer),
        Column("from_email", String(255), nullable=False),
        Column("probability", Integer, nullable=False),
        Column("hourly_quota", Integer, nullable=False),
        Column("daily_quota", Integer, nullable=False),
        Column("meta_data", LargeBinary),
        Column("status", String(15), nullable=False),
        Column("use_for", String(15), nullable=False),
        Column("date_added", String(19), nullable=False),
        Column("last_updated", String(19), nullable=False),
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    """MailWizz keeps datetimes in the app timezone, UTC by default, as `Y-m-d H:i:s`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


class MailwizzDeliveryServers:
    def __init__(self, engine: Engine, *, table_prefix: str = "mw_", clock: Callable[[], datetime] = utc_now):
        self._engine = engine
        self._table = _table(table_prefix)
        self._clock = clock
        self._lock_name = f"email-engine:{table_prefix}delivery_server"

    def __repr__(self) -> str:
        return f"MailwizzDeliveryServers(table={self._table.name!r})"

    @classmethod
    def connect(cls, settings: MailwizzDbSettings, *, timeout_seconds: int = 10) -> MailwizzDeliveryServers:
        engine = create_engine(
            settings.url.get_secret_value(),
            pool_pre_ping=True,
            hide_parameters=True,
            connect_args={
                "connect_timeout": timeout_seconds,
                "read_timeout": 3 * timeout_seconds,
                "write_timeout": 3 * timeout_seconds,
            },
        )
        return cls(engine, table_prefix=settings.table_prefix)

    def dispose(self) -> None:
        """Closes the pooled connections (at shutdown)."""
        self._engine.dispose()

    # ---- reads

    def rows(self) -> list[ServerRow]:
        table = self._table
        query = select(table).where(table.c.type == PMTA_TYPE).order_by(table.c.server_id)
        with self._connection() as connection:
            return [_row(record) for record in connection.execute(query).mappings()]

    def current_servers(self) -> list[CurrentServer]:
        return _current(self.rows())

    # ---- writes

    def apply(self, plan: SyncPlan, *, defaults: Defaults) -> ApplyReport:
        with self.exclusive() as locked:
            return locked.apply(plan, defaults=defaults)

    @contextmanager
    def exclusive(self) -> Iterator[LockedDeliveryServers]:
        """The named lock held on one connection, for one read-decide-write pass of a sync."""
        with self._connection() as connection, self._named_lock(connection):
            yield LockedDeliveryServers(self, connection)

    def _apply_all(self, connection: Connection, plan: SyncPlan, defaults: Defaults) -> ApplyReport:
        report = _Report()
        for change in plan.writes():
            self._apply_one(connection, change, defaults, report)
        return report.frozen()

    def _apply_one(self, connection: Connection, change: ServerChange, defaults: Defaults, report: _Report) -> None:
        assert change.after is not None
        if change.kind is ChangeKind.UPDATE and change.server_id is not None:
            if self._update(connection, change.server_id, change.after):
                report.written.append(change.server_id)
            else:
                report.skipped.append((change, "row changed since it was read (or got a warmup plan)"))
            return
        if any(row.vmta == change.vmta for row in self._rows(connection)):
            report.skipped.append((change, "a server with this VMTA appeared since the plan was made"))
            return
        chosen = defaults(change) if callable(defaults) else defaults
        if chosen is None:
            report.skipped.append((change, "no SMTP host is known for the IP's PowerMTA node"))
            return
        server_id = self._insert(connection, change.address or change.vmta, change.vmta, change.after, chosen)
        report.created.append(server_id)

    def update_settings(self, server_id: int, settings: ServerSettings) -> bool:
        """Sets status and both quotas in one statement; False when nothing was written (equal, or guarded)."""
        with self._connection() as connection:
            return self._update(connection, server_id, settings)

    def disable(self, server_id: int) -> bool:
        """A retired IP's server is disabled, never deleted (its delivery logs point at it)."""
        table = self._table
        with self._connection() as connection:
            current = connection.execute(
                select(table.c.hourly_quota, table.c.daily_quota).where(table.c.server_id == server_id)
            ).first()
            if current is None:
                return False
            settings = ServerSettings(ServerStatus.DISABLED, max(current[0], 1), max(current[1], 1))
            return self._update(connection, server_id, settings)

    def insert_server(self, *, address: str, vmta: str, settings: ServerSettings, defaults: NewServerDefaults) -> int:
        with self._connection() as connection:
            return self._insert(connection, address, vmta, settings, defaults)

    # ---- statements

    def _update(self, connection: Connection, server_id: int, settings: ServerSettings) -> bool:
        table = self._table
        statement = (
            update(table)
            .where(
                table.c.server_id == server_id,
                or_(table.c.warmup_plan_id.is_(None), table.c.warmup_plan_id == 0),
                table.c.status != ServerStatus.PENDING_DELETE.value,
                or_(
                    table.c.status != settings.status.value,
                    table.c.hourly_quota != settings.hourly_quota,
                    table.c.daily_quota != settings.daily_quota,
                ),
            )
            .values(
                status=settings.status.value,
                hourly_quota=settings.hourly_quota,
                daily_quota=settings.daily_quota,
                last_updated=_stamp(self._clock()),
            )
        )
        return connection.execute(statement).rowcount == 1

    def _insert(
        self,
        connection: Connection,
        address: str,
        vmta: str,
        settings: ServerSettings,
        defaults: NewServerDefaults,
    ) -> int:
        stamp = _stamp(self._clock())
        values = {
            "customer_id": defaults.customer_id,
            "type": PMTA_TYPE,
            "name": f"{defaults.name_prefix} {address}",
            "hostname": defaults.hostname,
            "username": defaults.username,
            "port": defaults.port,
            "from_email": defaults.from_email,
            "probability": 100,
            "hourly_quota": settings.hourly_quota,
            "daily_quota": settings.daily_quota,
            "meta_data": additional_headers_meta([(VMTA_HEADER, vmta)]),
            "status": ServerStatus.INACTIVE.value,
            "use_for": "all",
            "date_added": stamp,
            "last_updated": stamp,
        }
        result = connection.execute(self._table.insert().values(**values))
        return int(result.inserted_primary_key[0])

    def _rows(self, connection: Connection) -> list[ServerRow]:
        table = self._table
        records = connection.execute(select(table).where(table.c.type == PMTA_TYPE)).mappings()
        return [_row(record) for record in records]

    # ---- plumbing

    def _connection(self) -> _Transaction:
        return _Transaction(self._engine)

    def _named_lock(self, connection: Connection) -> _NamedLock:
        return _NamedLock(connection, self._lock_name)


class LockedDeliveryServers:
    """The table while one sync holds its named lock (see MailwizzDeliveryServers.exclusive)."""

    def __init__(self, owner: MailwizzDeliveryServers, connection: Connection):
        self._owner = owner
        self._connection = connection

    def rows(self) -> list[ServerRow]:
        return sorted(self._owner._rows(self._connection), key=lambda row: row.server_id)

    def current_servers(self) -> list[CurrentServer]:
        return _current(self.rows())

    def apply(self, plan: SyncPlan, *, defaults: Defaults) -> ApplyReport:
        return self._owner._apply_all(self._connection, plan, defaults)


class _Transaction:
    """One connection in one transaction; database failures become MailwizzDbError without the URL or values."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._context: Any = None

    def __enter__(self) -> Connection:
        try:
            self._context = self._engine.begin()
            return self._context.__enter__()
        except SQLAlchemyError as failure:
            raise MailwizzDbError(f"MailWizz database unreachable: {_kind(failure)}") from None

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        try:
            self._context.__exit__(kind, error, trace)
        except SQLAlchemyError as failure:
            raise MailwizzDbError(f"MailWizz database error: {_kind(failure)}") from None
        if isinstance(error, SQLAlchemyError):
            raise MailwizzDbError(f"MailWizz database error: {_kind(error)}") from None


class _NamedLock:
    def __init__(self, connection: Connection, name: str):
        self._connection = connection
        self._name = name

    def __enter__(self) -> None:
        got = self._connection.execute(
            text("SELECT GET_LOCK(:name, :wait)"), {"name": self._name, "wait": _LOCK_SECONDS}
        )
        if got.scalar() != 1:
            raise MailwizzDbError("another quota sync holds this MailWizz database")

    def __exit__(self, *_: Any) -> None:
        self._connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": self._name})


def _current(rows: Iterable[ServerRow]) -> list[CurrentServer]:
    return [
        CurrentServer(
            server_id=row.server_id,
            vmta=row.vmta,
            settings=ServerSettings(_status(row.status), row.hourly_quota, row.daily_quota),
            warmup_plan_id=row.warmup_plan_id,
        )
        for row in rows
        if row.vmta is not None
    ]


def _kind(failure: SQLAlchemyError) -> str:
    """The driver's error class and code (e.g. OperationalError 2003), never its text: that can hold the URL."""
    original = getattr(failure, "orig", None)
    code = original.args[0] if original is not None and original.args else ""
    return f"{type(original or failure).__name__} {code}".strip()


def _status(value: str) -> ServerStatus:
    try:
        return ServerStatus(value)
    except ValueError:
        return ServerStatus.HIDDEN  # an unknown status: treated like a hidden server, never as active


def _row(record: Mapping[str, Any]) -> ServerRow:
    return ServerRow(
        server_id=int(record["server_id"]),
        customer_id=record["customer_id"],
        name=record["name"],
        hostname=record["hostname"],
        port=record["port"],
        status=str(record["status"]),
        hourly_quota=int(record["hourly_quota"]),
        daily_quota=int(record["daily_quota"]),
        warmup_plan_id=record["warmup_plan_id"],
        vmta=vmta_of(headers_from_meta(record["meta_data"])),
        use_for=str(record["use_for"]),
    )
