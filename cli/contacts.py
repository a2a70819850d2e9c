"""A campaign's contacts from a file: CSV (as a spreadsheet exports it) or JSON (the API's own shape).

CSV: a header row naming the columns, in any case; `email` is required, `first_name` and `last_name` are the
contact's names (`firstname`, `lastname` and `e-mail` are understood too), every other column is one of the
contact's `fields` (a MailWizz list field: its tag is the column name in upper case). The separator is found in
the header (`,`, `;` as French spreadsheets write it, or a tab); a UTF-8 byte order mark is skipped; empty
cells are left out.

JSON: a list of contacts, or an object with `contacts` (the REST body), each `{"email", "first_name",
"last_name", "fields": {...}}`.

Contacts are read one by one (`ContactFile.contacts`), so a large CSV streams without being held in memory;
`progress(bytes)` is called as the file is read.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.errors import CliError, ExitCode

Progress = Callable[[int], None]

_ALIASES = {
    "email": "email",
    "e_mail": "email",
    "email_address": "email",
    "first_name": "first_name",
    "firstname": "first_name",
    "last_name": "last_name",
    "lastname": "last_name",
}
_SEPARATORS = (",", ";", "\t")


def _canonical(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().lower())


def _separator(header_line: str) -> str:
    """The separator the header uses most (a one-column file has none: a comma)."""
    counts = {sep: header_line.count(sep) for sep in _SEPARATORS}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _bad(path: Path, message: str) -> CliError:
    return CliError(f"{path}: {message}", ExitCode.BAD_INPUT)


@dataclass(frozen=True)
class Columns:
    """What each CSV column is: the contact's email / names, or a field named as its header."""

    names: tuple[str, ...]
    roles: tuple[str, ...]  # "email", "first_name", "last_name" or "field"

    @classmethod
    def of(cls, path: Path, header: list[str]) -> Columns:
        names = tuple(h.strip() for h in header)
        roles = tuple(_ALIASES.get(_canonical(h), "field") for h in names)
        if "email" not in roles:
            shown = ", ".join(n for n in names if n) or "none"
            raise _bad(path, f"no email column (the header names: {shown})")
        for role in ("email", "first_name", "last_name"):
            if roles.count(role) > 1:
                raise _bad(path, f"two columns are the contact's {role}")
        empty = [i + 1 for i, n in enumerate(names) if not n]
        if empty:
            raise _bad(path, f"column {empty[0]} has no name in the header")
        return cls(names, roles)

    def contact(self, path: Path, line: int, row: list[str]) -> dict[str, Any]:
        if len(row) > len(self.names):
            raise _bad(path, f"line {line} has {len(row)} values but the header names {len(self.names)} columns")
        contact: dict[str, Any] = {}
        fields: dict[str, str] = {}
        for name, role, value in zip(self.names, self.roles, row, strict=False):
            value = value.strip()
            if not value:
                continue
            if role == "field":
                fields[name] = value
            else:
                contact[role] = value
        contact.setdefault("email", "")  # an empty email is the service's to report (MALFORMED), like any other
        if fields:
            contact["fields"] = fields
        return contact


def _counted_lines(stream: io.TextIOBase, progress: Progress | None) -> Iterator[str]:
    for line in stream:
        if progress is not None:
            progress(len(line.encode("utf-8")))
        yield line


def _json_contact(path: Path, index: int, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _bad(path, f"contacts[{index}] is not an object")
    contact: dict[str, Any] = {}
    for key in ("email", "first_name", "last_name"):
        value = item.get(key, "")
        if not isinstance(value, str):
            raise _bad(path, f"contacts[{index}].{key} is not a string")
        if value or key == "email":
            contact[key] = value
    fields = item.get("fields") or {}
    if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
        raise _bad(path, f"contacts[{index}].fields must map names to strings")
    if fields:
        contact["fields"] = dict(fields)
    unknown = sorted(set(item) - {"email", "first_name", "last_name", "fields"})
    if unknown:
        raise _bad(path, f'contacts[{index}] has {", ".join(unknown)}: put list fields under "fields"')
    return contact


@dataclass(frozen=True)
class ContactFile:
    path: Path
    format: str  # "csv" or "json"
    size: int

    @classmethod
    def open(cls, path: Path) -> ContactFile:
        try:
            size = path.stat().st_size
            with path.open("rb") as stream:
                start = stream.read(4096)
        except OSError as exc:
            raise _bad(path, (exc.strerror or str(exc)).lower()) from None
        if path.suffix.lower() == ".json":
            kind = "json"
        elif path.suffix.lower() in (".csv", ".tsv", ".txt"):
            kind = "csv"
        else:
            kind = "json" if start.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"[", b"{") else "csv"
        found = cls(path, kind, size)
        if kind == "csv":
            found._columns()  # a file without an email column is refused before anything is sent
        return found

    def _open_text(self) -> io.TextIOWrapper:
        return self.path.open(encoding="utf-8-sig", newline="", errors="strict")

    def _columns(self) -> Columns:
        try:
            with self._open_text() as stream:
                header_line = stream.readline()
        except UnicodeDecodeError:
            raise _bad(self.path, "is not UTF-8 text (save it as CSV UTF-8)") from None
        if not header_line.strip():
            raise _bad(self.path, "is empty: the first line names the columns (email, first_name, ...)")
        header = next(csv.reader([header_line], delimiter=_separator(header_line)))
        return Columns.of(self.path, header)

    def contacts(self, progress: Progress | None = None) -> Iterator[dict[str, Any]]:
        """Every contact, in file order."""
        if self.format == "json":
            yield from self._json_contacts(progress)
        else:
            yield from self._csv_contacts(progress)

    def _csv_contacts(self, progress: Progress | None) -> Iterator[dict[str, Any]]:
        columns = self._columns()
        try:
            with self._open_text() as stream:
                lines = _counted_lines(stream, progress)
                first = next(lines)
                reader = csv.reader(lines, delimiter=_separator(first))
                for row in reader:
                    if not any(cell.strip() for cell in row):
                        continue
                    yield columns.contact(self.path, reader.line_num + 1, row)
        except UnicodeDecodeError:
            raise _bad(self.path, "is not UTF-8 text (save it as CSV UTF-8)") from None
        except csv.Error as exc:
            raise _bad(self.path, f"not readable as CSV: {exc}") from None

    def _json_contacts(self, progress: Progress | None) -> Iterator[dict[str, Any]]:
        try:
            raw = self.path.read_text(encoding="utf-8-sig")
            data = json.loads(raw)
        except UnicodeDecodeError:
            raise _bad(self.path, "is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise _bad(self.path, f"is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        if progress is not None:
            progress(self.size)
        items = data.get("contacts") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise _bad(self.path, 'holds no list of contacts (a JSON list, or {"contacts": [...]})')
        for index, item in enumerate(items):
            yield _json_contact(self.path, index, item)
