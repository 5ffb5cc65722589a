"""The mailing list as Excel reads and writes it: CSV decoding, parsing, import and export.

An import is all or nothing unless asked otherwise, never guesses an encoding from a file that mixes
two, and never overwrites stored details silently. An export of a list imports back to the same
people with the same status. An export speaks the staff language — column headings, status words,
times as local ``TT.MM.JJJJ HH:MM`` — and an import reads the headings and status words of every
language we speak, so a file exported in one office's language imports in another's.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo

from reallabor_mail.db import Connection
from reallabor_mail.errors import Code, ReallaborError
from reallabor_mail.i18n.languages import LANGUAGES
from reallabor_mail.i18n.messages import N_, _, ngettext, os_reason, translations
from reallabor_mail.recipients.person import (
    FIELD_LABELS,
    FORMULA_START,
    PERSON_FIELDS,
    Recipient,
    clean_person,
    field_label,
)
from reallabor_mail.recipients.store import (
    STATUSES,
    RecipientError,
    Status,
    StoredPerson,
    check_list_name,
    find,
    form_state_label,
    import_person,
    is_suppressed,
    list_names,
    people,
    read_status,
    registrations_of,
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
    "organisation/Organisation, language/Sprache, status, since/seit"
)
_UTF8_SEQUENCE = re.compile(  # a well-formed multi-byte UTF-8 character: evidence that a file is UTF-8
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xef][\x80-\xbf]{2}"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


# The export's column headings and status words beyond the person fields, as N_ labels translated where written.
_COLUMN_LABELS: dict[str, str] = {
    **FIELD_LABELS, "status": N_("Status"), "since": N_("Since"), "created": N_("Created"), "updated": N_("Updated"),
    "list": N_("List"), "at": N_("Time"), "action": N_("Action"), "source": N_("Source"), "by": N_("By"),
    "ip": N_("IP address"), "consent_version": N_("Consent version"), "consent_text": N_("Consent text"),
}  # fmt: skip
_STATUS_LABELS: dict[Status, str] = {
    "pending": N_("not yet confirmed"), "subscribed": N_("subscribed"), "unsubscribed": N_("unsubscribed"),
    "bounced": N_("undeliverable"),
}  # fmt: skip
EXPORT_ZONE = ZoneInfo("Europe/Berlin")  # the office's time, unless the caller passes site.yaml's


def _heading_key(header: str) -> str:
    return re.sub(r"[\s_\-.]", "", header.strip().lstrip("\ufeff").casefold())


@cache
def _headings_in_every_language() -> dict[str, str]:
    return {
        _heading_key(translations(language).gettext(label)): name
        for language in LANGUAGES for name, label in _COLUMN_LABELS.items()
    }  # fmt: skip


def _column(header: str) -> str | None:
    key = _heading_key(header)
    return _HEADER_ALIASES.get(key) or _headings_in_every_language().get(key)


@cache
def _status_words() -> dict[str, Status]:
    return {
        translations(language).gettext(label).casefold(): status
        for language in LANGUAGES for status, label in _STATUS_LABELS.items()
    }  # fmt: skip


def _read_status(word: str) -> Status | None:
    """The status a cell names: the stored word or the export's word in any of our languages."""
    return read_status(word) or _status_words().get(word.strip().casefold())


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
        raise ImportRefused(_(
            "{path}: row {row}: byte {byte} is not {encoding} text; save the file from Excel as 'CSV UTF-8', "
            "or pass the encoding it was saved in (--encoding)",
            path=name, row=_row_of(data, exc.start, codec), byte=f"{data[exc.start]:#04x}",
            encoding=codec.removesuffix("-sig"),
        )) from None  # fmt: skip


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
            message = _("{path}: --encoding {encoding!r} is unknown; use e.g. utf-8, cp1252 or utf-16", path=name,
                        encoding=encoding)  # fmt: skip
            raise ImportRefused(message) from None
        return _decode(data, name, "utf-8-sig" if codec == "utf-8" else codec)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _decode(data, name, "utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    if data.startswith(codecs.BOM_UTF8) or _UTF8_SEQUENCE.search(data):
        raise ImportRefused(_(
            "{path}: row {row}: byte {byte} is not UTF-8, but the file has UTF-8 text elsewhere: it mixes two "
            "encodings. Correct that row and save the file from Excel as 'CSV UTF-8' (or pass --encoding cp1252 "
            "if all of it is Windows-1252)",
            path=name, row=_row_of(data, first_bad, "utf-8"), byte=f"{data[first_bad]:#04x}",
        ))  # fmt: skip
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
    """Something about one row of a file (header = row 1), with the stable code of its kind."""

    row: int
    code: Code
    message: str

    def line(self, path: object) -> str:
        """``path: row N: message [CODE]``, as the import prints it (the code is a tag, untranslated)."""
        return _("{path}: row {row}: {message}", path=path, row=self.row, message=self.message) + f" [{self.code}]"


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
        empty = _("{path}: the file is empty", path=name) if not text.strip() else None
        raise ImportRefused(empty or _("{path}: the first line is empty", path=name))
    best: tuple[int, str, list[str]] | None = None
    for delimiter in (";", ",", "\t"):
        cells = next(csv.reader([first_line], delimiter=delimiter))
        columns = [_column(c) for c in cells]
        if "email" in columns:
            known = sum(c is not None for c in columns)
            if best is None or known > best[0]:
                best = (known, delimiter, cells)
    if best is None:
        raise ImportRefused(_(
            "{path}: no email column in the first line {line!r}. The columns must be separated by ';' or ',' and "
            "named in the first line; known columns: {known}", path=name, line=first_line[:80], known=KNOWN_COLUMNS,
        ))  # fmt: skip
    delimiter, cells = best[1:]
    columns = [_column(c) for c in cells]
    unknown = [c for c, col in zip(cells, columns, strict=True) if col is None and c.strip()]
    if unknown:
        raise ImportRefused(ngettext(
            "{path}: unknown column {columns}; known columns: {known}",
            "{path}: unknown columns {columns}; known columns: {known}",
            len(unknown), path=name, columns=", ".join(repr(c) for c in unknown), known=KNOWN_COLUMNS,
        ))  # fmt: skip
    doubled = sorted({c for c in columns if c and columns.count(c) > 1})
    if doubled:
        raise ImportRefused(ngettext(
            "{path}: the column {columns} appears more than once",
            "{path}: the columns {columns} appear more than once",
            len(doubled), path=name, columns=", ".join(doubled),
        ))  # fmt: skip
    return delimiter, [c or "" for c in columns]


def _person_row(number: int, cells: dict[str, str]) -> PersonRow | list[RowProblem]:
    person, problems = clean_person(cells)
    written = cells.get("status", "").strip() or "subscribed"
    status = _read_status(written)
    bad = [RowProblem(number, p.code, p.message) for p in problems]
    if status is None:
        statuses = ", ".join(_(_STATUS_LABELS[s]) for s in STATUSES)
        message = _("status {value!r} is not one of {statuses}", value=written, statuses=statuses)
        bad.append(RowProblem(number, Code.ROW_STATUS, message))
    if bad or person is None or status is None:
        return bad
    given = {n for n in PERSON_FIELDS if cells.get(n, "").strip()} | ({"title"} if person.title else set())
    return PersonRow(number, person, frozenset(given), status)


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
                bad.append(RowProblem(number, Code.ROW_FIELD_COUNT, ngettext(
                    "{count} field, but the header has {columns} (the file is separated by {delimiter!r}; is a value "
                    "with {delimiter!r} missing its quotes?)",
                    "{count} fields, but the header has {columns} (the file is separated by {delimiter!r}; is a "
                    "value with {delimiter!r} missing its quotes?)",
                    len(cells), columns=len(columns), delimiter=delimiter,
                )))  # fmt: skip
                continue
            row = _person_row(number, {c: _unneutralise(v) for c, v in zip(columns, cells, strict=True) if c})
            if isinstance(row, PersonRow):
                good.append(row)
            else:
                bad.extend(row)
    except csv.Error as exc:
        message = _("unreadable CSV ({detail}); nothing after this line was read", detail=exc)
        bad.append(RowProblem(reader.line_num, Code.ROW_UNREADABLE, message))
    if not good and not bad:
        raise ImportRefused(_("{path}: no rows below the header", path=name))
    return good, bad


def _column_label(name: str) -> str:
    return name if name == "status" else field_label(name)


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
            differences = "; ".join(
                _("{field} {there!r} there, {here!r} here", field=_column_label(n), there=_value(first, n),
                  here=_value(row, n))
                for n in clash
            )  # fmt: skip
            report.invalid.append(RowProblem(row.number, Code.ROW_CONFLICT, _(
                "{email} is also in row {first} with other details ({differences}); keep one of the two rows",
                email=row.person.email, first=first.number, differences=differences,
            )))  # fmt: skip
            continue
        gaps = {n: getattr(row.person, n) for n in row.given - first.given}
        unique[row.person.email] = replace(first, person=replace(first.person, **gaps), given=first.given | row.given)
        message = _("{email} is also in row {first}; merged", email=row.person.email, first=first.number)
        report.merged.append(RowProblem(row.number, Code.ROW_MERGED, message))
    return list(unique.values())


def import_csv(
    conn: Connection,
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
        raise ImportRefused(_("{path}: cannot read the file: {reason}", path=path, reason=os_reason(exc))) from None
    rows, bad = parse_csv(data, str(path), encoding)
    report = ImportReport(source=path.name, list_name=list_name, invalid=bad)
    unique = _one_row_per_person(rows, report)
    if report.invalid and not skip_invalid:
        lines = "\n".join(p.line(path) for p in sorted(report.invalid, key=lambda p: p.row))
        heading = ngettext(
            "{path}: {count} invalid row; nothing was imported (correct it, or use --skip-invalid to import the "
            "valid rows):",
            "{path}: {count} invalid rows; nothing was imported (correct them, or use --skip-invalid to import the "
            "valid rows):",
            len({p.row for p in report.invalid}), path=path,
        )  # fmt: skip
        raise ImportRefused(f"{heading}\n{lines}")
    for row in unique:
        email = row.person.email
        if is_suppressed(conn, email, secret):
            report.kept_out.append(RowProblem(row.number, Code.ROW_SUPPRESSED, _(
                "{email} was erased or bounced and is on the suppression list; not imported (the person can sign up "
                "again on the subscription page)", email=email,
            )))  # fmt: skip
            continue
        done = import_person(
            conn, row.person, row.given, list_name, status=row.status, update=update,
            source=f"file {path.name}", actor=by, now=now,
        )  # fmt: skip
        report.added += done.added
        report.known += not done.added
        report.updated += bool(update and done.changes)
        if done.changes:
            differences = "; ".join(
                _("{field} {stored!r} → {imported!r}", field=field_label(c.field), stored=c.stored, imported=c.imported)
                for c in done.changes
            )
            if update:
                message = _("{email} is stored otherwise: {differences}; updated", email=email, differences=differences)
            else:
                message = _("{email} is stored otherwise: {differences}; kept the stored details (--update takes the "
                            "file's)", email=email, differences=differences)  # fmt: skip
            report.changed.append(RowProblem(row.number, Code.ROW_STORED_OTHERWISE, message))
        if done.kept:
            message = _("{email} is with status {status} on {list}; left so", email=email, status=done.status,
                        list=list_name)  # fmt: skip
            report.kept_out.append(RowProblem(row.number, Code.ROW_STATUS_KEPT, message))
    return report


def _write_rows(out: io.StringIO, header: Sequence[str], rows: Iterable[Sequence[str | None]]) -> None:
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([_heading(name) for name in header])
    writer.writerows([neutralise(v) for v in row] for row in rows)


def _heading(name: str) -> str:
    label = _(_COLUMN_LABELS[name])
    return label[:1].upper() + label[1:]


def _person_cells(person: Recipient) -> list[str | None]:
    return [getattr(person, name) for name in PERSON_FIELDS]


def local_time(stamp: str | None, zone: ZoneInfo = EXPORT_ZONE) -> str | None:
    """A stored UTC stamp as Excel in a German office reads a time: ``01.10.2023 11:00`` in ``zone``."""
    if not stamp:
        return stamp
    return f"{dt.datetime.fromisoformat(stamp).astimezone(zone):%d.%m.%Y %H:%M}"


def _status(status: Status) -> str:
    return _(_STATUS_LABELS[status])


def export_list(conn: Connection, list_name: str, zone: ZoneInfo = EXPORT_ZONE) -> str:
    """The people on a list with their status, as CSV that ``recipients import`` reads back."""
    known = list_names(conn)
    if check_list_name(list_name) not in known:
        raise RecipientError(_(
            "there is no list '{name}' in this state (nobody was ever on it); lists here: {lists}",
            name=list_name, lists=", ".join(sorted(known)) or "–",
        ))  # fmt: skip
    out = io.StringIO()
    rows = []
    for person in people(conn, list_name):
        membership = next(m for m in person.memberships if m.list_name == list_name)
        changed = local_time(membership.changed, zone)
        rows.append([*_person_cells(person.recipient), _status(membership.status), changed])
    _write_rows(out, [*PERSON_FIELDS, "status", "since"], rows)
    return out.getvalue()


def export_person(conn: Connection, email: str, zone: ZoneInfo = EXPORT_ZONE) -> str:
    """Everything stored about one person as CSV in blocks: the details, the lists, the consent records
    (if on the recipient list) and the event registrations by form (if any)."""
    person = find(conn, email)
    registrations = registrations_of(conn, email)
    if person is None and not registrations:
        raise RecipientError(_("{email}: not in the recipient list and not registered for an event", email=email))
    out = io.StringIO()
    if person is not None:
        _write_person(out, person, zone)
    if registrations:
        if person is not None:
            out.write("\r\n")
        writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
        writer.writerow([_("Event"), _("Registration"), _("Requested on"), _("Confirmed on"),
                         *(_heading(name) for name in PERSON_FIELDS[1:])])  # fmt: skip
        writer.writerows([neutralise(v) for v in (
            r.event, form_state_label(r.state), local_time(r.requested_at, zone), local_time(r.confirmed_at, zone),
            *_person_cells(r.person)[1:],
        )] for r in registrations)  # fmt: skip
    return out.getvalue()


def _write_person(out: io.StringIO, person: StoredPerson, zone: ZoneInfo) -> None:
    _write_rows(out, [*PERSON_FIELDS, "created", "updated"], [[
        *_person_cells(person.recipient), local_time(person.created, zone), local_time(person.updated, zone),
    ]])  # fmt: skip
    out.write("\r\n")
    memberships = [[m.list_name, _status(m.status), local_time(m.changed, zone)] for m in person.memberships]
    _write_rows(out, ["list", "status", "since"], memberships)
    out.write("\r\n")
    _write_rows(
        out,
        ["at", "list", "action", "source", "by", "ip", "consent_version", "consent_text"],
        [[local_time(e.at, zone), e.list_name, e.action, e.source, e.actor, e.ip, e.consent_version, e.consent_text]
         for e in person.events],
    )
