"""The monitoring pieces of the Kubernetes overlays: the alerting rules and the Grafana dashboard rendered as
ConfigMaps from the same files Prometheus and Grafana read elsewhere, and the scrape annotations on the pods that
serve /metrics."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from libs.config import SERVICE_NAMES
from tests.deploy.manifests import K8S, REPO, Rendered, settings_of

RULES = REPO / "deploy" / "prometheus" / "rules.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "email-engine.json"
# kustomize loads files from under the kustomization's directory only: the base holds copies of the two sources.
COPIES = {
    RULES: K8S / "base" / "monitoring" / "rules.yml",
    DASHBOARD: K8S / "base" / "monitoring" / "email-engine.json",
}


@pytest.mark.parametrize("source", list(COPIES), ids=lambda p: p.name)
def test_the_k8s_metrics_files_are_copies_of_their_sources(source: Path) -> None:
    copy = COPIES[source]
    assert copy.read_bytes() == source.read_bytes(), (
        f"{copy.relative_to(REPO)} differs from {source.relative_to(REPO)}: run `make k8s-monitoring`"
    )


def test_the_metrics_rules_are_rendered_as_a_configmap(rendered: Rendered, tmp_path: Path) -> None:
    config_map = rendered.get("ConfigMap", "email-engine-prometheus-rules")
    assert config_map["metadata"]["namespace"] == rendered.namespace
    assert set(config_map["data"]) == {"rules.yml"}
    assert config_map["data"]["rules.yml"] == RULES.read_text()
    assert yaml.safe_load(config_map["data"]["rules.yml"])["groups"]
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is missing: run tools/ensure_system_packages.sh (Debian package prometheus)")
    (tmp_path / "rules.yml").write_text(config_map["data"]["rules.yml"])
    checked = subprocess.run([tool, "check", "rules", "rules.yml"], capture_output=True, text=True, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_metrics_dashboard_is_a_configmap_for_the_grafana_sidecar(rendered: Rendered) -> None:
    config_map = rendered.get("ConfigMap", "email-engine-grafana-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert set(config_map["data"]) == {"email-engine.json"}
    assert json.loads(config_map["data"]["email-engine.json"]) == json.loads(DASHBOARD.read_text())


def test_only_the_metrics_configmaps_go_without_a_hash_suffix(rendered: Rendered) -> None:
    """The settings ConfigMaps keep their content hash (a change rolls the pods); the two monitoring ones are found
    by name and label, so a suffixed copy left behind would load the dashboard twice."""
    names = {c["metadata"]["name"] for c in rendered.of_kind("ConfigMap")}
    monitoring = {"email-engine-prometheus-rules", "email-engine-grafana-dashboard"}
    assert monitoring <= names
    for name in names - monitoring:
        assert len(name.rsplit("-", 1)[1]) == 10, name  # kustomize's hash suffix


def test_pods_serving_metrics_carry_the_scrape_annotations(rendered: Rendered, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, deployment in rendered.deployments.items():
        template = deployment["spec"]["template"]
        annotations = template["metadata"].get("annotations") or {}
        ports = {p.get("name"): p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
        if name not in SERVICE_NAMES:
            assert "metrics" not in ports, name
            assert "prometheus.io/scrape" not in annotations, name
            continue
        port = settings_of(rendered, name, monkeypatch).metrics_port(name)
        assert ports["metrics"] == port, name
        assert annotations == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(port),
            "prometheus.io/path": "/metrics",
        }, name
