"""The database: one per service (a SQLite file by default, a PostgreSQL schema in production).

Each service owns its tables; nothing here reads another service's. Migrations are Alembic, run at
start-up under a lock so replicas starting together migrate once.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.orm import Session, sessionmaker

from libs.config import Settings
from libs.files import private_directory

PLATFORM_MIGRATIONS = Path(__file__).parent / "migrations"


def schema_name(service: str) -> str:
    return service.replace("-", "_")


@dataclass
class Database:
    engine: Engine
    schema: str | None  # PostgreSQL schema; None on SQLite
    sessions: sessionmaker[Session]

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits on success, rolls back on any error."""
        with self.sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def connect(settings: Settings, service: str, *, url: str | None = None) -> Database:
    """The service's database with one connection pool per process, sized for its RPC threads plus its
    background work, so a request never waits for (or opens) a connection of its own."""
    url = url if url is not None else settings.database_url
    pool_size = settings.grpc_workers + 4
    if url.startswith("postgresql"):
        schema = schema_name(service)
        engine = sa.create_engine(
            url,
            # No ping before each checkout (a round trip per call): a connection found dead is discarded with
            # every older one (SQLAlchemy invalidates the pool on a disconnect), the call answers UNAVAILABLE,
            # and Envoy retries reads; connections are recycled before any idle timeout cuts them.
            pool_pre_ping=False,
            pool_recycle=1800,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={"options": f"-csearch_path={schema}"},
        )
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"ee-schema-{schema}"})
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        return Database(engine, schema, sessionmaker(engine, expire_on_commit=False))
    if not url:
        # The service's data (webhook secrets among it) is readable by this user only; SQLite gives its -wal and
        # -shm files the main file's mode.
        private_directory(settings.data_dir)
        path = settings.data_dir / (schema_name(service) + ".db")
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        url = f"sqlite:///{path}"
    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        poolclass=sa.pool.QueuePool,
        pool_size=pool_size,
        max_overflow=pool_size,
    )
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    return Database(engine, None, sessionmaker(engine, expire_on_commit=False))


def insert_many(
    session: Session,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    skip_conflicts_on: Sequence[str] = (),
) -> None:
    """INSERT of `rows` (values in the order of `columns`) in one executemany, the rows handed to the driver as they
    are; with `skip_conflicts_on`, a row whose key is already there is left out (ON CONFLICT DO NOTHING).

    For batches of tens of thousands of rows: SQLAlchemy's own executemany processes each value of each row in
    Python, which costs more than the database's work. Here the statement is compiled once per process and the
    values must be what the driver takes: a value whose column type converts it (a date or datetime on SQLite)
    goes through `driver_value` first; a JSON column takes its JSON text.
    """
    if not rows:
        return
    connection = session.connection()
    sql, order = _insert_sql(connection.dialect, table, tuple(columns), tuple(skip_conflicts_on))
    if order is None:  # named parameters (psycopg)
        connection.exec_driver_sql(sql, [dict(zip(columns, row, strict=True)) for row in rows])
    elif order == tuple(columns):
        connection.exec_driver_sql(sql, list(rows))
    else:  # pragma: no cover  # SQLAlchemy renders the VALUES in the order given; kept should it not
        positions = [columns.index(name) for name in order]
        connection.exec_driver_sql(sql, [tuple(row[i] for i in positions) for row in rows])


def driver_value(session: Session, column: sa.Column[Any], value: Any) -> Any:
    """`value` as SQLAlchemy would hand it to the driver for `column` (see `insert_many`)."""
    dialect = session.get_bind().dialect
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return process(value) if process is not None else value


@functools.cache
def _insert_sql(
    dialect: Dialect, table: sa.Table, columns: tuple[str, ...], conflict: tuple[str, ...]
) -> tuple[str, tuple[str, ...] | None]:
    insert = postgresql.insert(table) if dialect.name == "postgresql" else sqlite.insert(table)
    statement = insert.values({name: sa.bindparam(name) for name in columns})
    if conflict:
        statement = statement.on_conflict_do_nothing(index_elements=list(conflict))
    compiled = statement.compile(dialect=dialect, for_executemany=True)  # no RETURNING of a generated key
    order = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup is not None else None
    return compiled.string, order


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    # WAL lets the relay, the jobs and the RPC threads read while one writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def migrate(db: Database, service_migrations: Path) -> None:
    """Brings the platform tables (outbox, inbox, audit) and the service's own tables to head."""
    with db.engine.begin() as conn:
        if db.is_postgres:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"ee-migrate-{db.schema}"})
        for location, version_table in (
            (PLATFORM_MIGRATIONS, "alembic_version_platform"),
            (service_migrations, "alembic_version"),
        ):
            cfg = Config()
            cfg.set_main_option("script_location", str(location))
            cfg.attributes["connection"] = conn
            cfg.attributes["version_table"] = version_table
            cfg.attributes["schema"] = db.schema
            command.upgrade(cfg, "head")


def is_at_head(db: Database, service_migrations: Path) -> bool:
    """True when the platform tables and the service's own are at their newest revision."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with db.engine.connect() as conn:
        for location, version_table in (
            (PLATFORM_MIGRATIONS, "alembic_version_platform"),
            (service_migrations, "alembic_version"),
        ):
            cfg = Config()
            cfg.set_main_option("script_location", str(location))
            head = ScriptDirectory.from_config(cfg).get_current_head()
            context_ = MigrationContext.configure(
                conn, opts={"version_table": version_table, "version_table_schema": db.schema}
            )
            if context_.get_current_revision() != head:
                return False
    return True


def run_alembic_env() -> None:
    """The body of every migrations/env.py: online migrations on the connection `migrate` passes."""
    cfg = context.config
    connection: Connection = cfg.attributes["connection"]
    context.configure(
        connection=connection,
        version_table=cfg.attributes.get("version_table", "alembic_version"),
        version_table_schema=cfg.attributes.get("schema"),
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
