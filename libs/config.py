"""Settings from the environment, validated once at start-up with a clear error on a bad value.

Every port of the stack is a setting, so two stacks can run side by side on one machine.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from libs.outbound import OutboundPolicy

# The services of the platform, each with its ports among the settings below; what each one is, it declares
# itself (libs.service_catalog).
ServiceName = Literal["ip-pool", "reputation", "campaign-gateway", "notifier"]
SERVICE_NAMES: tuple[ServiceName, ...] = ("ip-pool", "reputation", "campaign-gateway", "notifier")

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Platform settings shared by every service (service-specific ones live in the service)."""

    model_config = SettingsConfigDict(env_prefix="EE_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(default=REPO_ROOT / "var", description="Where SQLite files, keys and logs go")
    database_url: str = Field(
        default="",
        validation_alias="DATABASE_URL",
        description="PostgreSQL URL (each service its own schema); empty = one SQLite file per service",
    )
    redis_url: str = Field(
        default="",
        validation_alias="REDIS_URL",
        description="Redis for RQ jobs and event streams; empty = in-process jobs and events",
    )
    clock_offset_file: Path | None = Field(
        default=None,
        description="Tests only: a file holding seconds added to the clock of every process reading it (whole "
        "processes driven through days); unset in production",
    )
    bind_host: str = Field(default="127.0.0.1", description="Address the services and Envoy listen on")

    gateway_port: int = Field(default=8080, ge=1, le=65535)
    envoy_admin_port: int = Field(default=9901, ge=1, le=65535)
    ippool_grpc_port: int = Field(default=50051, ge=1, le=65535)
    reputation_grpc_port: int = Field(default=50052, ge=1, le=65535)
    campaign_gateway_grpc_port: int = Field(default=50053, ge=1, le=65535)
    notifier_grpc_port: int = Field(default=50054, ge=1, le=65535)
    ippool_metrics_port: int = Field(default=9101, ge=1, le=65535)
    reputation_metrics_port: int = Field(default=9102, ge=1, le=65535)
    campaign_gateway_metrics_port: int = Field(default=9103, ge=1, le=65535)
    notifier_metrics_port: int = Field(default=9104, ge=1, le=65535)

    # Where the other services are reached (host:port); empty = this host at the service's port.
    ippool_address: str = ""
    reputation_address: str = ""
    campaign_gateway_address: str = ""
    notifier_address: str = ""

    jwt_issuer: str = "email-engine"
    jwt_audience: str = "email-engine"
    jwt_jwks_file: Path | None = Field(default=None, description="Public keys; default DATA_DIR/keys/jwks.json")
    jwt_private_key_file: Path | None = Field(
        default=None, description="Local signing key for `emailengine token`; default DATA_DIR/keys/jwt.pem"
    )

    service_key_file: Path | None = Field(
        default=None,
        description="Private key signing the services' short-lived tokens to each other; default "
        "DATA_DIR/keys/service.pem (created when missing). Envoy never gets it: the gateway refuses service tokens",
    )
    service_jwks_file: Path | None = Field(
        default=None, description="Public keys of the service tokens; default DATA_DIR/keys/service-jwks.json"
    )
    service_call_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="Deadline of one call from one service to another"
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    grpc_workers: int = Field(default=16, ge=1, le=256, description="Threads serving gRPC calls per service")
    shutdown_grace_seconds: float = Field(default=10.0, ge=0, le=300)
    shutdown_drain_seconds: float = Field(
        default=1.0, ge=0, le=60, description="NOT_SERVING before closing, so Envoy's health check notices"
    )
    event_poll_seconds: float = Field(default=0.2, gt=0, le=60, description="Outbox relay poll interval")
    event_claim_idle_seconds: float = Field(
        default=30.0,
        ge=1,
        le=3600,
        description="An event read by a replica that died unacknowledged is taken over by another replica of the "
        "same service after this long (each is applied once whatever happens: a slow handler's event taken over "
        "is only read twice)",
    )
    scheduler_lock_seconds: float = Field(
        default=30.0,
        ge=1,
        le=600,
        description="The leading `emailengine scheduler` holds its Redis lock this long, renewing it every third of "
        "it; a waiting scheduler takes over within it when the leader dies",
    )

    max_request_bytes: int = Field(
        default=32 << 20,
        ge=1 << 20,
        le=256 << 20,
        description="Largest request body Envoy transcodes and a service accepts (a 100 000-contact campaign fits)",
    )
    gateway_max_connections: int = Field(
        default=10_000, ge=10, le=1_000_000, description="Open downstream connections Envoy accepts at most"
    )
    gateway_max_heap_bytes: int = Field(
        default=1 << 30, ge=64 << 20, description="Envoy's heap size at which it sheds load (overload manager)"
    )

    outbound_allow_networks: str = Field(
        default="",
        description="Comma-separated networks that user-supplied URLs (webhooks, MailWizz, PMTA) may reach although "
        "private or loopback, e.g. an on-premise MailWizz at 10.20.0.5/32; empty = public addresses only",
    )
    outbound_deadline_seconds: float = Field(
        default=10.0, gt=0, le=300, description="Whole-call deadline of one request to a user-supplied URL"
    )
    outbound_max_response_bytes: int = Field(
        default=1 << 20, ge=1024, le=64 << 20, description="Largest answer read from a user-supplied URL"
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if value and not value.startswith(("postgresql", "sqlite")):
            raise ValueError("must be a postgresql:// or sqlite:// URL")
        if value.startswith("postgresql://"):
            # psycopg 3 is the driver we ship.
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @field_validator("outbound_allow_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        from libs.outbound import parse_networks

        parse_networks(value)
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @property
    def jwks_path(self) -> Path:
        return self.jwt_jwks_file or self.data_dir / "keys" / "jwks.json"

    @property
    def private_key_path(self) -> Path:
        return self.jwt_private_key_file or self.data_dir / "keys" / "jwt.pem"

    @property
    def service_key_path(self) -> Path:
        return self.service_key_file or self.data_dir / "keys" / "service.pem"

    @property
    def service_jwks_path(self) -> Path:
        return self.service_jwks_file or self.data_dir / "keys" / "service-jwks.json"

    def outbound_policy(self) -> OutboundPolicy:
        """How user-supplied URLs are called: the allow-list, the deadline, the size cap, and the platform's own
        ports (Envoy's admin above all), which are never called whatever the allow-list says."""
        from libs.outbound import OutboundPolicy, parse_networks

        own = {self.gateway_port, self.envoy_admin_port}
        for name in SERVICE_NAMES:
            own |= {self.grpc_port(name), self.metrics_port(name)}
        return OutboundPolicy(
            allowed_networks=parse_networks(self.outbound_allow_networks),
            protected_local_ports=frozenset(own),
            deadline_seconds=self.outbound_deadline_seconds,
            max_response_bytes=self.outbound_max_response_bytes,
        )

    def grpc_port(self, service: str) -> int:
        return int(getattr(self, f"{setting_name(service)}_grpc_port"))

    def metrics_port(self, service: str) -> int:
        return int(getattr(self, f"{setting_name(service)}_metrics_port"))

    def listen_address(self, service: str) -> str:
        return f"{self.bind_host}:{self.grpc_port(service)}"

    def grpc_address(self, service: str) -> str:
        """Where a peer reaches the service: its *_ADDRESS setting, else this host at its port."""
        override = str(getattr(self, f"{setting_name(service)}_address"))
        if override:
            return override
        host = "127.0.0.1" if self.bind_host in ("0.0.0.0", "::", "") else self.bind_host
        return f"{host}:{self.grpc_port(service)}"


def split_host_port(address: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def is_ip_literal(host: str) -> bool:
    """An address written out (no DNS name to resolve)."""
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def setting_name(service: str) -> str:
    """The stem of a service's settings: "ip-pool" → "ippool" (EE_IPPOOL_GRPC_PORT)."""
    return {"ip-pool": "ippool", "campaign-gateway": "campaign_gateway"}.get(service, service)


def load(cls: type[SettingsT]) -> SettingsT:
    """Builds settings or exits with one line per bad variable (never a stack trace)."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"])
            env = name if name.isupper() else f"{prefix}{name}".upper()
            print(f"configuration error: {env}: {err['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load(Settings)


def redact_url(url: str) -> str:
    """The URL with any password replaced, for banners and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
