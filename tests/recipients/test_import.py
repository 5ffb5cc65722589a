"""What an Excel list brings: mixed encodings, control characters, Anrede values such as "Frau Dr." or
"Divers", the same person twice, and the export read back in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reallabor_mail.db import Connection, StateLocation, connect
from reallabor_mail.errors import Code
from reallabor_mail.recipients import spreadsheet
from reallabor_mail.recipients import store as recipients
from reallabor_mail.recipients.person import Recipient, clean_person
from reallabor_mail.recipients.spreadsheet import ImportRefused
from tests.test_recipients import GERMAN, NOW, SECRET, cli, csv_bytes

CONTROLS = {"VT": "\x0b", "FF": "\x0c", "FS": "\x1c", "GS": "\x1d", "RS": "\x1e", "ESC": "\x1b", "BS": "\x08",
            "DEL": "\x7f", "NEL": "\x85", "CSI": "\x9b", "LS": "\u2028", "TAB": "\t"}  # fmt: skip
# Unicode format characters that turn text around or hide in it (a name shown reversed in the desk CSV, ICS, headers).
INVISIBLE = {"LRE": "\u202a", "RLO": "\u202e", "LRI": "\u2066", "PDI": "\u2069", "ZWSP": "\u200b",
             "ZWJ": "\u200d", "BOM": "\ufeff"}  # fmt: skip


@pytest.fixture
def conn(state: StateLocation) -> Iterator[Connection]:
    """The state on each back end (SQLite, PostgreSQL)."""
    connection = connect(state)
    yield connection
    connection.close()


def load(conn: Connection, tmp_path: Path, data: bytes, **options: object) -> spreadsheet.ImportReport:
    path = tmp_path / "liste.csv"
    path.write_bytes(data)
    return spreadsheet.import_csv(conn, path, "newsletter", secret=SECRET, by="t", now=NOW, **options)  # type: ignore[arg-type]


# --- encodings ----------------------------------------------------------------------------------


def test_a_utf8_file_with_one_cp1252_byte_is_refused_naming_its_row(conn: Connection, tmp_path: Path) -> None:
    rows = [["a@example.org", "Herr", "", "Jörg", "Müßig", "", ""], ["b@example.org", "Frau", "", "Olena", "X", "", ""]]
    data = csv_bytes(GERMAN, rows).replace(b"Olena", "Ol\xe9na".encode("cp1252"))  # one cp1252 é
    with pytest.raises(ImportRefused, match=r"liste\.csv: row 3: byte 0xe9 is not UTF-8.*mixes two encodings"):
        load(conn, tmp_path, data)
    assert list(recipients.subscribers(conn, "newsletter")) == []  # no "MÃ¼ÃŸig"
    load(conn, tmp_path, data, encoding="cp1252")  # the staff member says which one: taken as said
    assert [p.last_name for p in recipients.subscribers(conn, "newsletter")] == ["MÃ¼ÃŸig", "X"]


def test_the_row_of_a_bad_byte_counts_rows_not_lines(conn: Connection, tmp_path: Path) -> None:
    rows = [["a@example.org", "", "", "Zwei\nZeilen", "Ü", "", ""], ["b@example.org", "", "", "x\x81", "", "", ""]]
    with pytest.raises(ImportRefused, match=r"row 3: byte 0x81"):
        load(conn, tmp_path, csv_bytes(GERMAN, rows).replace(b"x\xc2\x81", b"x\x81"))


def test_an_explicit_encoding_is_checked_too(conn: Connection, tmp_path: Path) -> None:
    data = csv_bytes(GERMAN, [["a@example.org", "", "", "Jörg", "", "", ""]], encoding="cp1252")
    with pytest.raises(ImportRefused, match=r"row 2: byte 0xf6 is not utf-8 text"):
        load(conn, tmp_path, data, encoding="UTF-8")
    with pytest.raises(ImportRefused, match=r"--encoding 'klingonisch' is unknown"):
        load(conn, tmp_path, data, encoding="klingonisch")


# --- control characters -------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CONTROLS))
def test_control_characters_are_refused_in_every_personal_field(name: str) -> None:
    char = CONTROLS[name]
    for field in ("first_name", "last_name", "title", "organisation"):
        person, problems = clean_person({"email": "a@example.org", field: f"Anna{char}Bcc: x@evil.example"})
        assert person is None and [p.field for p in problems] == [field]
        assert f"U+{ord(char):04X}" in problems[0].message
    person, problems = clean_person({"email": f"a{char}@example.org"})
    assert person is None and [p.field for p in problems] == ["email"]


@pytest.mark.parametrize("name", list(INVISIBLE))
def test_bidi_and_zero_width_characters_are_refused_in_every_personal_field(name: str) -> None:
    char = INVISIBLE[name]
    for field in ("first_name", "last_name", "title", "organisation"):
        person, problems = clean_person({"email": "a@example.org", field: f"Anna{char}gpj.exe"})
        assert person is None and [p.field for p in problems] == [field]
        assert f"U+{ord(char):04X}" in problems[0].message and problems[0].code is Code.FIELD_CONTROL_CHARACTER


def test_bidi_characters_are_refused_by_the_csv_import(conn: Connection, tmp_path: Path) -> None:
    rows = [["a@example.org", "", "", "Anna", "\u202eKowalski", "", ""]]
    with pytest.raises(ImportRefused, match=r"row 2: last name contains the invisible character U\+202E"):
        load(conn, tmp_path, csv_bytes(GERMAN, rows))


def test_control_characters_are_refused_by_the_csv_import(conn: Connection, tmp_path: Path) -> None:
    rows = [["a@example.org", "", "", "Anna\x0bBcc: x@evil.example", "", "", ""]]
    with pytest.raises(ImportRefused, match=r"row 2: first name contains the control character U\+000B"):
        load(conn, tmp_path, csv_bytes(GERMAN, rows))


# --- Anrede as Excel lists write it -------------------------------------------------------------


def test_frau_dr_and_divers_do_not_stop_an_import(conn: Connection, tmp_path: Path) -> None:
    rows = [
        ["a@example.org", "Frau Dr.", "", "Anke", "Brockmann", "", ""],
        ["b@example.org", "Herr Prof. Dr.", "Prof. Dr.", "Jan", "Kowalski", "", ""],
        ["c@example.org", "Divers", "", "Kim", "Schmidt", "", ""],
    ]
    load(conn, tmp_path, csv_bytes(GERMAN, rows))
    people = {p.email: p for p in recipients.subscribers(conn, "newsletter")}
    assert (people["a@example.org"].salutation, people["a@example.org"].title) == ("Frau", "Dr.")
    assert (people["b@example.org"].salutation, people["b@example.org"].title) == ("Herr", "Prof. Dr.")
    assert people["c@example.org"].salutation is None  # greeted "Guten Tag Kim Schmidt," not as Frau or Herr


def test_a_title_in_two_places_that_disagree_is_refused(conn: Connection, tmp_path: Path) -> None:
    rows = [["a@example.org", "Frau Dr.", "Prof.", "Anke", "Brockmann", "", ""]]
    with pytest.raises(ImportRefused, match=r"row 2: salutation 'Frau Dr.' names the title 'Dr.', the title column"):
        load(conn, tmp_path, csv_bytes(GERMAN, rows))


def test_the_same_person_twice_with_other_names_is_reported_not_merged(
    conn: Connection, tmp_path: Path
) -> None:
    rows = [
        ["a@example.org", "Frau", "", "Anna", "Müller", "", ""],
        ["A@Example.org", "Frau", "", "Anne", "Müller", "", ""],
    ]
    with pytest.raises(ImportRefused) as refused:
        load(conn, tmp_path, csv_bytes(GERMAN, rows))
    assert (
        "row 3: a@example.org is also in row 2 with other details (first name 'Anna' there, 'Anne' here); "
        "keep one of the two rows"
    ) in str(refused.value)
    report = load(conn, tmp_path, csv_bytes(GERMAN, rows), skip_invalid=True)
    assert report.added == 1 and [p.row for p in report.invalid] == [3]


# --- the export reads back ----------------------------------------------------------------------


def test_export_reimports_to_the_same_people(tmp_path: Path) -> None:
    people = [
        (Recipient("formula=1+2@example.org", "Frau", "Dr.", "Anke", "Brockmann", "Stadt Köln", "de"), "subscribed"),
        (Recipient("'=1+2@example.org", None, None, "Zitat", None, None, "en"), "subscribed"),
        (Recipient("=1+2@example.org", "Herr", None, "Іван", "Петренко", "Громада", "uk"), "subscribed"),
        (Recipient("-x@example.org"), "unsubscribed"),
        (Recipient("pending@example.org"), "pending"),
    ]
    source = connect(tmp_path / "a.sqlite3")
    for person, status in people:
        recipients.add_recipient(source, person, "newsletter", status=status, source="t", now=NOW)
    exported = tmp_path / "export.csv"
    exported.write_text(spreadsheet.export_list(source, "newsletter"), encoding="utf-8-sig", newline="")
    assert "\n'=1+2@example.org;" in exported.read_text(encoding="utf-8-sig")  # Excel shows it as text

    target = connect(tmp_path / "b.sqlite3")
    report = spreadsheet.import_csv(target, exported, "newsletter", secret=SECRET, by="t", now=NOW)
    assert (report.added, report.invalid) == (5, [])

    def stored(conn: Connection) -> list[tuple[Recipient, str]]:
        return [(p.recipient, p.memberships[0].status) for p in recipients.people(conn, "newsletter")]

    assert stored(target) == stored(source) == sorted(people, key=lambda p: p[0].email)
    again = spreadsheet.import_csv(source, exported, "newsletter", secret=SECRET, by="t", now=NOW)
    assert (again.added, again.changed) == (0, [])


def test_cli_import_reports_changes_and_takes_them_with_update(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(csv_bytes(GERMAN, [["a@example.org", "Frau", "", "Anna", "Müller", "", ""]]))
    (tmp_path / "b.csv").write_bytes(csv_bytes(GERMAN, [["a@example.org", "Frau", "", "Anna", "Meier", "", ""]]))
    assert cli(tmp_path, "recipients", "import", "a.csv", "--list", "newsletter").returncode == 0
    kept = cli(tmp_path, "recipients", "import", "b.csv", "--list", "newsletter")
    assert kept.returncode == 0, kept.stderr
    assert "b.csv: row 2: a@example.org is stored otherwise: last name 'Müller' → 'Meier'" in kept.stderr
    assert "1 with other details kept as stored (--update takes the file's)" in kept.stdout
    assert "Müller" in cli(tmp_path, "recipients", "list").stdout
    taken = cli(tmp_path, "recipients", "import", "b.csv", "--list", "newsletter", "--update")
    assert "1 updated" in taken.stdout and "Meier" in cli(tmp_path, "recipients", "list").stdout
