"""Fuzzing of CSV rows: hypothesis writes recipient files the way people and Excel do (any header
spelling, ; , or tab, quotes, line breaks in cells, formulas, NUL, control characters, any script, four
encodings) and imports each one, all-or-nothing and with ``--skip-invalid``.

Every file must end imported (the people are then in the store) or as a :class:`ReallaborError` whose
message starts with the file's path, and every bad row is named by its row number. Never a traceback.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reallabor_mail.db import connect
from reallabor_mail.errors import ReallaborError
from reallabor_mail.recipients import spreadsheet
from tests.reliability.conftest import Row

SECRET = b"fuzz-csv-secret-0123456789"
NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
EXAMPLES = 3000
HEADERS = ["E-Mail", "email", "Mail", "Anrede", "Titel", "Vorname", "Nachname", "Organisation", "Sprache",
           "Language", "first_name", "Surname", "Unbekannt", "", " E-Mail ", "\ufeffE-Mail"]  # fmt: skip
KNOWN = ["Anrede", "Titel", "Vorname", "Nachname", "Organisation", "Sprache", "Surname", "Language"]
TRICKY = ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "a;b", "a,b", 'say "hi"', "line\nbreak", "cr\rhere",
          "nul\x00", "\t", "Frau", "Herr", "Dr.", "de", "uk", "en", "xx", "Müller", "Олена", "أحمد", "😀",
          "a@b", "anna@example.org", "ANNA@Example.org", " bob@example.org ", "x@y..z", "@", "\u200b", ""]  # fmt: skip
EMAILS = st.one_of(
    st.emails().map(str),
    st.sampled_from(["anna@example.org", "Anna@Example.org", "olena@приклад.укр", "bad", "a@b", "", "x@-y.org"]),
)
CELLS = st.one_of(st.sampled_from(TRICKY), st.text(max_size=30), EMAILS)
ENCODINGS = ["utf-8", "utf-8-sig", "cp1252", "utf-16"]


def recipients_column(header: str) -> str:
    """The field a header names (``Nachname`` and ``Surname`` are the same)."""
    return {"Surname": "Nachname", "Language": "Sprache"}.get(header, header)


ROW_LINE = re.compile(r": row (\d+): ")

outcomes: Counter[str] = Counter()
problems: list[str] = []


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, int]:
    """Bytes of a CSV file and how many lines of rows it has."""
    known = st.lists(st.sampled_from(KNOWN), min_size=0, max_size=5, unique_by=recipients_column)
    odd = st.lists(st.sampled_from(HEADERS), min_size=1, max_size=6)
    header: list[str] = ["E-Mail", *draw(known)] if draw(st.integers(0, 3)) else draw(odd)
    delimiter = draw(st.sampled_from([";", ",", "\t"]))
    rows: list[list[str]] = draw(st.lists(st.lists(CELLS, min_size=0, max_size=len(header) + 1), max_size=8))
    for r in rows:
        address_first: bool = draw(st.booleans())
        if r and address_first:
            r[0] = draw(EMAILS)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=draw(st.sampled_from(["\r\n", "\n"])))
    writer.writerow(header)
    writer.writerows(rows)
    text = out.getvalue()
    if draw(st.integers(0, 9)) == 0:  # a broken file: cut anywhere, or a stray quote
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(['"', "", "\n", '"\n;'])) + text[cut:]
    encoding = draw(st.sampled_from(ENCODINGS))
    data = text.encode(encoding, errors="replace") if encoding == "cp1252" else text.encode(encoding)
    if draw(st.integers(0, 19)) == 0:
        data += draw(st.binary(max_size=8))
    return data, len(rows)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    conn = connect(tmp_path_factory.mktemp("fuzz") / "state.sqlite3")
    return conn


def import_one(conn: sqlite3.Connection, path: Path, data: bytes, skip_invalid: bool) -> str:
    """Import ``data`` from ``path``; returns the outcome or records a problem."""
    path.write_bytes(data)
    try:
        report = spreadsheet.import_csv(conn, path, "newsletter", secret=SECRET, by="fuzz", now=NOW,
                                       skip_invalid=skip_invalid)  # fmt: skip
    except ReallaborError as exc:
        message = str(exc)
        if not message.startswith(str(path)):
            problems.append(f"error without the file's path: {message[:200]!r}")
        if "invalid row" in message:
            listed = message.splitlines()[1:]
            if not listed or not all(ROW_LINE.search(line) for line in listed):
                problems.append(f"invalid rows without a row number: {message[:300]!r}")
            return "refused, rows named"
        return "refused, whole file"
    except Exception as exc:
        problems.append(f"{type(exc).__name__}: {exc} for {data[:120]!r}")
        return "traceback"
    for note in (*report.invalid, *report.merged, *report.kept_out):
        if note.row < 1:  # row 1 is the header line (a broken header is named so)
            problems.append(f"row number {note.row} for {data[:120]!r}")
    return "imported" + (" (bad rows skipped)" if report.invalid else "")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(file=csv_files(), skip_invalid=st.booleans())
def test_fuzzed_files(store: sqlite3.Connection, tmp_path_factory: pytest.TempPathFactory, file: tuple[bytes, int],
                      skip_invalid: bool) -> None:  # fmt: skip
    data, _ = file
    outcomes[import_one(store, tmp_path_factory.getbasetemp() / "people.csv", data, skip_invalid)] += 1


def test_fuzz_csv_row(row: Row) -> None:
    """The figures of the fuzzing above (it runs first: pytest keeps file order)."""
    tried = sum(outcomes.values())
    row("Fuzzing", "hypothesis: recipient CSV files (headers, ; , tab, quotes, line breaks, formulas, NUL, any "
        "script; UTF-8, UTF-8 BOM, cp1252, UTF-16; cut or trailing bytes) imported all-or-nothing and with "
        "--skip-invalid", tried, len(problems),
        ", ".join(f"{k} {v:,}" for k, v in sorted(outcomes.items())) + (f"; first problem: {problems[0]}" if problems
                                                                        else "; never a traceback"))  # fmt: skip
    assert tried >= EXAMPLES
    assert problems == []
