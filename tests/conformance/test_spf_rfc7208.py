"""The openspf RFC 7208 test suite (a verbatim copy in tests/conformance/spf/), every test.

The suite defines its own DNS data per scenario (`zonedata`), so this is the one place where DNS is
a stand-in: the zone data is served through the same `SpfChecker` the service uses, via pyspf's
lookup contract. Conventions of the suite (and of its reference runner): a record type `SPF` also
creates a TXT record unless the name has a TXT entry; `TXT: NONE` suppresses that; a bare `TIMEOUT`
entry, or a `TIMEOUT` value for a type, is a DNS timeout (temperror). `result` may be a list of
acceptable results; the `explanation`, when given, must match exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import spf
import yaml

from reputation.adapters.spf_check import SpfChecker

#: The suite as the project received it (../shared, beside the checkout) when it is there, else the
#: verbatim copy kept in the repo (BSD licence beside it); test_the_vendored_copy_is_verbatim keeps them equal.
SHARED_SUITE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "spf" / "rfc7208-tests.yml"
VENDORED_SUITE = Path(__file__).resolve().parent / "spf" / "rfc7208-tests.yml"
SUITE = SHARED_SUITE if SHARED_SUITE.exists() else VENDORED_SUITE

Record = tuple[str, Any] | str


def _records(entries: list[Any]) -> list[Record]:
    """A name's zonedata entries as (type, value) pairs, with the SPF→TXT duplication of the suite."""
    out: list[Record] = []
    generated: list[Record] = []
    has_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
    for entry in entries:
        if entry == "TIMEOUT":
            out.append("TIMEOUT")
            continue
        for rtype, value in entry.items():
            if rtype == "SPF" and not has_txt:
                generated.append(("TXT", value))
            if value != "NONE":
                out.append((rtype, value))
    return out + generated


def zone_lookup(zonedata: dict[str, list[Any]]):
    """pyspf's DNS contract served from one scenario's zone data."""
    zone = {name.lower(): _records(entries) for name, entries in zonedata.items()}

    def lookup(name: str, qtype: str, strict: bool = True, timeout: float = 20.0) -> list:
        labels = [label for label in name.split(".") if label]
        if any(len(label) > 63 for label in labels):
            raise spf.TempError("DNS label too long")
        name = ".".join(labels)
        out = []
        for record in zone.get(name.lower(), []):
            if record == "TIMEOUT":
                if not any(r != "TIMEOUT" and r[0] == qtype for r in zone[name.lower()]):
                    raise spf.TempError("DNS timeout")
                continue
            rtype, value = record
            if value == "TIMEOUT":
                if rtype == qtype:
                    raise spf.TempError("DNS timeout")
                continue
            if rtype in ("TXT", "SPF"):
                strings = (value,) if isinstance(value, str) else tuple(value)
                value = tuple(s.encode("utf-8") if isinstance(s, str) else s for s in strings)
            elif rtype == "MX":
                value = (value[0], value[1])
            out.append(((name, rtype), value))
        return out

    return lookup


def load_cases() -> Iterator[Any]:
    with SUITE.open("rb") as fh:
        for scenario in yaml.safe_load_all(fh):
            if not scenario:
                continue
            zonedata = scenario.get("zonedata") or {}
            for test_id, test in scenario["tests"].items():
                yield pytest.param(scenario["description"], zonedata, test, id=test_id)


CASES = list(load_cases())


def test_the_whole_suite_is_loaded() -> None:
    assert len(CASES) == 203  # the 2014.04 release plus the 2019.08 additions


@pytest.mark.parametrize(("scenario", "zonedata", "test"), CASES)
def test_rfc7208(scenario: str, zonedata: dict[str, list[Any]], test: dict[str, Any]) -> None:
    checker = SpfChecker(zone_lookup(zonedata), timeout=20.0, count_worst_case=False)
    evaluation = checker.evaluate(
        test["host"],
        test["mailfrom"],
        test["helo"],
        strict=test.get("strict", True),
        default_explanation="DEFAULT",
    )
    accepted = test["result"] if isinstance(test["result"], list) else [test["result"]]
    assert evaluation.result in accepted, f"{scenario}: {test.get('description', '')} (spec {test['spec']})"
    if "explanation" in test:
        assert evaluation.explanation == test["explanation"]


def test_the_vendored_copy_is_verbatim() -> None:
    if SHARED_SUITE.exists():
        assert VENDORED_SUITE.read_bytes() == SHARED_SUITE.read_bytes()
