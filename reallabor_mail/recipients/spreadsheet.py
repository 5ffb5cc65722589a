"""The mailing list as Excel reads and writes it: CSV decoding, parsing, import and export.

An import is all or nothing unless asked otherwise, never guesses an encoding from a file that mixes
two, and never overwrites stored details silently. An export of a list imports back to the same
people with the same status.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

from reallabor_mail.errors import ReallaborError
from reallabor_mail.recipients.person import FORMULA_START, PERSON_FIELDS, Recipient, clean_person
from reallabor_mail.recipients.store import (
    STATUSES,
    RecipientError,
    Status,
    check_list_name,
    find,
    import_person,
    is_suppressed,
    people,
)


class ImportRefused(ReallaborError):
    """A CSV file could not be imported; the message lists every problem."""


_HEADER_ALIASES: dict[str, str] = {
    "email": "email", "emailadresse": "email", "emailaddress": "email", "mail": "email",
    "salutation": "salutation", "anrede": "salutation",
    "title": "title", "titel": "title",
    "firstname": "first_name", "vorname": "first_name", "givenname": "first_name",
    "lastname": "last_name", "nachname": "last_name", "surname": "last_name", "familyname": "last_name",
    "organisation": "organisation", "organization": "organisation", "institution": "organisation",
    "language": "language", "sprache": "language",
    "status": "status", "since": "since", "seit": "since",
}  # fmt: skip
KNOWN_COLUMNS = (
    "email/E-Mail, salutation/Anrede, title/Titel, first_name/Vorname, last_name/Nachname, "
    "organisation/Organisation, language/Sprache, status and since (as the export writes them)"
)
_UTF8_SEQUENCE = re.compile(  # a well-formed multi-byte UTF-8 character: evidence that a file is UTF-8
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xef][\x80-\xbf]{2}"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


def _column(header: str) -> str | None:
    return _HEADER_ALIASES.get(re.sub(r"[\s_\-.]", "", header.strip().lstrip("\ufeff").casefold()))


def _row_of(data: bytes, offset: int, codec: str) -> int:
    """The CSV row (header = 1) a byte offset falls in: line breaks inside quotes do not end a row."""
    row, quoted = 1, False
    for char in data[:offset].decode(codec, errors="replace"):
        if char == '"':
            quoted = not quoted
        elif char == "\n" and not quoted:
            row += 1
    return row


def _decode(data: bytes, name: str, codec: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        raise ImportRefused(
            f"{name}: row {_row_of(data, exc.start, codec)}: byte {data[exc.start]:#04x} is not "
            f"{codec.removesuffix('-sig')} text; "
            "save the file from Excel as 'CSV UTF-8', or pass the encoding it was saved in (--encoding)"
        ) from None


def decode_csv(data: bytes, name: str, encoding: str | None = None) -> str:
    """Text of a CSV as Excel saves it: UTF-8 with or without BOM, UTF-16 ("Unicode text"), or cp1252.

    Without ``encoding`` the encoding is told from the file; a file valid in none of these, or one
    with UTF-8 text and bytes that are not (a UTF-8 file edited with a cp1252 program), is refused
    naming the row of the first bad byte instead of being read as mojibake.
    """
    if encoding is not None:
        try:
            codec = codecs.lookup(encoding).name
        except LookupError:
            known = "use e.g. utf-8, cp1252 or utf-16"
            raise ImportRefused(f"{name}: --encoding {encoding!r} is unknown; {known}") from None
        return _decode(data, name, "utf-8-sig" if codec == "utf-8" else codec)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _decode(data, name, "utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    if data.startswith(codecs.BOM_UTF8) or _UTF8_SEQUENCE.search(data):
        raise ImportRefused(
            f"{name}: row {_row_of(data, first_bad, 'utf-8')}: byte {data[first_bad]:#04x} is not UTF-8, but the "
            "file has UTF-8 text elsewhere: it mixes two encodings. Correct that row and save the file from "
            "Excel as 'CSV UTF-8' (or pass --encoding cp1252 if all of it is Windows-1252)"
        )
    return _decode(data, name, "cp1252")


def _unneutralise(cell: str) -> str:
    """A cell as it was before :func:`neutralise` put a ``'`` before it."""
    return cell[1:] if cell.startswith("'") and cell[1:].lstrip("'").startswith(FORMULA_START) else cell


def neutralise(value: str | None) -> str:
    """A cell Excel shows as text: a ``'`` goes before a leading ``= + - @`` (or tab/CR), also behind
    other ``'``, so that :func:`_unneutralise` gives back exactly the value."""
    text = value or ""
    return "'" + text if text.lstrip("'").startswith(FORMULA_START) else text


@dataclass(frozen=True)
class RowProblem:
    row: int
    message: str


@dataclass(frozen=True)
class PersonRow:
    """A valid row: the person, the fields the row has values for, and the status it asks for."""

    number: int
    person: Recipient
    given: frozenset[str]
    status: Status = "subscribed"


@dataclass
class ImportReport:
    """What an import did, row by row where it matters."""

    source: str
    list_name: str
    added: int = 0
    known: int = 0  # already stored
    updated: int = 0  # known people whose details were changed (``update``)
    changed: list[RowProblem] = field(default_factory=list)  # details that differ from the stored ones
    merged: list[RowProblem] = field(default_factory=list)
    kept_out: list[RowProblem] = field(default_factory=list)
    invalid: list[RowProblem] = field(default_factory=list)


def _header(text: str, name: str) -> tuple[str, list[str]]:
    """The delimiter and the columns: the delimiter is the one that makes the header name an email column."""
    first_line = text.splitlines()[0] if text.strip() else ""
    if not first_line.strip():
        raise ImportRefused(f"{name}: the file is empty" if not text.strip() else f"{name}: the first line is empty")
    best: tuple[int, str, list[str]] | None = None
    for delimiter in (";", ",", "\t"):
        cells = next(csv.reader([first_line], delimiter=delimiter))
        columns = [_column(c) for c in cells]
        if "email" in columns:
            known = sum(c is not None for c in columns)
            if best is None or known > best[0]:
                best = (known, delimiter, cells)
    if best is None:
        raise ImportRefused(
            f"{name}: no email column in the first line {first_line[:80]!r}. The columns must be separated by "
            f"';' or ',' and named in the first line; known columns: {KNOWN_COLUMNS}"
        )
    _, delimiter, cells = best
    columns = [_column(c) for c in cells]
    unknown = [c for c, col in zip(cells, columns, strict=True) if col is None and c.strip()]
    if unknown:
        raise ImportRefused(
            f"{name}: unknown column(s) {', '.join(repr(c) for c in unknown)}; known columns: {KNOWN_COLUMNS}"
        )
    doubled = sorted({c for c in columns if c and columns.count(c) > 1})
    if doubled:
        raise ImportRefused(f"{name}: column(s) {', '.join(doubled)} appear more than once")
    return delimiter, [c or "" for c in columns]


def _person_row(number: int, cells: dict[str, str]) -> PersonRow | list[RowProblem]:
    person, problems = clean_person(cells)
    status = cells.get("status", "").strip() or "subscribed"
    bad = [RowProblem(number, p.message) for p in problems]
    if status not in STATUSES:
        bad.append(RowProblem(number, f"status {status!r} is not one of {', '.join(STATUSES)}"))
    if bad or person is None:
        return bad
    given = {n for n in PERSON_FIELDS if cells.get(n, "").strip()} | ({"title"} if person.title else set())
    return PersonRow(number, person, frozenset(given), cast(Status, status))


def parse_csv(data: bytes, name: str, encoding: str | None = None) -> tuple[list[PersonRow], list[RowProblem]]:
    """The valid rows (header = row 1) and a problem for every bad row."""
    text = decode_csv(data, name, encoding)
    delimiter, columns = _header(text, name)
    good: list[PersonRow] = []
    bad: list[RowProblem] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        next(reader)
        for number, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(columns) and not any(c.strip() for c in cells[len(columns) :]):
                cells = cells[: len(columns)]
            if len(cells) != len(columns):
                bad.append(RowProblem(number, (
                    f"{len(cells)} field(s), but the header has {len(columns)} "
                    f"(the file is separated by {delimiter!r}; is a value with {delimiter!r} missing its quotes?)"
                )))
                continue
            row = _person_row(number, {c: _unneutralise(v) for c, v in zip(columns, cells, strict=True) if c})
            if isinstance(row, PersonRow):
                good.append(row)
            else:
                bad.extend(row)
    except csv.Error as exc:
        bad.append(RowProblem(reader.line_num, f"unreadable CSV ({exc}); nothing after this line was read"))
    if not good and not bad:
        raise ImportRefused(f"{name}: no rows below the header")
    return good, bad


def _label(name: str) -> str:
    return name.replace("_", " ")


def _value(row: PersonRow, name: str) -> str | None:
    return row.status if name == "status" else cast("str | None", getattr(row.person, name))


def _one_row_per_person(rows: Sequence[PersonRow], report: ImportReport) -> list[PersonRow]:
    """Rows of the same address become one when they do not contradict each other (reported as
    merged); a later row that gives another value for a field is invalid (both are named)."""
    unique: dict[str, PersonRow] = {}
    for row in rows:
        first = unique.get(row.person.email)
        if first is None:
            unique[row.person.email] = row
            continue
        both = sorted((first.given & row.given) - {"email"})
        clash = [n for n in [*both, "status"] if _value(first, n) != _value(row, n)]
        if clash:
            differences = "; ".join(f"{_label(n)} {_value(first, n)!r} there, {_value(row, n)!r} here" for n in clash)
            report.invalid.append(RowProblem(row.number, (
                f"{row.person.email} is also in row {first.number} with other details ({differences}); "
                "keep one of the two rows"
            )))
            continue
        gaps = {n: getattr(row.person, n) for n in row.given - first.given}
        unique[row.person.email] = replace(first, person=replace(first.person, **gaps), given=first.given | row.given)
        report.merged.append(RowProblem(row.number, f"{row.person.email} is also in row {first.number}; merged"))
    return list(unique.values())


def import_csv(
    conn: sqlite3.Connection,
    path: Path,
    list_name: str,
    *,
    secret: bytes,
    by: str,
    now: dt.datetime,
    skip_invalid: bool = False,
    update: bool = False,
    encoding: str | None = None,
) -> ImportReport:
    """Import an Excel CSV onto a list as subscribed, with the file, date and person as consent record.

    All or nothing: any invalid row refuses the whole file (every bad row listed) unless
    ``skip_invalid``. Stored details that the file has otherwise are reported in ``changed`` and taken
    only with ``update``. Addresses that unsubscribed or bounced keep that status; erased addresses are
    kept out (they can sign up again themselves). A ``status`` column (an export) gives the status of
    people new to the list; ``since`` is ignored.
    """
    check_list_name(list_name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportRefused(f"{path}: cannot read the file: {exc.strerror}") from None
    rows, bad = parse_csv(data, str(path), encoding)
    report = ImportReport(source=path.name, list_name=list_name, invalid=bad)
    unique = _one_row_per_person(rows, report)
    if report.invalid and not skip_invalid:
        lines = "\n".join(f"{path}: row {p.row}: {p.message}" for p in sorted(report.invalid, key=lambda p: p.row))
        raise ImportRefused(
            f"{path}: {len({p.row for p in report.invalid})} invalid row(s); nothing was imported "
            f"(correct them, or use --skip-invalid to import the valid rows):\n{lines}"
        )
    with_status = f"with status {{}} on {list_name}; left so"
    for row in unique:
        email = row.person.email
        if is_suppressed(conn, email, secret):
            report.kept_out.append(RowProblem(row.number, (
                f"{email} was erased or bounced and is on the suppression list; "
                "not imported (the person can sign up again on the subscription page)"
            )))
            continue
        done = import_person(
            conn, row.person, row.given, list_name, status=row.status, update=update,
            source=f"file {path.name}", actor=by, now=now,
        )  # fmt: skip
        report.added += done.added
        report.known += not done.added
        report.updated += bool(update and done.changes)
        if done.changes:
            differences = "; ".join(f"{_label(c.field)} {c.stored!r} → {c.imported!r}" for c in done.changes)
            action = "updated" if update else "kept the stored details (--update takes the file's)"
            report.changed.append(RowProblem(row.number, f"{email} is stored otherwise: {differences}; {action}"))
        if done.kept:
            report.kept_out.append(RowProblem(row.number, f"{email} is {with_status.format(done.status)}"))
    return report


def _write_rows(out: io.StringIO, header: Sequence[str], rows: Iterable[Sequence[str | None]]) -> None:
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([neutralise(v) for v in row] for row in rows)


def _person_cells(person: Recipient) -> list[str | None]:
    return [getattr(person, name) for name in PERSON_FIELDS]


def export_list(conn: sqlite3.Connection, list_name: str) -> str:
    """The people on a list with their status, as CSV that ``recipients import`` reads back."""
    out = io.StringIO()
    rows = []
    for person in people(conn, check_list_name(list_name)):
        membership = next(m for m in person.memberships if m.list_name == list_name)
        rows.append([*_person_cells(person.recipient), membership.status, membership.changed])
    _write_rows(out, [*PERSON_FIELDS, "status", "since"], rows)
    return out.getvalue()


def export_person(conn: sqlite3.Connection, email: str) -> str:
    """Everything stored about one person, consent records included, as CSV in three blocks."""
    person = find(conn, email)
    if person is None:
        raise RecipientError(f"{email}: not in the recipient list")
    out = io.StringIO()
    _write_rows(out, [*PERSON_FIELDS, "created", "updated"], [[*_person_cells(person.recipient), person.created,
                                                                 person.updated]])
    out.write("\r\n")
    _write_rows(out, ["list", "status", "since"], [[m.list_name, m.status, m.changed] for m in person.memberships])
    out.write("\r\n")
    _write_rows(
        out,
        ["at", "list", "action", "source", "by", "ip", "consent_version", "consent_text"],
        [[e.at, e.list_name, e.action, e.source, e.actor, e.ip, e.consent_version, e.consent_text]
         for e in person.events],
    )
    return out.getvalue()
