"""The recipient store: CSV import as Excel writes it, consent records, erasure, suppression, purge."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reallabor_mail.db import Connection, StateLocation, connect
from reallabor_mail.errors import Code, ContentError
from reallabor_mail.recipients import spreadsheet
from reallabor_mail.recipients import store as rcp
from reallabor_mail.recipients.person import Recipient
from reallabor_mail.recipients.spreadsheet import ImportRefused
from reallabor_mail.recipients.store import RecipientError, Suppression
from reallabor_mail.recipients.tokens import InvalidToken, SecretMissing, load_secret, make_token, read_token
from reallabor_mail.settings import Settings

SECRET = b"test-secret-0123456789"
NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)

GERMAN = ["E-Mail", "Anrede", "Titel", "Vorname", "Nachname", "Organisation", "Sprache"]
ENGLISH = ["email", "salutation", "title", "first_name", "last_name", "organisation", "language"]
ROWS = [
    ["anna.mueller@dortmund.de", "Frau", "Dr.", "Anna", "Müller", "Stadt Köln", "de"],
    ["joerg.weiss@bücher.de", "Herr", "", "Jörg", "Weiß", "Gemeinde Möhnesee", ""],
    ["olena@hromada.example.org", "Frau", "", "Olena", "Kowalenko", "Громада Іванівка", "uk"],
]


def csv_bytes(header: list[str], rows: list[list[str]], delimiter: str = ";", encoding: str = "utf-8") -> bytes:
    """A CSV as Excel saves it: CRLF, values quoted when they contain the delimiter, quote or newline."""

    def cell(value: str) -> str:
        if any(ch in value for ch in (delimiter, '"', "\n", "\r")):
            return '"' + value.replace('"', '""') + '"'
        return value

    text = "".join(delimiter.join(cell(v) for v in row) + "\r\n" for row in [header, *rows])
    return text.encode(encoding)


@pytest.fixture
def conn(state: StateLocation) -> Iterator[Connection]:
    """The state on each back end (SQLite, PostgreSQL)."""
    connection = connect(state)
    yield connection
    connection.close()


def write(tmp_path: Path, data: bytes, name: str = "verteiler.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def do_import(conn: Connection, path: Path, **kwargs: object) -> spreadsheet.ImportReport:
    return spreadsheet.import_csv(conn, path, "newsletter", secret=SECRET, by="becker", now=NOW, **kwargs)  # type: ignore[arg-type]


def rcp_import(conn: Connection, path: Path, list_name: str) -> spreadsheet.ImportReport:
    return spreadsheet.import_csv(conn, path, list_name, secret=SECRET, by="becker", now=NOW)


def count(conn: Connection, table: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


# --- CSV import: encodings, delimiters, headers -------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
@pytest.mark.parametrize("delimiter", [";", ","])
@pytest.mark.parametrize("header", [GERMAN, ENGLISH], ids=["german", "english"])
def test_import_keeps_umlauts_in_every_excel_format(
    conn: Connection, tmp_path: Path, encoding: str, delimiter: str, header: list[str]
) -> None:
    rows = ROWS[:2] if encoding == "cp1252" else ROWS  # cp1252 has no Cyrillic
    report = do_import(conn, write(tmp_path, csv_bytes(header, rows, delimiter, encoding)))
    assert (report.added, report.invalid) == (len(rows), [])
    people = {p.email: p for p in rcp.subscribers(conn, "newsletter")}
    assert people["anna.mueller@dortmund.de"] == Recipient(
        "anna.mueller@dortmund.de", "Frau", "Dr.", "Anna", "Müller", "Stadt Köln", "de"
    )
    joerg = people["joerg.weiss@bücher.de"]  # internationalised domain accepted, stored in Unicode
    assert (joerg.first_name, joerg.last_name, joerg.organisation, joerg.language) == (
        "Jörg", "Weiß", "Gemeinde Möhnesee", "de",
    )  # fmt: skip
    if encoding != "cp1252":
        assert people["olena@hromada.example.org"].organisation == "Громада Іванівка"


def test_utf16_unicode_text_with_tabs(conn: Connection, tmp_path: Path) -> None:
    """Excel's "Unicode text" export: UTF-16 with BOM, tab-separated."""
    data = "\ufeff" + "\r\n".join("\t".join(r) for r in [GERMAN, ROWS[2]]) + "\r\n"
    do_import(conn, write(tmp_path, data.encode("utf-16-le")))
    assert [p.last_name for p in rcp.subscribers(conn, "newsletter")] == ["Kowalenko"]


def test_duplicates_are_merged_case_insensitively(conn: Connection, tmp_path: Path) -> None:
    rows = [
        ["Anna.Mueller@Dortmund.DE", "Frau", "", "Anna", "Müller", "", ""],
        ["anna.mueller@dortmund.de", "", "Dr.", "", "", "Stadt Dortmund", ""],
    ]
    report = do_import(conn, write(tmp_path, csv_bytes(GERMAN, rows)))
    assert report.added == 1
    assert [(n.row, n.message) for n in report.merged] == [
        (3, "anna.mueller@dortmund.de is also in row 2; merged")
    ]
    (anna,) = rcp.subscribers(conn, "newsletter")
    assert (anna.title, anna.last_name, anna.organisation) == ("Dr.", "Müller", "Stadt Dortmund")


def test_import_records_file_date_and_who_as_consent(conn: Connection, tmp_path: Path) -> None:
    do_import(conn, write(tmp_path, csv_bytes(GERMAN, ROWS[:1])))
    person = rcp.find(conn, "ANNA.MUELLER@dortmund.de")
    assert person is not None
    (event,) = person.events
    assert (event.action, event.source, event.actor, event.at, event.list_name) == (
        "import", "file verteiler.csv", "becker", "2026-03-02T09:30:00Z", "newsletter",
    )  # fmt: skip


def test_reimport_reports_changed_details_and_never_resubscribes(conn: Connection, tmp_path: Path) -> None:
    path = write(tmp_path, csv_bytes(GERMAN, ROWS[:2]))
    do_import(conn, path)
    rcp.unsubscribe(conn, "joerg.weiss@bücher.de", None, source="test", now=NOW)
    changed = write(tmp_path, csv_bytes(GERMAN, [[*ROWS[0][:5], "Stadt Dortmund", "de"], ROWS[1]]), "neu.csv")
    report = do_import(conn, changed)
    assert (report.added, report.known, report.updated) == (0, 2, 0)
    assert [(n.row, n.message) for n in report.changed] == [(2, (
        "anna.mueller@dortmund.de is stored otherwise: organisation 'Stadt Köln' → 'Stadt Dortmund'; "
        "kept the stored details (--update takes the file's)"
    ))]
    assert [n.message for n in report.kept_out] == [
        "joerg.weiss@bücher.de is with status unsubscribed on newsletter; left so"
    ]
    assert [p.organisation for p in rcp.subscribers(conn, "newsletter")] == ["Stadt Köln"]
    report = do_import(conn, changed, update=True)
    assert report.updated == 1 and report.changed[0].message.endswith("; updated")
    assert [p.organisation for p in rcp.subscribers(conn, "newsletter")] == ["Stadt Dortmund"]


def test_import_into_another_list_does_not_rewrite_a_person(conn: Connection, tmp_path: Path) -> None:
    do_import(conn, write(tmp_path, csv_bytes(GERMAN, ROWS[:1])))
    other = [["anna.mueller@dortmund.de", "", "", "Anne", "Mueller", "", "en"]]
    report = rcp_import(conn, write(tmp_path, csv_bytes(GERMAN, other), "b.csv"), "reallabor")
    assert (report.added, report.known) == (1, 0)  # new to this list, though stored for another
    assert len(report.changed) == 1 and "first name 'Anna' → 'Anne'" in report.changed[0].message
    person = rcp.find(conn, "anna.mueller@dortmund.de")
    assert person is not None
    assert person.recipient == Recipient(*ROWS[0])
    assert [(m.list_name, m.status) for m in person.memberships] == [("newsletter", "subscribed"),
                                                                     ("reallabor", "subscribed")]


# --- CSV import: bad input, all or nothing ------------------------------------------------------


def test_wrong_delimiter_says_which_columns_are_known(conn: Connection, tmp_path: Path) -> None:
    known = r"no email column.*separated by ';' or ','.*email/E-Mail, salutation/Anrede"
    with pytest.raises(ImportRefused, match=known):
        do_import(conn, write(tmp_path, csv_bytes(GERMAN, ROWS, delimiter="|")))
    assert count(conn, "recipients") == 0


def test_rows_with_another_delimiter_than_the_header(conn: Connection, tmp_path: Path) -> None:
    data = csv_bytes(GERMAN, []) + ",".join(ROWS[0]).encode() + b"\r\n"
    with pytest.raises(ImportRefused, match=r"row 2: 1 field, but the header has 7"):
        do_import(conn, write(tmp_path, data))


def test_unknown_columns_are_named_with_the_known_ones(conn: Connection, tmp_path: Path) -> None:
    with pytest.raises(ImportRefused, match=r"unknown columns 'Telefon', 'Ort'; known columns: email/E-Mail"):
        do_import(conn, write(tmp_path, csv_bytes([*GERMAN, "Telefon", "Ort"], [])))


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\r\n\r\n"], ids=["empty", "bom-only", "blank-lines"])
def test_empty_file(conn: Connection, tmp_path: Path, data: bytes) -> None:
    with pytest.raises(ImportRefused, match=r"verteiler\.csv: the file is empty"):
        do_import(conn, write(tmp_path, data))


def test_header_without_rows(conn: Connection, tmp_path: Path) -> None:
    with pytest.raises(ImportRefused, match="no rows below the header"):
        do_import(conn, write(tmp_path, csv_bytes(GERMAN, [])))


BAD_ROWS = [
    ROWS[0],
    ["kaputt@", "Frau", "", "Eva", "Bad", "", ""],  # row 3
    ["zeile@example.org", "Herr", "", "Hans\nPeter", "Umbruch", "", ""],  # row 4
    ["formel@example.org", "", "", "Max", '=HYPERLINK("http://evil.example","klick")', "", ""],  # row 5
    ["anrede@example.org", "Familie", "", "", "", "", "fr"],  # row 6: two problems
    ROWS[1],
]


def test_every_bad_row_is_listed_and_nothing_imported(conn: Connection, tmp_path: Path) -> None:
    with pytest.raises(ImportRefused) as caught:
        do_import(conn, write(tmp_path, csv_bytes(GERMAN, BAD_ROWS)))
    message = str(caught.value)
    assert "4 invalid rows; nothing was imported" in message
    assert "row 3: email: 'kaputt@' is not an address mail can be sent to" in message
    assert "row 4: first name contains a line break" in message
    assert "row 5: last name '=HYPERLINK(\"http://evil.exampl' starts with '=' like a spreadsheet formula" in message
    assert "row 6: salutation 'Familie' is not Frau, Herr" in message
    assert "row 6: language 'fr' is not de, uk or en" in message
    assert (count(conn, "recipients"), count(conn, "consent_events")) == (0, 0)


def test_skip_invalid_imports_the_good_rows(conn: Connection, tmp_path: Path) -> None:
    report = do_import(conn, write(tmp_path, csv_bytes(GERMAN, BAD_ROWS)), skip_invalid=True)
    assert report.added == 2
    assert sorted({p.row for p in report.invalid}) == [3, 4, 5, 6]
    assert len(list(rcp.subscribers(conn, "newsletter"))) == 2


def test_undecodable_bytes(conn: Connection, tmp_path: Path) -> None:
    data = csv_bytes(GERMAN, []) + b"a@b.de;\x81\x8d;;;;;\r\n"  # undefined in cp1252, invalid UTF-8
    with pytest.raises(ImportRefused, match=r"verteiler\.csv: row 2: byte 0x81 is not cp1252 text"):
        do_import(conn, write(tmp_path, data))


# --- export -------------------------------------------------------------------------------------


def test_export_never_writes_a_formula(conn: Connection) -> None:
    evil = Recipient("evil@example.org", None, None, "=1+1", "@SUM(A1)", "-2+3", "de")
    rcp.add_recipient(conn, evil, "newsletter", status="subscribed", source="test", now=NOW)
    for text in (spreadsheet.export_list(conn, "newsletter"), spreadsheet.export_person(conn, "evil@example.org")):
        assert "evil@example.org;;;'=1+1;'@SUM(A1);'-2+3;de" in text
        cells = [c for line in text.splitlines() for c in line.split(";")]
        assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)


def test_export_person_has_everything_and_round_trips_as_import(conn: Connection, tmp_path: Path) -> None:
    do_import(conn, write(tmp_path, csv_bytes(GERMAN, ROWS)))
    text = spreadsheet.export_person(conn, "anna.mueller@dortmund.de")
    assert text.splitlines() == [  # times in the office's time (09:30 UTC is 10:30 in Dortmund in March)
        "Email;Salutation;Title;First name;Last name;Organisation;Language;Created;Updated",
        "anna.mueller@dortmund.de;Frau;Dr.;Anna;Müller;Stadt Köln;de;02.03.2026 10:30;02.03.2026 10:30",
        "",
        "List;Status;Since",
        "newsletter;subscribed;02.03.2026 10:30",
        "",
        "Time;List;Action;Source;By;IP address;Consent version;Consent text",
        "02.03.2026 10:30;newsletter;import;file verteiler.csv;becker;;;",
    ]
    again = write(tmp_path, text.split("\r\n\r\n")[0].encode("utf-8"), "wieder.csv")
    assert spreadsheet.import_csv(connect(tmp_path / "b.sqlite3"), again, "newsletter", secret=SECRET, by="t",
                                  now=NOW).added == 1  # fmt: skip


def test_an_export_speaks_the_staff_language_and_imports_in_another(tmp_path: Path) -> None:
    from reallabor_mail.i18n.messages import activate_staff_language

    source = connect(tmp_path / "a.sqlite3")
    for email, status in (("anna@dortmund.de", "subscribed"), ("olena@lviv.example", "unsubscribed"),
                          ("neu@herne.example", "pending")):  # fmt: skip
        rcp.add_recipient(source, Recipient(email, first_name="Anna"), "newsletter", status=status, source="t",
                          now=dt.datetime(2026, 7, 1, 8, 0, tzinfo=dt.UTC))  # fmt: skip
    activate_staff_language("de")
    try:
        german = spreadsheet.export_list(source, "newsletter")
        activate_staff_language("uk")
        ukrainian = spreadsheet.export_list(source, "newsletter")
    finally:
        activate_staff_language("en")  # what tests/conftest.py sets for every other test
    assert german.splitlines()[:2] == [
        "E-Mail;Anrede;Titel;Vorname;Nachname;Organisation;Sprache;Status;Seit",
        "anna@dortmund.de;;;Anna;;;de;angemeldet;01.07.2026 10:00",
    ]
    assert "noch nicht bestätigt" in german and "abgemeldet" in german
    assert ukrainian.splitlines()[0].startswith("Ел. пошта;Звертання;")
    for number, text in enumerate((german, ukrainian)):  # read back while the staff language is English
        target = connect(tmp_path / f"{number}.sqlite3")
        path = write(tmp_path, text.encode("utf-8"), f"export{number}.csv")
        report = spreadsheet.import_csv(target, path, "newsletter", secret=SECRET, by="t", now=NOW)
        assert report.added == 3 and report.invalid == []
        assert {p.recipient.email: p.memberships[0].status for p in rcp.people(target, "newsletter")} == {
            "anna@dortmund.de": "subscribed", "olena@lviv.example": "unsubscribed", "neu@herne.example": "pending",
        }


# --- unsubscribe, suppression, erasure, purge ---------------------------------------------------


def test_suppressed_addresses_leave_every_list(conn: Connection) -> None:
    person = Recipient("hard@bounce.example.org")
    rcp.add_recipient(conn, person, "newsletter", status="subscribed", source="test", now=NOW)
    rcp.add_recipient(conn, person, "reallabor", status="subscribed", source="test", now=NOW)
    assert not rcp.is_suppressed(conn, "Hard@Bounce.example.org", SECRET)
    rcp.suppress(conn, "HARD@bounce.example.org", Suppression.BOUNCED, SECRET, detail="550 5.1.1 user unknown",
                 now=NOW)  # fmt: skip
    assert rcp.is_suppressed(conn, "hard@bounce.example.org", SECRET)
    assert list(rcp.subscribers(conn, "newsletter")) == list(rcp.subscribers(conn, "reallabor")) == []
    stored = rcp.find(conn, "hard@bounce.example.org")
    assert stored is not None and {m.status for m in stored.memberships} == {"bounced"}
    assert {(e.action, e.source) for e in stored.events if e.action == "bounced"} == {
        ("bounced", "suppressed: 550 5.1.1 user unknown")
    }


def test_the_caller_says_why_an_address_is_suppressed_not_the_wording(conn: Connection) -> None:
    """A bounce whose server reply does not say "bounce" is still a bounce."""
    rcp.add_recipient(conn, Recipient("a@example.org"), "newsletter", status="subscribed", source="test", now=NOW)
    rcp.suppress(conn, "a@example.org", Suppression.BOUNCED, SECRET, detail="550 5.1.1 mailbox unknown", now=NOW)
    stored = rcp.find(conn, "a@example.org")
    assert stored is not None and [m.status for m in stored.memberships] == ["bounced"]
    reasons = conn.execute("SELECT reason FROM suppressions").fetchall()
    assert [r["reason"] for r in reasons] == ["550 5.1.1 mailbox unknown"]
    rcp.erase(conn, "a@example.org", SECRET, now=NOW)
    assert [r["reason"] for r in conn.execute("SELECT reason FROM suppressions").fetchall()] == ["erased"]


def test_another_secret_is_refused_for_the_suppression_list(conn: Connection) -> None:
    rcp.suppress(conn, "x@example.org", Suppression.ERASED, SECRET, now=NOW)
    with pytest.raises(RecipientError, match="not the secret this state file's suppression list was made with"):
        rcp.is_suppressed(conn, "x@example.org", b"another-secret-0123456789")


def test_erase_keeps_only_a_keyed_hash(conn: Connection, tmp_path: Path) -> None:
    do_import(conn, write(tmp_path, csv_bytes(GERMAN, ROWS[:2])))
    assert rcp.erase(conn, "Anna.Mueller@dortmund.de", SECRET, now=NOW)
    assert rcp.find(conn, "anna.mueller@dortmund.de") is None
    assert rcp.is_suppressed(conn, "anna.mueller@dortmund.de", SECRET)
    assert [p.email for p in rcp.subscribers(conn, "newsletter")] == ["joerg.weiss@bücher.de"]
    # nothing of her is left in the database file, not even in freed pages or the journal
    if not conn.is_postgres:  # (PostgreSQL's files are the server's: contract §3)
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("state.sqlite3*"))
        assert raw and b"anna.mueller" not in raw and "Müller".encode() not in raw
    # a later import keeps her out and says why
    report = do_import(conn, write(tmp_path, csv_bytes(GERMAN, ROWS[:1])))
    assert report.added == 0
    assert "anna.mueller@dortmund.de was erased or bounced" in report.kept_out[0].message
    assert rcp.find(conn, "anna.mueller@dortmund.de") is None


def test_unsubscribe_one_list_or_all(conn: Connection) -> None:
    person = Recipient("two@lists.example.org")
    for name in ("newsletter", "reallabor"):
        rcp.add_recipient(conn, person, name, status="subscribed", source="test", now=NOW)
    assert rcp.unsubscribe(conn, person.email, "reallabor", source="test", now=NOW) == ["reallabor"]
    assert [p.email for p in rcp.subscribers(conn, "newsletter")] == [person.email]
    assert rcp.unsubscribe(conn, person.email, None, source="cli", actor="becker", now=NOW) == ["newsletter"]
    assert rcp.unsubscribe(conn, person.email, None, source="cli", now=NOW) == []


def test_purge_deletes_only_old_unconfirmed_sign_ups(conn: Connection) -> None:
    def sign_up(name: str, list_name: str, days_ago: int) -> None:
        then = NOW - dt.timedelta(days=days_ago)
        person = Recipient(f"{name}@example.org")
        rcp.sign_up(conn, person, [list_name], consent_text="Ja.", consent_language="de", ip="192.0.2.1", now=then)

    sign_up("old", "newsletter", 31)
    sign_up("fresh", "newsletter", 29)
    rcp.add_recipient(conn, Recipient("member@example.org"), "newsletter", status="subscribed", source="t", now=NOW)
    sign_up("member", "reallabor", 40)
    assert rcp.purge_unconfirmed(conn, NOW) == 2
    assert rcp.find(conn, "old@example.org") is None
    assert rcp.find(conn, "fresh@example.org") is not None
    member_now = rcp.find(conn, "member@example.org")
    assert member_now is not None and [m.list_name for m in member_now.memberships] == ["newsletter"]


def test_subscribers_yield_only_subscribed(conn: Connection) -> None:
    for name, status in [("a", "subscribed"), ("b", "pending"), ("c", "unsubscribed"), ("d", "bounced")]:
        rcp.add_recipient(conn, Recipient(f"{name}@example.org"), "newsletter", status=status, source="t", now=NOW)
    assert [p.email for p in rcp.subscribers(conn, "newsletter")] == ["a@example.org"]
    with pytest.raises(RecipientError, match="'gone': not a status"):
        rcp.add_recipient(conn, Recipient("e@example.org"), "newsletter", status="gone", source="t", now=NOW)


# --- tokens -------------------------------------------------------------------------------------


def test_tokens_reject_tampering_other_purposes_and_expiry() -> None:
    token = make_token(SECRET, "confirm", {"e": "a@example.org"}, expires=NOW + dt.timedelta(days=7))
    assert read_token(SECRET, "confirm", token, now=NOW) == {"e": "a@example.org"}
    payload, signature = token.split(".")
    forged = make_token(b"guessed-secret-123456", "confirm", {"e": "b@example.org"}).split(".")[0]
    for bad in (f"{forged}.{signature}", token[:-2], "nonsense", f"{payload}.", "ü.ö"):
        with pytest.raises(InvalidToken):
            read_token(SECRET, "confirm", bad, now=NOW)
    with pytest.raises(InvalidToken, match="signature"):
        read_token(SECRET, "unsubscribe", token, now=NOW)
    with pytest.raises(InvalidToken, match="expired"):
        read_token(SECRET, "confirm", token, now=NOW + dt.timedelta(days=7))


def test_secret_missing_says_how_to_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SecretMissing, match=r"REALLABOR_SECRET is not set.*export REALLABOR_SECRET="):
        load_secret(Settings.from_environ({}))
    with pytest.raises(SecretMissing, match="shorter than 16"):
        load_secret(Settings.from_environ({"REALLABOR_SECRET": "short"}))


# --- the command line ---------------------------------------------------------------------------


def cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "REALLABOR_SECRET": SECRET.decode(), "REALLABOR_STATE": str(tmp_path / "s.db"),
                   "USER": "becker", **(env or {})}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-c", "from reallabor_mail.cli.main import run; run()", *args],
        capture_output=True, text=True, env=environment, cwd=tmp_path, input=stdin, check=False,
    )  # fmt: skip


def test_cli_round_trip(tmp_path: Path) -> None:
    """Import a cp1252 Excel file, list, export for Excel, unsubscribe, erase — as staff type it."""
    write(tmp_path, csv_bytes(GERMAN, ROWS[:2], ";", "cp1252"))
    done = cli(tmp_path, "recipients", "import", "verteiler.csv", "--list", "newsletter")
    assert done.returncode == 0, done.stderr
    assert "verteiler.csv: 2 added, 0 already known on 'newsletter'" in done.stdout

    listed = cli(tmp_path, "recipients", "list", "--list", "newsletter")
    assert "anna.mueller@dortmund.de\tFrau Dr. Anna Müller\tStadt Köln\tde\tnewsletter:subscribed" in listed.stdout

    assert cli(tmp_path, "recipients", "export", "--list", "newsletter", "-o", "out.csv").returncode == 0
    assert (tmp_path / "out.csv").read_bytes().startswith(b"\xef\xbb\xbfEmail;Salutation;")
    person = cli(tmp_path, "recipients", "export", "joerg.weiss@xn--bcher-kva.de")
    assert "import;file verteiler.csv;becker" in person.stdout

    left = cli(tmp_path, "recipients", "unsubscribe", "Joerg.Weiss@bücher.de")
    assert left.stdout.strip() == "Joerg.Weiss@bücher.de: unsubscribed from newsletter"

    refused = cli(tmp_path, "recipients", "delete", "anna.mueller@dortmund.de", stdin="n\n")
    assert refused.returncode == 1 and "Aborted" in refused.stderr
    erased = cli(tmp_path, "recipients", "delete", "anna.mueller@dortmund.de", "--yes")
    assert "erased; the address is suppressed" in erased.stdout
    gone = cli(tmp_path, "recipients", "export", "anna.mueller@dortmund.de")
    assert (gone.returncode, gone.stderr) == (
        1, "anna.mueller@dortmund.de: not in the recipient list and not registered for an event\n"
    )
    assert cli(tmp_path, "recipients", "purge").stdout == "0 unconfirmed sign-ups deleted\n"


def test_cli_errors_are_one_clear_message(tmp_path: Path) -> None:
    write(tmp_path, csv_bytes(GERMAN, BAD_ROWS))
    bad = cli(tmp_path, "recipients", "import", "verteiler.csv", "--list", "newsletter")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("verteiler.csv: 4 invalid rows; nothing was imported")
    no_secret = cli(tmp_path, "recipients", "import", "verteiler.csv", "--list", "newsletter",
                    env={"REALLABOR_SECRET": ""})  # fmt: skip
    assert no_secret.stderr.startswith("REALLABOR_SECRET is not set.")
    bad_list = cli(tmp_path, "recipients", "import", "verteiler.csv", "--list", "News Letter")
    assert "'News Letter': not a list name" in bad_list.stderr


def test_the_public_server_reads_site_yaml_by_the_loaders_rule(tmp_path: Path) -> None:
    """A site.yaml saved as Windows-1252 is the loader's problem RLM109, whoever reads it."""
    from reallabor_mail.content.loader import load_site

    (tmp_path / "site.yaml").write_bytes("title: Städtepartnerschaften\n".encode("cp1252"))
    with pytest.raises(ContentError) as refused:
        load_site(tmp_path)
    assert [p.code for p in refused.value.problems] == [Code.NOT_UTF8]


def test_exporting_a_list_nobody_is_on_names_the_lists_there_are(conn: Connection) -> None:
    rcp.add_recipient(conn, Recipient("a@example.org"), "newsletter", status="subscribed", source="t", now=NOW)
    with pytest.raises(RecipientError, match=r"no list 'newsleter' in this state .*lists here: newsletter"):
        spreadsheet.export_list(conn, "newsleter")
