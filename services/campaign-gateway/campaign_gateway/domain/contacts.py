"""Contact lists as a campaign receives them: addresses checked and de-duplicated."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from libs.errors import Violations

# Pragmatic address check (local@domain.tld); MailWizz validates again on import.
_EMAIL = re.compile(r"^[^@\s<>\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")
MAX_CONTACTS_PER_REQUEST = 100_000


@dataclass(frozen=True)
class Contact:
    email: str
    first_name: str = ""
    last_name: str = ""
    fields: dict[str, str] = field(default_factory=dict)


def clean_contacts(
    contacts: list[Contact], violations: Violations, *, max_count: int = MAX_CONTACTS_PER_REQUEST
) -> list[Contact]:
    """Lower-cases domains, drops exact duplicates, and names every malformed address."""
    if not contacts:
        violations.add("contacts", "at least one contact is required")
        return []
    if len(contacts) > max_count:
        violations.add("contacts", f"at most {max_count} contacts per request")
        return []
    seen: set[str] = set()
    cleaned: list[Contact] = []
    for index, contact in enumerate(contacts):
        email = contact.email.strip()
        if not _EMAIL.match(email):
            violations.add(f"contacts[{index}].email", f"{email!r} is not an email address")
            continue
        local, _, domain = email.rpartition("@")
        email = f"{local}@{domain.lower()}"
        if email in seen:
            continue
        seen.add(email)
        cleaned.append(Contact(email, contact.first_name, contact.last_name, dict(contact.fields)))
    return cleaned


# MailWizz list tags are upper-case: [A-Z0-9_], at most 50 characters (ListField::rules).
_TAG = re.compile(r"^[A-Z0-9_]{1,50}$")


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
    return {tag: value for tag, value in fields.items() if value != ""}
