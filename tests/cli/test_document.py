"""``reallabor-mail document``: the bound record of 2023/24, checked from outside with poppler and pypdf.

pdftotext finds every title in date order, pdfinfo gives A4 pages, and the PDF's bookmarks (read with
pypdf, a test extra) are the table of contents' entries, with the page numbers the contents print.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from reallabor_mail.content.loader import load_content
from reallabor_mail.db import connect

from ..conftest import SAMPLE_CONTENT
from .test_cli import run

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
pypdf = pytest.importorskip("pypdf")


def record(tmp_path: Path, *args: str, content: Path = SAMPLE_CONTENT) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "dokumentation.pdf"
    result = run("document", "--content", str(content), "--from", "2023-01-01", "--to", "2024-06-30",
                 "-o", str(out), *args, cwd=tmp_path)  # fmt: skip
    return result, out


def text_of(pdf: Path, *pages: str) -> str:
    out = subprocess.run(["pdftotext", *pages, str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(out.split())


def squashed(text: str) -> str:
    """Without spaces and hyphens: pdftotext drops the hyphen where a line breaks after one."""
    return re.sub(r"[\s-]", "", text)


def outline(pdf: Path) -> list[tuple[int, str, int]]:
    """(level, title, page) of every bookmark, in order."""
    reader = pypdf.PdfReader(pdf)
    found: list[tuple[int, str, int]] = []

    def walk(items: list[object], level: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, level + 1)
            else:
                found.append((level, str(item.title), reader.get_destination_page_number(item) + 1))  # type: ignore[attr-defined]

    walk(reader.outline, 1)
    return found


@pytest.fixture(scope="module")
def bound(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The German record of the sample content, made once (no state file next to the sample content)."""
    result, out = record(tmp_path_factory.mktemp("record"), "--state", str(tmp_path_factory.mktemp("none") / "x"))
    assert result.returncode == 1  # an explicit --state that does not exist is an error…
    result, out = record(tmp_path_factory.mktemp("record"))
    assert result.returncode == 0, result.stderr  # …none found next to the content: the counts are left out
    assert "no state file" in result.stdout
    return out


def test_the_record_is_a4_with_a_title_page(bound: Path) -> None:
    info = subprocess.run(["pdfinfo", str(bound)], capture_output=True, text=True, check=True).stdout
    assert "Page size:       595.276 x 841.89 pts (A4)" in info
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))  # type: ignore[union-attr]
    assert pages >= 20
    title = text_of(bound, "-f", "1", "-l", "1")
    for part in (
        "Auslandsgesellschaft.de e.V.", "Dokumentation", "Reallabor Kommunaler Aufbaupartnerschaften NRW – Ukraine",
        "1. Januar 2023 – 30. Juni 2024",
        "Gefördert von der Staatskanzlei des Landes Nordrhein-Westfalen", "in dieser Ausgabe nicht enthalten",
    ):  # fmt: skip
        assert part in title, part


def test_every_title_of_the_period_appears_in_date_order(bound: Path) -> None:
    content = load_content(SAMPLE_CONTENT)
    items = sorted(
        [(n.meta.date, n.meta.title) for n in content.newsletters]
        + [(e.meta.start.date(), e.meta.title) for e in content.events]
    )
    body = squashed(text_of(bound, "-f", "3"))  # after the title page and the contents
    position = 0
    for _day, title in items:
        found = body.find(squashed(title), position)
        assert found >= 0, title
        position = found
    reports = [r.meta.title for r in content.reports]
    assert len(reports) == 3 and all(squashed(title) in body for title in reports)


def test_the_bookmarks_are_the_contents_with_their_page_numbers(bound: Path) -> None:
    marks = outline(bound)
    assert marks[0] == (1, "Inhalt", 2)
    entries = marks[1:]
    content = load_content(SAMPLE_CONTENT)
    assert len([m for m in entries if m[0] == 1]) == len(content.newsletters) + len(content.events)
    assert [m[1] for m in entries if m[0] == 2] == [r.meta.title for r in content.reports]  # each under its event
    contents = squashed(text_of(bound, "-f", "2", "-l", "2")).replace(".", "")
    position = 0
    for _level, title, page in entries:
        entry = re.compile(re.escape(squashed(title).replace(".", "")) + str(page))  # the title, its leader, its page
        match = entry.search(contents, position)
        assert match, (title, page)
        position = match.end()
    # and each bookmark leads to the page where its heading is
    for _level, title, page in entries:
        assert squashed(title.split(" – ", 1)[-1])[:40] in squashed(text_of(bound, "-f", str(page), "-l", str(page)))


def test_the_counts_come_from_the_state_read_only(tmp_path: Path, content_copy: Path) -> None:
    state = tmp_path / "state.sqlite3"
    conn = connect(state)
    stamp = "2023-10-05T08:00:00Z"
    rows = [("newsletter:2023-3", "a@example.org"), ("newsletter:2023-3", "b@example.org"),
            ("event:2023-09-19-kollegialer-austausch:0", "a@example.org"),
            ("event:2023-09-19-kollegialer-austausch:0", "b@example.org"),
            ("event:2023-09-19-kollegialer-austausch:0#test", "c@example.org")]  # fmt: skip
    conn.executemany(
        "INSERT INTO send_ledger (campaign, email, list_name, state, updated) VALUES (?, ?, 'x', 'sent', ?)",
        [(campaign, email, stamp) for campaign, email in rows],
    )
    conn.execute(
        "INSERT INTO event_answers (event, email, answer, sequence, answered_at, message_key) "
        "VALUES ('2023-09-19-kollegialer-austausch', 'a@example.org', 'accepted', 0, ?, 'k')",
        (stamp,),
    )
    conn.close()
    before = state.read_bytes()
    result, out = record(tmp_path, "--state", str(state), content=content_copy)
    assert result.returncode == 0, result.stderr
    text = text_of(out)
    assert "Versendet an 2 Empfänger*innen" in text
    assert "2 Einladungen versendet · Kalenderantworten: 1 zugesagt, 0 vorläufig, 0 abgesagt" in text
    assert "in dieser Ausgabe nicht enthalten" not in text
    assert state.read_bytes() == before  # read only
    assert sqlite3.connect(state).execute("SELECT count(*) FROM send_ledger").fetchone()[0] == 5


def test_the_record_in_ukrainian(tmp_path: Path) -> None:
    result, out = record(tmp_path, "--lang", "uk")
    assert result.returncode == 0, result.stderr
    assert outline(out)[0][1] == "Зміст"
    assert "Документація" in text_of(out, "-f", "1", "-l", "1")
    assert "Реаллабор «Україна» – інформаційний бюлетень 3/2023" in text_of(out)  # the Ukrainian version of 2023-3


def test_a_period_backwards_or_empty_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "x.pdf"
    result = run("document", "--content", str(SAMPLE_CONTENT), "--from", "2024-06-30", "--to", "2023-01-01",
                 "-o", str(out), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1 and result.stderr.startswith("--from 2024-06-30 is after --to 2023-01-01")
    result = run("document", "--content", str(SAMPLE_CONTENT), "--from", "2030-01-01", "--to", "2030-12-31",
                 "-o", str(out), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1 and "no newsletter or event in this period" in result.stderr
    assert not out.exists()


def test_the_record_prints_where_its_links_lead(bound: Path) -> None:
    """On paper a link is only its words: the record prints the address after it, as the report pages do."""
    assert "(https://" in text_of(bound)
