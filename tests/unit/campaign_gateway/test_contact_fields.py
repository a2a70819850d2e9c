"""Contacts become MailWizz list fields."""

from __future__ import annotations

from campaign_gateway.domain.contacts import Contact, mailwizz_fields


def test_names_and_custom_fields_become_upper_case_tags() -> None:
    contact = Contact("a@example.com", "Ann", "", {"city": "Lyon", "zip-code": "69001", "bad tag!": "x", "email": "y"})
    assert mailwizz_fields(contact) == {"FNAME": "Ann", "CITY": "Lyon", "ZIP_CODE": "69001"}
