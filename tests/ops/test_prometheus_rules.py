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


def test_every_alert_is_unit_tested() -> None:
    tested = set(re.findall(r"alertname: (\w+)", (PROMETHEUS / "rules_test.yml").read_text()))
    assert sorted({rule["alert"] for rule in alerts()} - tested) == []


def test_every_alert_is_tested_both_firing_and_silent() -> None:
    """Each alert has a case where it fires and one where it stays quiet (under its threshold or its `for`)."""
    tests = yaml.safe_load((PROMETHEUS / "rules_test.yml").read_text())["tests"]
    firing: set[str] = set()
    silent: set[str] = set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert sorted(names - firing) == []
    assert sorted(names - silent) == []
