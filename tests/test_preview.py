"""The staff preview (``reallabor-mail serve``) on a real uvicorn server, in headless Chromium where it matters.

What a staff member relies on: the start page lists everything with its warnings and last send; an
item page shows the email at 600 and 375 px, the text part, the headers, the calendar entry and a
checks panel that finds planted problems; saving a file refreshes the open page; a content error
shows as ``path:line: message``; a test send goes through the sending path to a real SMTP server.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from reallabor_mail.content.loader import load_content
from reallabor_mail.db import connect
from reallabor_mail.delivery import ledger
from reallabor_mail.delivery.transport import MaildirTransport
from reallabor_mail.recipients.person import Recipient
from reallabor_mail.settings import Settings
from reallabor_mail.web.preview import Preview, sending_path, staff_routes
from reallabor_mail.web.public import PublicConfig, create_app, public_app

from .conftest import ROOT, SAMPLE_CONTENT, TEMPLATES, TODAY, SmtpServer, free_port, serving

ARTIFACTS = ROOT / "test-artifacts"
NEWSLETTER = "newsletters/2024-1/"  # has a table, an image and upcoming events
EVENT = "events/2023-09-19-kollegialer-austausch/"


@dataclass
class Live:
    content: Path
    state: Path
    url: str  # …/preview/

    def get(self, path: str = "", **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kwargs)


@contextmanager
def running_preview(content: Path, state: Path, settings: Settings) -> Iterator[Live]:
    """The staff app on 127.0.0.1 over ``content``, with the settings ``serve`` would pass it."""
    send_test = sending_path(TEMPLATES, state, settings)
    preview = Preview(content, TEMPLATES, state=state, today=lambda: TODAY, send_test=send_test, settings=settings)
    try:
        with serving(create_app(staff_routes(preview))) as base:
            yield Live(content, state, f"{base}/preview/")
    finally:
        preview.close()


@pytest.fixture
def live(content_copy: Path, tmp_path: Path) -> Iterator[Live]:
    """The staff app over a scratch copy of the sample content, no mail server configured."""
    with running_preview(content_copy, tmp_path / "state.sqlite3", Settings()) as running:
        yield running


# --- pages over HTTP ----------------------------------------------------------------------------


def test_start_page_lists_every_item_with_date_status_warnings_and_last_send(live: Live) -> None:
    conn = connect(live.state)
    book = ledger.Ledger(conn, lambda: dt.datetime(2024, 2, 15, 9, 30, tzinfo=dt.UTC))
    people = [(Recipient("a@example.org"), "newsletter"), (Recipient("b@example.org"), "newsletter")]
    book.add("newsletter:2024-1", people)
    book.apply([book.finish_op(entry, "sent", "250 OK") for entry in book.due("newsletter:2024-1")])
    book.add("newsletter:2023-3#test", [(Recipient("me@example.org"), "newsletter")])  # a test send is no send
    page = live.get().text
    content = load_content(SAMPLE_CONTENT)
    for item in (*content.newsletters, *content.events):
        assert f'data-stem="{item.stem}"' in page
    row = page[page.index('data-stem="2024-1"') :].split("</tr>")[0]
    assert "15. Februar 2024" in row and ">sent<" in row
    assert "2024-02-15 09:30 UTC · 2 sent" in row
    row = page[page.index('data-stem="2023-3"') :].split("</tr>")[0]
    assert "not sent yet" in row and "de, uk" in row and "–" in row
    assert "past" in page[page.index('data-stem="2023-03-29-auftaktveranstaltung"') :].split("</tr>")[0]


def test_start_page_lists_upcoming_first_soonest_first_then_past_newest_first(live: Live) -> None:
    page = live.get().text
    order = re.findall(r'<tr data-stem="([^"]+)" data-timing="(upcoming|past)"', page)
    content = load_content(SAMPLE_CONTENT)
    when = {n.stem: dt.datetime.combine(n.meta.date, dt.time()) for n in content.newsletters}
    when |= {e.stem: e.meta.start.replace(tzinfo=None) for e in content.events}
    assert len(order) == len(when)
    timings = [timing for _stem, timing in order]
    assert timings == sorted(timings, key=lambda t: t != "upcoming"), "every upcoming item before every past one"
    upcoming = [when[stem] for stem, timing in order if timing == "upcoming"]
    past = [when[stem] for stem, timing in order if timing == "past"]
    assert upcoming == sorted(upcoming) and upcoming[0].date() >= TODAY
    assert past == sorted(past, reverse=True) and past[0].date() < TODAY
    assert order[0] == ("2023-3", "upcoming")  # 5 October, the soonest after TODAY (1 October 2023)


def test_a_broken_file_leaves_the_other_items_listed_and_shows_its_errors(live: Live) -> None:
    broken = live.content / "events" / "2023-10-26-kommunale-unternehmen.md"
    text = broken.read_text(encoding="utf-8")
    broken.write_text(re.sub(r"(?m)^format: .*$", "format: webinar", text, count=1), encoding="utf-8")
    line = broken.read_text(encoding="utf-8").splitlines().index("format: webinar") + 1
    page = html.unescape(wait_for(lambda: live.get().text, lambda text: "data-timing=\"broken\"" in text))
    row = page[page.index('data-timing="broken"') :].split("</tr>")[0]
    assert re.search(rf"events/2023-10-26-kommunale-unternehmen\.md:{line}: 'format': 'webinar' is not allowed", row)
    assert page.index('data-timing="broken"') < page.index('data-stem="2023-3"')  # what needs fixing comes first
    content = load_content(SAMPLE_CONTENT)
    for item in (*content.newsletters, *content.events):
        if item.stem != "2023-10-26-kommunale-unternehmen":
            assert f'data-stem="{item.stem}" data-timing=' in page, item.stem
    assert "Traceback" not in page


@pytest.fixture
def german(request: pytest.FixtureRequest) -> Iterator[None]:
    """The staff language German, as `serve` sets it in an office without REALLABOR_LANG."""
    from reallabor_mail.i18n.messages import activate_staff_language

    activate_staff_language("de")
    yield
    activate_staff_language("en")  # what tests/conftest.py sets for every other test


def test_the_preview_speaks_the_staff_language(german: None, live: Live) -> None:
    home = live.get().text
    assert '<html lang="de">' in home
    for words in ("Newsletter und Veranstaltungen", ">Letzter Versand<", ">Sprachen<", "folgt Ihren Dateien",
                  ">bevorstehend<", ">vergangen<", "noch nicht versendet"):  # fmt: skip
        assert words in home, words
    item = live.get(NEWSLETTER).text
    for words in ("Prüfungen", "Im Posteingang", "Textteil", "Kopfzeilen", "Test senden", "SMTP ist nicht eingerichtet",
                  'data-check="alt-texts"', "Alt-Texte", "Smartphone · 375 px"):  # fmt: skip
        assert words in item, words
    for english in ("follows your files", ">Checks<", "In the inbox", "Send a test", "Last send", "every image"):
        assert english not in home + item, english


def test_item_page_shows_inbox_line_text_part_headers_and_calendar(live: Live) -> None:
    page = live.get(EVENT).text
    assert "Netzwerkstelle Städtepartnerschaften" in page
    assert 'id="subject">Einladung: Kollegialer Austausch zu NRW-ukrainischen Partnerschaften<' in page
    line = re.search(r'id="preview-line">([^<]*)<', page)
    assert line and 0 < len(line[1]) <= 100
    assert "Dienstag, 19. September 2023, 14:00–15:30 Uhr (Berlin) · 15:00–16:30 (Київ)" in page
    assert "https://us02web.zoom.us/j/86240913785" in page
    assert "Sehr geehrte Frau Dr. Beispiel," in page  # the text part, for the sample recipient
    for header in ("From", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post", "Content-Language"):
        assert f'<th scope="row">{header}</th>' in page
    assert "text/calendar" in page  # the MIME structure of the invitation
    ics = live.get(EVENT + "event.ics")
    assert ics.headers["content-type"].startswith("text/calendar")
    assert "attachment" in ics.headers["content-disposition"]
    assert ics.text.startswith("BEGIN:VCALENDAR") and "METHOD:PUBLISH" in ics.text


def test_translation_has_its_own_tab(live: Live) -> None:
    page = live.get("newsletters/2023-3/?lang=uk").text
    assert '<strong aria-current="page">Українська</strong>' in page
    assert 'href="?lang=de"' in page
    assert "email.html?lang=uk" in page


def test_content_error_shows_path_line_message_not_a_traceback(live: Live) -> None:
    file = live.content / "newsletters" / "2023-3.md"
    file.write_text(file.read_text(encoding="utf-8").replace("date: 2023-10-05", "date: 2023-13-45"), "utf-8")
    for path in ("", "newsletters/2023-3/"):
        page = html.unescape(wait_for(lambda p=path: live.get(p).text, lambda text: "content has errors" in text))  # type: ignore[misc]
        assert re.search(r"newsletters/2023-3\.md:3: 'date': ", page), page
        assert "Traceback" not in page


def test_only_this_machine_and_only_same_origin_posts(live: Live) -> None:
    assert live.get(headers={"Host": "attacker.example"}).status_code == 400
    refused = httpx.post(
        live.url + NEWSLETTER + "send-test", data={"to": "x@example.org"}, headers={"Origin": "http://attacker.example"}
    )
    assert refused.status_code == 403


def test_public_app_never_serves_the_preview(tmp_path: Path) -> None:
    port = free_port()
    site = load_content(SAMPLE_CONTENT).site.model_copy(update={"base_url": f"http://127.0.0.1:{port}"})
    config = PublicConfig(
        site=site, templates=TEMPLATES, state=tmp_path / "s.sqlite3", secret=b"x" * 32, lists=("newsletter",),
        transport=MaildirTransport(tmp_path / "outbox"),
    )  # fmt: skip
    with serving(public_app(config), port) as base:
        assert httpx.get(f"{base}/preview/").status_code == 404
        assert httpx.get(f"{base}/preview/{NEWSLETTER}").status_code == 404


def test_send_test_without_smtp_explains(live: Live) -> None:
    assert "SMTP is not configured: set REALLABOR_SMTP_HOST" in live.get(NEWSLETTER).text
    answer = httpx.post(live.url + NEWSLETTER + "send-test", data={"to": "me@example.org", "lang": "de"})
    assert "Not sent: SMTP is not configured" in answer.text


def test_send_test_goes_through_the_sending_path(
    content_copy: Path, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    settings = Settings.from_environ({
        "REALLABOR_SMTP_HOST": smtp_server.host, "REALLABOR_SMTP_PORT": str(smtp_server.port),
        "REALLABOR_SMTP_SECURITY": "none", "REALLABOR_SECRET": "preview-test-secret-0123456789abcdef",
    })  # fmt: skip
    with running_preview(content_copy, tmp_path / "state.sqlite3", settings) as live:
        send_and_check(live, smtp_server)


def send_and_check(live: Live, smtp_server: SmtpServer) -> None:
    answer = httpx.post(
        live.url + NEWSLETTER + "send-test", data={"to": "Me@Example.org", "lang": "de"},
        headers={"Origin": live.url.split("/preview/")[0]}, timeout=60,
    )  # fmt: skip
    assert "Sent a test to Me@example.org" in answer.text
    [received] = smtp_server.messages
    assert received.rcpt_tos == ["me@example.org"]
    assert received.message["Subject"] == "[TEST] Reallabor Ukraine – Newsletter 1/2024"  # marked as a test
    assert "2 sent" not in live.get().text  # the test is recorded apart from the real sends


def test_serve_command_picks_a_free_port_and_prints_the_url(content_copy: Path) -> None:
    command = [sys.executable, "-c", "from reallabor_mail.cli.main import run; run()",
               "serve", "--content", str(content_copy), "--templates", str(TEMPLATES)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/preview/", line)
        assert url, line
        page = wait_for(lambda: _get_or_none(url[0]), lambda r: r is not None)
        assert page is not None and page.status_code == 200 and 'data-stem="2023-3"' in page.text
    finally:
        process.terminate()
        process.wait(10)


def _get_or_none(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=30)
    except httpx.TransportError:
        return None


def wait_for(fetch: Any, done: Any, attempts: int = 100) -> Any:
    """Poll until ``done(fetch())`` (the watcher and the server run in other threads); no timing asserted."""
    import time

    for _ in range(attempts):
        value = fetch()
        if done(value):
            return value
        time.sleep(0.1)
    raise AssertionError(f"condition not reached; last value: {value!r}"[:2000])


# --- in Chromium --------------------------------------------------------------------------------


@pytest.mark.browser
def test_email_at_600_and_375_px_with_local_images(live: Live, chromium: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (600, 375):
        page = chromium.new_page(viewport={"width": width, "height": 900})
        page.goto(live.url + NEWSLETTER + "email.html?lang=de")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        images = page.evaluate("Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])")
        assert images and all(src.startswith("/preview/files/images/") and w > 0 for src, w in images)
        page.screenshot(path=str(ARTIFACTS / f"newsletter-2024-1-{width}.png"), full_page=True)
        page.close()
    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    page.goto(live.url + NEWSLETTER)
    widths = page.evaluate("Array.from(document.querySelectorAll('.frames iframe')).map(f => f.clientWidth)")
    assert widths == [600, 375]
    page.close()


@pytest.mark.browser
def test_column_headers_never_break_inside_a_word(german: None, live: Live, chromium: Any) -> None:
    split_words = """() => {
        const split = [];
        for (const th of document.querySelectorAll("table.list th")) {
            const text = th.firstChild;
            for (const match of text.textContent.matchAll(/\\S+/g)) {
                const range = document.createRange();
                range.setStart(text, match.index);
                range.setEnd(text, match.index + match[0].length);
                const lines = new Set(Array.from(range.getClientRects()).map(r => Math.round(r.top)));
                if (lines.size > 1) split.push(match[0]);
            }
        }
        return split;
    }"""
    for width in (720, 900, 1280):
        page = chromium.new_page(viewport={"width": width, "height": 900})
        page.goto(live.url)
        assert page.locator("table.list th").count() == 6
        assert page.evaluate(split_words) == [], width
        page.close()


@pytest.mark.browser
def test_checks_panel_shows_planted_problems(live: Live, chromium: Any) -> None:
    file = live.content / "newsletters" / "2024-1.md"
    text = file.read_text(encoding="utf-8")
    text = re.sub(r"!\[[^\]]+\]\(images/portraits-2024\.png\)", "![](images/portraits-2024.png)", text)
    text = text.replace("ziehen eine erste Zwischenbilanz", "ziehen eine [erste Zwischenbilanz](#nirgends)")
    file.write_text(text, encoding="utf-8")
    wait_for(lambda: live.get(NEWSLETTER).text, lambda page: "#nirgends" in page)  # the watcher saw the change
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live.url + NEWSLETTER)
    alt = page.locator('[data-check="alt-texts"]')
    assert alt.get_attribute("data-ok") == "false"
    assert re.search(r"newsletters/2024-1\.md:11: warning: image 'images/portraits-2024\.png' has no alt text",
                     alt.inner_text())  # fmt: skip
    links = page.locator('[data-check="links"]')
    assert links.get_attribute("data-ok") == "false" and "#nirgends" in links.inner_text()
    assert page.locator('[data-check="size"]').get_attribute("data-ok") == "true"
    page.goto(live.url)
    assert "Alt texts" in page.locator('tr[data-stem="2024-1"]').inner_text()
    page.close()


@pytest.mark.browser
def test_saving_a_file_refreshes_the_open_page(live: Live, chromium: Any) -> None:
    file = live.content / "newsletters" / "2023-3.md"
    original = file.read_text(encoding="utf-8")
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live.url + "newsletters/2023-3/")
    assert page.inner_text("#title") == "Reallabor Ukraine – Newsletter 3/2023"
    file.write_text(original.replace('title: "Reallabor Ukraine – Newsletter 3/2023"', 'title: "Frisch gespeichert"'),
                    encoding="utf-8")  # fmt: skip
    page.wait_for_function("document.querySelector('#title').textContent === 'Frisch gespeichert'", timeout=15000)
    assert page.inner_text("#subject") == "Frisch gespeichert"
    file.write_text(original.replace("date: 2023-10-05", "date: 5.10.2023"), encoding="utf-8")
    page.wait_for_selector("#problems", timeout=15000)
    assert re.search(r"newsletters/2023-3\.md:3: 'date'", page.inner_text("#problems"))
    assert "Traceback" not in page.content()
    file.write_text(original, encoding="utf-8")
    page.wait_for_function("document.querySelector('#title') !== null && !document.querySelector('#problems')",
                           timeout=15000)  # fmt: skip
    assert page.inner_text("#title") == "Reallabor Ukraine – Newsletter 3/2023"
    page.close()


# --- the checks, as pure functions --------------------------------------------------------------


def test_checks_read_the_rendered_email() -> None:
    from reallabor_mail.errors import Code, Problem, Severity
    from reallabor_mail.render.checks import email_checks
    from reallabor_mail.render.engine import UNSUBSCRIBE_MARK, RenderedEmail

    site = load_content(SAMPLE_CONTENT).site
    html_part = (
        f'<html><body><p id="top">x</p><img src="{site.public_url}/images/nope.png">'
        f'<a href="#top">up</a><a href="#gone">down</a><a href="folder/page.html">rel</a>'
        f'<a href="https://example.org/a">ext</a><a href="{site.imprint_url}">Impressum</a>'
        f'<a href="{UNSUBSCRIBE_MARK}">ab</a>{"x" * 90_000}</body></html>'
    )
    email = RenderedEmail("de", "Betreff", "", html_part, "https://example.org/first\n", "https://w")
    warning = Problem("content/newsletters/x.md", 1, "no 'preheader'; …", Code.NO_PREHEADER, Severity.WARNING)
    checks = {c.id.value: c for c in email_checks(email, site, warnings=[warning], resolves=lambda url: False)}
    assert not checks["size"].ok and "88 KB" in checks["size"].detail
    assert not checks["alt-texts"].ok and "nope.png" in checks["alt-texts"].items[0]
    assert not checks["preheader"].ok and checks["preheader"].items == (str(warning),)
    broken = " ".join(checks["links"].items)
    assert "#gone" in broken and "folder/page.html" in broken and "nope.png" in broken and "#top" not in broken
    assert checks["external-links"].items == ("https://example.org/a", str(site.imprint_url))
    footer = checks["footer"]
    assert not footer.ok and footer.items == ("text part: no Impressum address " + str(site.imprint_url),
                                              "text part: no unsubscribe address")  # fmt: skip
    assert not checks["text-part"].ok and "starts with a link" in checks["text-part"].detail
