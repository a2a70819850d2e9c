"""DMARC alignment (RFC 7489 §3.1 and §4.2): whether mail From the sending domain passes DMARC, and through what.

DMARC passes for a message when SPF passes for its Return-Path (MAIL FROM) domain *and* that domain is aligned with
the From domain, or when a DKIM signature verifies *and* its d= is aligned. Aligned means the same organizational
domain (relaxed, the default; Public Suffix List) or the very same name (strict, `aspf=s` / `adkim=s` in the DMARC
record). Receivers judge each message: here, each sending IP, since SPF passes or fails per IP.

The verdict, in order:
* FAIL when mail from some IP would fail DMARC (neither identifier aligned and passing), naming the IPs and why;
  UNKNOWN instead when DNS trouble on an identifier that could have passed leaves it open, WARN when only an
  identifier that was not given (no selector, no IP) could make it pass;
* the tenant's `single_alignment` verdict (WARN by default) when DMARC passes through one identifier while the
  other is known not to count (not aligned, or failing): one broken key or one forwarder and DMARC fails;
* PASS otherwise, saying what was not checked (no selector, no IP given).
No verdict at all (None) when there is nothing to judge: no IP and no selector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from reputation.domain.check_policy import DEFAULT_CHECK_POLICY, CheckPolicy
from reputation.domain.checks import CheckKind, CheckResult, Verdict
from reputation.domain.organizational import organizational_domain


def aligned(identifier: str, from_domain: str, mode: str) -> bool:
    """RFC 7489 §3.1: strict ("s") needs the same name; relaxed ("r") the same organizational domain."""
    a, b = identifier.rstrip(".").lower(), from_domain.rstrip(".").lower()
    if mode == "s":
        return a == b
    return organizational_domain(a) == organizational_domain(b)


def _how(identifier: str, from_domain: str, mode: str) -> str:
    """Why an identifier is or is not aligned, in words."""
    if mode == "s":
        same = identifier == from_domain
        return f"strict alignment needs the same name: {identifier} {'=' if same else '≠'} {from_domain}"
    org, from_org = organizational_domain(identifier), organizational_domain(from_domain)
    if org == from_org:
        return f"relaxed: both under {org}"
    return f"relaxed: {identifier} is under {org}, {from_domain} under {from_org}"


class _State(StrEnum):
    PASSES = "passes"  # aligned and passing
    NOT_ALIGNED = "not aligned"
    FAILS = "fails"  # aligned, but does not pass
    UNKNOWN = "unknown"  # DNS did not let us judge
    NOT_CHECKED = "not checked"  # nothing given to check


@dataclass(frozen=True)
class _Identifier:
    state: _State
    words: str  # what a person reads about it


def _spf_states(return_path: str, from_domain: str, mode: str, spf: Sequence[CheckResult]) -> dict[str, _Identifier]:
    """Per sending IP: how SPF counts for DMARC."""
    is_aligned = aligned(return_path, from_domain, mode)
    how = _how(return_path, from_domain, mode)
    out: dict[str, _Identifier] = {}
    for result in spf:
        ip = result.subject
        if not is_aligned:
            out[ip] = _Identifier(_State.NOT_ALIGNED, f"the Return-Path domain {return_path} is not aligned ({how})")
        elif result.verdict is Verdict.UNKNOWN:
            out[ip] = _Identifier(_State.UNKNOWN, f"SPF of {return_path} for {ip} could not be evaluated")
        elif result.details.get("result") == "pass":
            words = f"the Return-Path domain {return_path} is aligned ({how}) and SPF passes for {ip}"
            out[ip] = _Identifier(_State.PASSES, words)
        else:
            found = result.details.get("result") or result.verdict.value
            out[ip] = _Identifier(
                _State.FAILS, f"the Return-Path domain {return_path} is aligned ({how}) but SPF gives {found} for {ip}"
            )
    return out


def _dkim_state(dkim_domain: str, from_domain: str, mode: str, dkim: Sequence[CheckResult]) -> _Identifier:
    if not dkim:
        return _Identifier(_State.NOT_CHECKED, "DKIM was not checked (no selector given)")
    how = _how(dkim_domain, from_domain, mode)
    if not aligned(dkim_domain, from_domain, mode):
        return _Identifier(_State.NOT_ALIGNED, f"DKIM d={dkim_domain} is not aligned ({how})")
    usable = [r.subject for r in dkim if r.verdict in (Verdict.PASS, Verdict.WARN)]
    if usable:
        keys = ", ".join(usable)
        return _Identifier(_State.PASSES, f"DKIM d={dkim_domain} is aligned ({how}) and its key {keys} is usable")
    if any(r.verdict is Verdict.UNKNOWN for r in dkim):
        return _Identifier(_State.UNKNOWN, f"the DKIM keys of {dkim_domain} could not be read")
    failing = ", ".join(r.subject for r in dkim)
    return _Identifier(
        _State.FAILS, f"DKIM d={dkim_domain} is aligned ({how}) but no key verifies (selector {failing} fails)"
    )


def alignment_verdict(
    *,
    from_domain: str,
    return_path_domain: str,
    dkim_domain: str,
    spf: Sequence[CheckResult],
    dkim: Sequence[CheckResult],
    dmarc: CheckResult | None,
    policy: CheckPolicy = DEFAULT_CHECK_POLICY,
) -> CheckResult | None:
    """`spf`: the SPF checks of the Return-Path domain, one per sending IP; `dkim`: the checks of the selectors
    signing with d=`dkim_domain`; `dmarc`: the domain's DMARC check (its alignment modes; relaxed without one)."""
    if not spf and not dkim:
        return None
    facts = dmarc.details if dmarc is not None else {}
    aspf, adkim = facts.get("aspf", "r"), facts.get("adkim", "r")
    details = {
        "from": from_domain,
        "return_path": return_path_domain,
        "dkim_domain": dkim_domain,
        "aspf": aspf,
        "adkim": adkim,
        "spf_aligned": str(aligned(return_path_domain, from_domain, aspf)).lower(),
        "dkim_aligned": str(aligned(dkim_domain, from_domain, adkim)).lower(),
    }

    def result(verdict: Verdict, reason: str) -> CheckResult:
        return CheckResult(CheckKind.ALIGNMENT, from_domain, verdict, reason, details)

    spf_by_ip = _spf_states(return_path_domain, from_domain, aspf, spf)
    dkim_id = _dkim_state(dkim_domain, from_domain, adkim, dkim)
    if not spf_by_ip:  # no sending IP given: SPF can only be judged as a name
        how = _how(return_path_domain, from_domain, aspf)
        if aligned(return_path_domain, from_domain, aspf):
            words = f"the Return-Path domain {return_path_domain} is aligned ({how}); SPF was not evaluated (no IP)"
            spf_by_ip = {"": _Identifier(_State.NOT_CHECKED, words)}
        else:
            words = f"the Return-Path domain {return_path_domain} is not aligned ({how})"
            spf_by_ip = {"": _Identifier(_State.NOT_ALIGNED, words)}
    sender = f"mail From {from_domain}"
    dkim_passes = dkim_id.state is _State.PASSES
    failing = [ip for ip, s in spf_by_ip.items() if s.state is not _State.PASSES and not dkim_passes]
    states = {spf_by_ip[ip].state for ip in failing} | ({dkim_id.state} if failing else set())
    details["dmarc_passes"] = "false" if failing else "true"
    if failing:
        ips = ", ".join(ip for ip in failing if ip)
        by = f" sent by {ips}" if ips else ""
        why = "; ".join(dict.fromkeys(spf_by_ip[ip].words for ip in failing)) + f"; {dkim_id.words}"
        if _State.UNKNOWN in states:
            details["dmarc_passes"] = "unknown"
            return result(Verdict.UNKNOWN, f"DMARC for {sender}{by} cannot be judged: {why}")
        if _State.NOT_CHECKED in states:
            details["dmarc_passes"] = "unknown"
            return result(
                Verdict.WARN,
                f"DMARC for {sender}{by} can pass only through what was not checked: {why}; give the sending IPs "
                "and DKIM selectors to judge it",
            )
        return result(
            Verdict.FAIL,
            f"DMARC fails for {sender}{by}: neither identifier is aligned and passing ({why}); receivers apply the "
            "domain's DMARC policy to it, and Gmail, Yahoo and Microsoft reject unaligned bulk mail",
        )
    spf_passes = all(s.state is _State.PASSES for s in spf_by_ip.values())
    through = [name for name, ok in (("SPF", spf_passes), ("DKIM", dkim_passes)) if ok]
    details["through"] = ",".join(t.lower() for t in through)
    spf_words = "; ".join(dict.fromkeys(s.words for s in spf_by_ip.values()))
    if len(through) == 2:
        return result(Verdict.PASS, f"DMARC passes for {sender} through SPF and DKIM: {spf_words}; {dkim_id.words}")
    [only] = through
    other = dkim_id if only == "SPF" else next(s for s in spf_by_ip.values() if s.state is not _State.PASSES)
    mine = spf_words if only == "SPF" else dkim_id.words
    if other.state in (_State.NOT_ALIGNED, _State.FAILS) and policy.single_alignment is not Verdict.PASS:
        return result(
            policy.single_alignment,
            f"DMARC passes for {sender} only through {only}: {mine}; but {other.words}, so one broken "
            f"{'signature' if only == 'DKIM' else 'SPF record'} or a forwarder and DMARC fails",
        )
    return result(Verdict.PASS, f"DMARC passes for {sender} through {only}: {mine}; {other.words}")
