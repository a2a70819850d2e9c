"""Contact files as operators have them: spreadsheet CSVs (commas, semicolons, a BOM) and the API's JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.contacts import ContactFile
from cli.errors import CliError, ExitCode


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def refused(path: Path) -> str:
    with pytest.raises(CliError) as caught:
        list(ContactFile.open(path).contacts())
    assert caught.value.exit_code is ExitCode.BAD_INPUT
    return caught.value.message


def test_names_and_extra_columns_become_the_contact_and_its_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", "email,first_name,last_name,city,plan\nmarie@r.test,Marie,Curie,Paris,\n")
    assert list(ContactFile.open(path).contacts()) == [
        {"email": "marie@r.test", "first_name": "Marie", "last_name": "Curie", "fields": {"city": "Paris"}}
    ]


def test_a_french_spreadsheet_export_semicolons_a_bom_and_other_header_spellings(tmp_path: Path) -> None:
    content = "\ufeffE-Mail;Firstname;LastName;Ville\r\njean@r.test;Jean;Moulin;Lyon\r\n\r\n;;;\r\nzoé@r.test;Zoé;;\r\n"
    path = write(tmp_path, "export.txt", content.encode("utf-8"))
    assert list(ContactFile.open(path).contacts()) == [
        {"email": "jean@r.test", "first_name": "Jean", "last_name": "Moulin", "fields": {"Ville": "Lyon"}},
        {"email": "zoé@r.test", "first_name": "Zoé"},
    ]


def test_tabs_quoted_cells_and_a_one_column_file(tmp_path: Path) -> None:
    tabs = write(tmp_path, "c.tsv", 'email\tnote\na@r.test\t"hello, world"\n')
    assert list(ContactFile.open(tabs).contacts()) == [{"email": "a@r.test", "fields": {"note": "hello, world"}}]
    single = write(tmp_path, "one.csv", "email\na@r.test\nb@r.test\n")
    assert [c["email"] for c in ContactFile.open(single).contacts()] == ["a@r.test", "b@r.test"]


def test_an_empty_email_is_left_for_the_service_to_report(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", "email,first_name\n,Nobody\n")
    assert list(ContactFile.open(path).contacts()) == [{"email": "", "first_name": "Nobody"}]


def test_a_file_without_an_email_column_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", "name,city\nMarie,Paris\n")
    with pytest.raises(CliError) as caught:
        ContactFile.open(path)
    assert caught.value.message == f"{path}: no email column (the header names: name, city)"


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("email,city\na@r.test,Paris,extra\n", "line 2 has 3 values but the header names 2 columns"),
        ("", "is empty: the first line names the columns"),
        ("email,email\na@r.test,b@r.test\n", "two columns are the contact's email"),
        ("email,,city\na@r.test,x,y\n", "column 2 has no name in the header"),
    ],
)
def test_bad_csv_is_refused_naming_what_and_where(tmp_path: Path, content: str, why: str) -> None:
    path = write(tmp_path, "c.csv", content)
    with pytest.raises(CliError) as caught:
        list(ContactFile.open(path).contacts())
    assert caught.value.exit_code is ExitCode.BAD_INPUT
    assert caught.value.message.startswith(f"{path}: {why}")


def test_a_file_that_is_not_utf8_says_how_to_save_it(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", "email,ville\nzoe@r.test,Orl\xe9ans\n".encode("latin-1"))
    assert refused(path) == f"{path}: is not UTF-8 text (save it as CSV UTF-8)"


def test_a_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(CliError) as caught:
        ContactFile.open(tmp_path / "nope.csv")
    assert caught.value.exit_code is ExitCode.BAD_INPUT and "no such file" in caught.value.message


def test_progress_counts_every_byte_read(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", "email,first_name\n" + "".join(f"p{n}@r.test,P{n}\n" for n in range(1000)))
    seen: list[int] = []
    contacts = list(ContactFile.open(path).contacts(seen.append))
    assert len(contacts) == 1000
    assert sum(seen) == path.stat().st_size


def test_json_as_the_api_takes_it_a_list_or_the_request_body(tmp_path: Path) -> None:
    people = [{"email": "a@r.test", "first_name": "A", "fields": {"CITY": "Nice"}}, {"email": "b@r.test"}]
    listed = write(tmp_path, "c.json", json.dumps(people))
    body = write(tmp_path, "body", json.dumps({"tenant": "sos-expat", "contacts": people}))
    assert ContactFile.open(body).format == "json"
    assert list(ContactFile.open(listed).contacts()) == list(ContactFile.open(body).contacts()) == people


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ({"people": []}, 'holds no list of contacts (a JSON list, or {"contacts": [...]})'),
        (["a@r.test"], "contacts[0] is not an object"),
        ([{"email": 5}], "contacts[0].email is not a string"),
        ([{"email": "a@r.test", "city": "Nice"}], 'contacts[0] has city: put list fields under "fields"'),
        ([{"email": "a@r.test", "fields": {"AGE": 5}}], "contacts[0].fields must map names to strings"),
    ],
)
def test_bad_json_is_refused_naming_the_contact(tmp_path: Path, data: object, why: str) -> None:
    path = write(tmp_path, "c.json", json.dumps(data))
    assert refused(path) == f"{path}: {why}"


def test_json_that_does_not_parse_says_where(tmp_path: Path) -> None:
    path = write(tmp_path, "c.json", '[{"email": "a@r.test"},\n')
    assert refused(path).startswith(f"{path}: is not JSON: ") and "line 2" in refused(path)
