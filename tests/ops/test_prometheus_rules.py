"""The alerting rules are valid and behave as their unit tests say (promtool, from Debian's `prometheus` package);
every alert has its section in the runbook."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RUNBOOK = ROOT / "docs" / "runbook.md"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is missing: run tools/ensure_system_packages.sh (Debian package prometheus)")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, cwd=PROMETHEUS)


def test_the_rules_are_valid() -> None:
    result = promtool("check", "rules", "rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_scrape_config_is_valid() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_pass_their_unit_tests() -> None:
    result = promtool("test", "rules", "rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def alerts() -> list[dict]:
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]


def test_every_alert_has_a_severity_and_a_runbook_section() -> None:
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("#")
    }
    for rule in alerts():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        anchor = rule["annotations"]["runbook"].partition("#")[2]
        assert anchor in headings, f"{rule['alert']}: no section #{anchor} in docs/runbook.md"


def test_every_alert_is_unit_tested_or_listed_as_not() -> None:
    tested = set(re.findall(r"alertname: (\w+)", (PROMETHEUS / "rules_test.yml").read_text()))
    # Expressions over rates of counters and histograms, checked by `promtool check rules` only.
    untested = {
        "EmailEngineOutboxGrowing",
        "EmailEngineConsumerLag",
        "EmailEngineRpcErrors",
        "EmailEngineRpcSlow",
        "EmailEngineMetricsReadFailing",
        "EmailEngineDnsblZoneUnhealthy",
        "EmailEngineScansOverdue",
        "EmailEngineMailwizzSyncStale",
        "EmailEngineAccountingFailing",
        "EmailEngineComplaintRateHigh",
    }
    assert sorted({rule["alert"] for rule in alerts()} - tested - untested) == []
