"""THE place where a campaign's contact list is checked: which contacts are sent to, and why the others are not.

Public API:
    Contact                                   -- one contact as received (email, names, further fields)
    ProblemKind                               -- MALFORMED, DUPLICATE, NO_MAIL_HOST, SUPPRESSED, REJECTED
    ContactProblem(index, email, kind, detail)
    ContactCheck(accepted, positions, problems) -- what is still sent to, where each came from, what was dropped
    check_contacts(*, contacts) -> ContactCheck              -- rules 1-3
    drop_suppressed(*, check, suppressed_keys) -> ContactCheck -- rule 4
    suppression_key(email) -> str                            -- rule 4's key
    Suppression(tenant, email, reason, source, create_time)  -- one entry of a tenant's suppression list
    mailwizz_fields(contact) -> {tag: value}                 -- the MailWizz list fields of a contact
    list_fields(contact) -> {tag: value}                     -- those a list made by MailWizz's defaults holds

The rules:

 1. An address is `local@domain` with a dotted domain of letter-digit-hyphen labels; surrounding blanks are
    ignored. Anything else is MALFORMED, reported with its position and skipped (the others still go).
 2. The domain is compared and sent without case (domains are case-insensitive, a trailing dot is dropped);
    the local part keeps its case (RFC 5321 lets the receiving host tell `Ann` from `ann`).
 3. The second and later copies of one address (rule 2's form) are DUPLICATEs of the first, which is kept.
 4. An address on the tenant's suppression list is SUPPRESSED. The list is matched without any case at all:
    suppression errs on the side of not sending, and mailbox providers treat local parts without case anyway.

Recipient domains without a mail host (NO_MAIL_HOST) are decided in `domain/recipients.py`, and MailWizz's own
refusals (REJECTED) come back from the bulk import; both are reported as ContactProblems too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

# Pragmatic address check (local@domain.tld); MailWizz validates again on import.
_EMAIL = re.compile(r"^[^@\s<>\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")
MAX_CONTACTS_PER_REQUEST = 100_000
MAX_EMAIL_LENGTH = 254


@dataclass(frozen=True)
class Contact:
    email: str
    first_name: str = ""
    last_name: str = ""
    fields: dict[str, str] = field(default_factory=dict)


class ProblemKind(StrEnum):
    MALFORMED = "MALFORMED"
    DUPLICATE = "DUPLICATE"
    NO_MAIL_HOST = "NO_MAIL_HOST"
    SUPPRESSED = "SUPPRESSED"
    REJECTED = "REJECTED"


@dataclass(frozen=True)
class ContactProblem:
    index: int  # position in the request
    email: str  # as received
    kind: ProblemKind
    detail: str


@dataclass(frozen=True)
class ContactCheck:
    """`accepted[i]` came from position `positions[i]` of the request."""

    accepted: tuple[Contact, ...]
    positions: tuple[int, ...]
    problems: tuple[ContactProblem, ...]

    def keep(self, keep: Sequence[bool], dropped: Iterable[ContactProblem]) -> ContactCheck:
        """The same check with only the accepted contacts whose flag is True, and the new problems added."""
        problems = sorted((*self.problems, *dropped), key=lambda p: p.index)
        return ContactCheck(
            accepted=tuple(c for c, k in zip(self.accepted, keep, strict=True) if k),
            positions=tuple(p for p, k in zip(self.positions, keep, strict=True) if k),
            problems=tuple(problems),
        )


def normalized_email(raw: str) -> str | None:
    """Rules 1-2: the address as it is sent (domain lower-case), or None when it is not an address."""
    email = raw.strip()
    if email.endswith("."):
        email = email[:-1]
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        return None
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def check_contacts(*, contacts: Sequence[Contact]) -> ContactCheck:
    """Rules 1-3, in request order."""
    first_at: dict[str, int] = {}
    accepted: list[Contact] = []
    positions: list[int] = []
    problems: list[ContactProblem] = []
    for index, contact in enumerate(contacts):
        email = normalized_email(contact.email)
        if email is None:
            problems.append(
                ContactProblem(
                    index, contact.email, ProblemKind.MALFORMED, f"{contact.email!r} is not an email address"
                )
            )
            continue
        if email in first_at:
            problems.append(
                ContactProblem(
                    index, contact.email, ProblemKind.DUPLICATE, f"the same address as contact {first_at[email]}"
                )
            )
            continue
        first_at[email] = index
        accepted.append(Contact(email, contact.first_name.strip(), contact.last_name.strip(), dict(contact.fields)))
        positions.append(index)
    return ContactCheck(tuple(accepted), tuple(positions), tuple(problems))


@dataclass(frozen=True)
class Suppression:
    tenant: str
    email: str
    reason: str
    source: str  # "api", or "pmta:<node>": a hard bounce or complaint in that node's accounting
    create_time: datetime

    @property
    def key(self) -> str:
        return suppression_key(self.email)


def suppression_key(email: str) -> str:
    """Rule 4: how an address is looked up in a suppression list."""
    return email.strip().lower()


def drop_suppressed(*, check: ContactCheck, suppressed_keys: set[str]) -> ContactCheck:
    """Rule 4."""
    if not suppressed_keys:
        return check
    keep = [suppression_key(c.email) not in suppressed_keys for c in check.accepted]
    dropped = [
        ContactProblem(position, contact.email, ProblemKind.SUPPRESSED, "on the tenant's suppression list")
        for contact, position, kept in zip(check.accepted, check.positions, keep, strict=True)
        if not kept
    ]
    return check.keep(keep, dropped)


# MailWizz list tags are upper-case: [A-Z0-9_], at most 50 characters (ListField::rules).
_TAG = re.compile(r"^[A-Z0-9_]{1,50}$")
# The fields MailWizz gives every new list (EMAIL aside), and the longest value it keeps in one.
DEFAULT_LIST_TAGS = ("FNAME", "LNAME")
MAX_FIELD_LENGTH = 255


def mailwizz_fields(contact: Contact) -> dict[str, str]:
    """The MailWizz list fields of a contact besides EMAIL: FNAME and LNAME, then its own fields upper-cased.

    Empty values are left out (MailWizz would store them as empty anyway) and a field whose name cannot be a
    MailWizz tag is left out too, so a bulk import never fails on a field the list cannot have.
    """
    fields = {"FNAME": contact.first_name.strip(), "LNAME": contact.last_name.strip()}
    for name, value in contact.fields.items():
        tag = name.strip().upper().replace("-", "_").replace(" ", "_")
        if _TAG.match(tag) and tag not in ("EMAIL", "FNAME", "LNAME"):
            fields[tag] = value
    return {tag: value[:MAX_FIELD_LENGTH] for tag, value in fields.items() if value != ""}


def list_fields(contact: Contact) -> dict[str, str]:
    """The fields sent to a list the gateway created: MailWizz makes EMAIL, FNAME and LNAME on every new list,
    and a bulk import of a tag the list does not have is dropped by MailWizz (so its answer would not match what
    was sent). The contact's other fields stay in the gateway's own copy of the campaign."""
    return {tag: value for tag, value in mailwizz_fields(contact).items() if tag in DEFAULT_LIST_TAGS}
