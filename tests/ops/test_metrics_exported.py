"""Every metric the alerting rules and the dashboard use is exported by some service, and the services' /metrics
answer with their database-read gauges (no read failure) when started for real."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from libs.clock import FakeClock
from libs.metrics import metric_names
from libs.service_catalog import definitions
from tests.harness.in_process import InProcessService, in_process_service

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "email-engine.json"

# Made by Prometheus itself (the scrape's own series, alert state), or PromQL functions and keywords.
NOT_EXPORTED = {"up", "ALERTS", "ALERTS_FOR_STATE"}
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
    "unless", "rate", "irate", "increase", "delta", "deriv", "histogram_quantile", "topk", "bottomk", "offset", "bool",
    "label_replace", "clamp_min", "clamp_max", "vector", "scalar", "abs", "time", "le", "inf", "nan", "humanize",
    "count_over_time", "max_over_time", "min_over_time", "avg_over_time", "last_over_time", "absent", "sort",
    "sort_desc",
}  # fmt: skip


def names_in(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not inside {...} or [...], not a function or
    keyword, and not a label name of a by/on/without clause."""
    expr = re.sub(r"label_values\((.*),\s*\w+\)", r"\1", expr)  # Grafana's label_values(series, label)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\$\w+", "", expr)  # Grafana variables
    found = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", expr))
    return {name for name in found if name not in PROMQL_WORDS and not re.fullmatch(r"\d.*|e\d+", name)}


def rule_expressions() -> list[str]:
    rules = yaml.safe_load(RULES.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append(target["expr"])
    for variable in dashboard["templating"]["list"]:
        if variable.get("type") == "query":
            query = variable["query"]
            found.append(query["query"] if isinstance(query, dict) else query)
    return found


def test_the_name_extraction_reads_names_not_labels_or_functions() -> None:
    expr = 'max by (tenant, zone) (rate(grpc_server_handled_total{grpc_code="OK"}[5m])) > 0.05 and on (tenant) foo_bar'
    assert names_in(expr) == {"grpc_server_handled_total", "foo_bar"}
    assert names_in('label_values(emailengine_ippool_ips{tenant="$tenant"}, tenant)') == {"emailengine_ippool_ips"}


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, InProcessService]]:
    """The four services, each started by its real ServiceHost on its own SQLite database."""
    clock = FakeClock()
    started: dict[str, InProcessService] = {}
    contexts = []
    try:
        for name, definition in definitions().items():
            context = in_process_service(definition, tmp_path_factory.mktemp(name), clock=clock)
            started[name] = context.__enter__()
            contexts.append(context)
        yield started
    finally:
        for context in reversed(contexts):
            context.__exit__(None, None, None)


def scrape(service: InProcessService, name: str) -> str:
    port = service.settings.metrics_port(name)
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    return response.text


def test_every_metric_in_the_rules_and_the_dashboard_is_exported(services: dict[str, InProcessService]) -> None:
    exported = set().union(*(metric_names(s.host.runtime.metrics) for s in services.values()))
    used = set().union(*(names_in(expr) for expr in rule_expressions() + dashboard_expressions()))
    assert used, "no metric found in the rules and the dashboard"
    assert sorted(used - exported - NOT_EXPORTED) == []


def test_every_service_scrapes_its_database_gauges_without_a_read_failure(
    services: dict[str, InProcessService],
) -> None:
    for name, service in services.items():
        text = scrape(service, name)
        assert "emailengine_outbox_pending_events 0.0" in text, name
        assert "emailengine_dead_letters 0.0" in text, name
        assert "emailengine_metrics_read_failures_total{" not in text, f"{name}: {text}"
    assert "# TYPE emailengine_ippool_ips gauge" in scrape(services["ip-pool"], "ip-pool")
    assert "# TYPE emailengine_reputation_listed_ips gauge" in scrape(services["reputation"], "reputation")
    gateway = scrape(services["campaign-gateway"], "campaign-gateway")
    assert "# TYPE emailengine_gateway_bounce_rate gauge" in gateway


def test_no_metric_has_an_address_or_a_campaign_as_a_label(services: dict[str, InProcessService]) -> None:
    forbidden = {"address", "ip", "campaign", "campaign_id", "email", "instance_ip"}
    for service in services.values():
        for family in service.host.runtime.metrics.collect():
            for sample in family.samples:
                assert not forbidden & set(sample.labels), (family.name, sample.labels)
        for collector in list(service.host.runtime.metrics._collector_to_names):
            for family in getattr(collector, "describe", lambda: [])():
                labels = set(getattr(family, "_labelnames", ()))
                assert not forbidden & labels, (family.name, labels)
