"""Registered (organizational) domains, from the Public Suffix List bundled in the pinned `publicsuffixlist`.

Receivers and domain blocklists reason about the domain someone registered, not the host in a link or a
header: DMARC's relaxed alignment compares organizational domains (RFC 7489 §3.2), and SURBL and URIBL list
registered domains only, so a listing of `example.com` covers `click.example.com`. The list is the copy
shipped inside the package (nothing is fetched at run time; a newer list comes with a newer pin). Both of its
sections count, ICANN and private (`blogspot.com`, `herokuapp.com`): a customer's subdomain of a hosting
platform is its own registered domain, as receivers treat it. A name under no known suffix falls under the
list's default rule `*`: its last two labels.
"""

from __future__ import annotations

from functools import cache

from publicsuffixlist import PublicSuffixList


@cache
def _list() -> PublicSuffixList:
    return PublicSuffixList()  # the bundled list; read once per process


def organizational_domain(name: str) -> str:
    """`click.example.co.uk` → `example.co.uk`; `example.com` → itself; a public suffix (`co.uk`) → itself."""
    host = name.strip().rstrip(".").lower()
    return _list().privatesuffix(host) or host


def same_organization(a: str, b: str) -> bool:
    """Whether two names belong to one registered domain (DMARC relaxed alignment)."""
    return organizational_domain(a) == organizational_domain(b)


def within(name: str, domain: str) -> bool:
    """Whether `name` is `domain` or one of its subdomains (label-wise: `badexample.com` is not in `example.com`)."""
    host, parent = name.rstrip(".").lower(), domain.rstrip(".").lower()
    return host == parent or host.endswith("." + parent)
