"""The Envoy config each overlay implies: `libs.gateway.render` run with the gateway pod's rendered environment,
as `emailengine gateway` does at container start. Every cluster must name its service's headless Service at its
gRPC port, resolved by DNS (STRICT_DNS) and balanced (ROUND_ROBIN) over every pod; and Envoy must accept it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from libs.auth import ensure_local_keys
from libs.config import SERVICE_NAMES, Settings
from libs.gateway import render
from tests.deploy.manifests import REPO, Rendered, settings_of

DESCRIPTOR = REPO / "gen" / "api_descriptor.pb"
ENVOY = Path(sys.executable).parent / "envoy"


def _envoy_config(rendered: Rendered, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, dict[str, Any]]:
    settings = settings_of(rendered, "gateway", monkeypatch)
    return settings, render(settings, DESCRIPTOR)


def _service_named(rendered: Rendered, host: str) -> dict[str, Any]:
    """The Service a DNS name designates from a pod of the namespace: `name`, `name.namespace[.svc[.domain]]`."""
    name, _, rest = host.partition(".")
    if rest:
        namespace, _, tail = rest.partition(".")
        assert namespace == rendered.namespace, f"{host}: not this namespace"
        assert tail in ("", "svc") or tail.startswith("svc."), f"{host}: not a Service name"
    return rendered.get("Service", name)


def _endpoints(cluster: dict[str, Any]) -> list[tuple[str, int]]:
    return [
        (
            e["endpoint"]["address"]["socket_address"]["address"],
            e["endpoint"]["address"]["socket_address"]["port_value"],
        )
        for group in cluster["load_assignment"]["endpoints"]
        for e in group["lb_endpoints"]
    ]


def test_each_cluster_names_its_headless_service_by_dns(rendered: Rendered, monkeypatch: pytest.MonkeyPatch) -> None:
    _, config = _envoy_config(rendered, monkeypatch)
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    assert set(clusters) == {*SERVICE_NAMES, "platform"}
    for service in SERVICE_NAMES:
        cluster = clusters[service]
        assert cluster["type"] == "STRICT_DNS", service
        assert cluster["lb_policy"] == "ROUND_ROBIN", service
        assert cluster["health_checks"][0]["grpc_health_check"]["service_name"], service
        ((host, port),) = _endpoints(cluster)
        svc = _service_named(rendered, host)
        assert svc["metadata"]["name"] == service
        assert svc["spec"]["clusterIP"] == "None", f"{service}: a ClusterIP would pin Envoy's connections to one pod"
        grpc = next(p for p in svc["spec"]["ports"] if p["name"] == "grpc")
        assert port == grpc["port"] == grpc["targetPort"], service
        assert {"name": "grpc", "containerPort": port} in rendered.container(service)["ports"]
    # PlatformService (health, version) answers from any service: every Service, by DNS too.
    platform = clusters["platform"]
    assert platform["type"] == "STRICT_DNS"
    assert sorted(_endpoints(platform)) == sorted(_endpoints(clusters[s])[0] for s in SERVICE_NAMES)


def test_the_services_reach_each_other_through_the_same_services(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = settings_of(rendered, "gateway", monkeypatch)
    expected = {peer: gateway.grpc_address(peer) for peer in SERVICE_NAMES}
    for caller in (*SERVICE_NAMES, *(f"{s}-worker" for s in SERVICE_NAMES)):
        caller_settings = settings_of(rendered, caller, monkeypatch)
        assert {peer: caller_settings.grpc_address(peer) for peer in SERVICE_NAMES} == expected, caller


def test_envoy_listens_on_the_pod_port_with_the_mounted_jwks(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, config = _envoy_config(rendered, monkeypatch)
    (listener,) = config["static_resources"]["listeners"]
    assert listener["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": settings.gateway_port}
    assert {"name": "http", "containerPort": settings.gateway_port} in rendered.container("gateway")["ports"]
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    jwt = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.jwt_authn")["typed_config"]
    jwks = jwt["providers"]["email_engine"]["local_jwks"]["filename"]
    assert rendered.mounted_secret_files("gateway")[jwks] == ("email-engine-jwks", "jwks.json")


def test_envoy_accepts_the_rendered_config(rendered: Rendered, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`envoy --mode validate` on the overlay's config: only the JWKS path moves to a file that exists here."""
    jwks = tmp_path / "jwks.json"
    ensure_local_keys(tmp_path / "jwt.pem", jwks)
    _, config = _envoy_config(rendered, monkeypatch)
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    jwt = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.jwt_authn")["typed_config"]
    jwt["providers"]["email_engine"]["local_jwks"]["filename"] = str(jwks)
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    done = subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(path), "--use-dynamic-base-id"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"configuration '{path}' OK" in done.stdout + done.stderr
