"""A tenant's check policy: how hard the judgement calls of the domain checks weigh, where receivers differ.

The RFCs decide most verdicts (an SPF fail, a revoked DKIM key, a missing DMARC record). Four depend on who the
tenant sends to, so each is a tenant setting with the verdict a seasoned deliverability engineer would give by
default (WARN: receivers penalise it, the big ones do not reject on it alone):

* `generic_ptr` — a reverse DNS name that looks generic (IP digits, `dynamic`, `pool`, a hosting default): GMX,
  Web.de and T-Online refuse it, Yahoo and Microsoft score it down; FAIL for tenants who send there a lot.
* `foreign_ptr` — a reverse DNS name outside both the sending domain and the HELO name's domain: Yahoo and iCloud
  want a PTR "reflecting your domain"; PASS for tenants on shared infrastructure who accept it.
* `single_alignment` — DMARC passes through one aligned identifier only (DKIM but not the Return-Path's SPF, or
  the reverse): DMARC passes, but one broken key or one forwarder and it fails; PASS for tenants who accept that.
* `ed25519_only` — the domain signs only with Ed25519 (RFC 8463): many receivers verify RSA only, so to them the
  mail is unsigned; PASS for tenants whose receivers all verify Ed25519.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from libs.errors import Violations
from reputation.domain.checks import Verdict

#: The verdicts a policy may give: UNKNOWN is reserved for DNS that did not let us judge.
POLICY_VERDICTS = (Verdict.PASS, Verdict.WARN, Verdict.FAIL)


@dataclass(frozen=True)
class CheckPolicy:
    generic_ptr: Verdict = Verdict.WARN
    foreign_ptr: Verdict = Verdict.WARN
    single_alignment: Verdict = Verdict.WARN
    ed25519_only: Verdict = Verdict.WARN

    def as_dict(self) -> dict[str, str]:
        """Only the values that differ from the defaults (what a tenant chose)."""
        default = CheckPolicy()
        return {
            f.name: getattr(self, f.name).value
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }


DEFAULT_CHECK_POLICY = CheckPolicy()


def check_policy_from(values: Mapping[str, str], field_name: str = "check_policy") -> CheckPolicy:
    """A policy from `{setting: verdict}` ("pass", "warn" or "fail"; missing or empty: the default), every bad
    setting named (`check_policy.generic_ptr`)."""
    problems = Violations()
    known = {f.name for f in fields(CheckPolicy)}
    chosen: dict[str, Verdict] = {}
    for name, value in values.items():
        where = f"{field_name}.{name}"
        if name not in known:
            problems.add(where, f"unknown setting; the settings are {', '.join(sorted(known))}")
            continue
        text = (value or "").strip().lower()
        if not text:
            continue
        if text not in {v.value for v in POLICY_VERDICTS}:
            problems.add(where, "must be pass, warn or fail")
            continue
        chosen[name] = Verdict(text)
    problems.raise_if_any()
    return CheckPolicy(**chosen)
