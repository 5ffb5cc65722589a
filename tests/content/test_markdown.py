"""Markdown bodies: raw HTML is sanitised, the plain text is written from the tokens."""

from __future__ import annotations

import re

import pytest

from reallabor_mail.content.markdown import Body, LinkReferences, ResolvedImage, parse_body
from reallabor_mail.errors import Code, ProblemLog


def parse(source: str) -> tuple[Body, ProblemLog]:
    problems = ProblemLog()
    body = parse_body(
        source,
        path="x.md",
        first_line=10,
        problems=problems,
        resolve_image=lambda s, line: ResolvedImage(f"https://cdn/{s}", 1200, 600),
    )
    return body, problems


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>Text",
        '<p onclick="alert(1)">Text</p>',
        "<img src=x onerror=alert(1)>",
        "[klick](javascript:alert(1))",
        '<a href="javascript:alert(1)">klick</a>',
        '<a href="data:text/html;base64,PHNjcmlwdD4=">klick</a>',
        '<iframe src="https://evil.example"></iframe>',
        "<svg onload=alert(1)><circle/></svg>",
        '<p style="background:url(javascript:alert(1))">x</p>',
        '<object data="x.swf"></object>',
        '<form action="https://evil.example"><input name=q></form>',
    ],
)
def test_active_content_is_removed(source: str) -> None:
    body, _ = parse(source)
    html = str(body.html).lower()
    for needle in (
        "<script",
        "onclick",
        "onerror",
        "onload",
        "<iframe",
        "<svg",
        "<object",
        "<form",
        "<input",
        "background:url",
    ):
        assert needle not in html, html
    assert not re.search(r"""(href|src)\s*=\s*["']?\s*(javascript|data):""", html), html


def test_safe_markup_survives() -> None:
    body, _ = parse(
        'Ein **fetter** Text mit [Link](https://example.org) und <abbr title="Nordrhein-Westfalen">NRW</abbr>.'
    )
    html = str(body.html)
    assert "<strong>fetter</strong>" in html
    assert 'href="https://example.org"' in html
    assert '<abbr title="Nordrhein-Westfalen">NRW</abbr>' in html


def test_sections_split_on_level_two_headings() -> None:
    body, _ = parse("Intro.\n\n## Erster Teil\n\nA\n\n### Unterpunkt\n\nB\n\n## Zweiter Teil\n\nC\n")
    assert [s.title_text for s in body.sections] == ["Erster Teil", "Zweiter Teil"]
    assert "<h3>Unterpunkt</h3>" in str(body.sections[0].html)
    assert "Intro." in str(body.intro.html)


def test_plain_text_lists_links_and_tables() -> None:
    body, _ = parse(
        "Siehe [RGRE-Datenbank](https://www.rgre.de/db) und https://example.org.\n\n"
        "- eins mit [Link](https://a.example)\n- zwei\n\n1. erstens\n2. zweitens\n\n"
        "| Stadt | Partner |\n|---|---|\n| Dortmund | Lviv |\n"
    )
    refs = LinkReferences()
    text = body.intro.text(refs)
    assert "RGRE-Datenbank [1]" in text
    assert "- eins mit Link [2]\n- zwei" in text
    assert "1. erstens\n2. zweitens" in text
    assert "Stadt    | Partner" in text and "Dortmund | Lviv" in text
    assert refs.footnotes() == "[1] https://www.rgre.de/db\n[2] https://a.example"


def test_link_with_url_as_text_is_not_numbered() -> None:
    body, _ = parse("<https://example.org/x>")
    refs = LinkReferences()
    assert body.intro.text(refs).strip() == "https://example.org/x"
    assert refs.urls == []


def test_plain_text_wraps_at_72() -> None:
    body, _ = parse(("Wort " * 60).strip())
    assert max(len(line) for line in body.intro.text(LinkReferences()).splitlines()) <= 72


def test_problems_carry_file_lines() -> None:
    _, problems = parse("Absatz\n\n![](bild.png)\n\n[x](relativ/pfad)\n\n# Zweiter Titel\n")
    messages = [str(p) for p in problems.warnings]
    assert any(m.startswith("x.md:12:") and "alt text" in m for m in messages), messages
    assert any(m.startswith("x.md:16:") and "'#' heading" in m for m in messages), messages
    errors = [str(p) for p in problems.errors]
    assert any(m.startswith("x.md:14:") and "not a full address" in m for m in errors), errors


@pytest.mark.parametrize(
    "source",
    ["[KMK](www.kmk-pad.org)", '<a href="www.kmk-pad.org">KMK</a>', '<a href="partner.html">Partner</a>',
     "Text <a href=\"partner.html\">Partner</a> im Satz."],
)  # fmt: skip
def test_a_link_that_is_not_a_full_address_is_an_error(source: str) -> None:
    _, problems = parse(source)
    assert [p.code for p in problems.errors] == [Code.LINK_NOT_FULL_ADDRESS], problems.errors
    assert str(problems.errors[0]).startswith("x.md:10:")


def test_links_within_the_email_are_allowed() -> None:
    _, problems = parse('[nach oben](#termine) <a href="#termine">Termine</a>')
    assert problems.errors == []


def test_a_raw_link_the_sanitiser_emptied_is_an_error() -> None:
    _, problems = parse('<a href="javascript:alert(1)" onclick="x">klick</a>')
    assert [p.code for p in problems.errors] == [Code.LINK_WITHOUT_ADDRESS]


def test_raw_html_images_get_their_public_url_and_size() -> None:
    body, problems = parse('Vorher.\n\n<img src="images/portraits-2024.png" alt="Porträts">\n\n'
                           'Im Satz <img src="images/karte.png" alt="Karte"> und ![Karte](images/karte.png).')
    html = str(body.html)
    assert 'src="images/' not in html
    assert '<img src="https://cdn/images/portraits-2024.png" alt="Porträts" width="552" height="276">' in html
    assert html.count('src="https://cdn/images/karte.png"') == 2
    assert problems.errors == [] and problems.warnings == []


def test_raw_html_image_without_alt_is_reported_like_a_markdown_one() -> None:
    body, problems = parse("<img src=x onerror=alert(1)>")
    assert [(p.code, p.line) for p in problems.warnings] == [(Code.IMAGE_WITHOUT_ALT, 10)]
    assert 'alt=""' in str(body.html) and "onerror" not in str(body.html)


def test_raw_html_images_are_resolved_in_the_content_folder() -> None:
    problems = ProblemLog()
    asked: list[str] = []

    def resolve(src: str, line: int | None) -> ResolvedImage | None:
        asked.append(src)
        problems.error("x.md", line, f"image {src!r} not found", Code.IMAGE_PATH)
        return None

    parse_body('<p><img src="images/fehlt.png" alt="Fehlt"></p>', path="x.md", first_line=3, problems=problems,
               resolve_image=resolve)
    assert asked == ["images/fehlt.png"] and [p.line for p in problems.errors] == [3]


@pytest.mark.parametrize("src", ["<images/Partnerschaftstreffen 2026.JPG>", "images/Partnerschaftstreffen%202026.JPG"])
def test_image_names_with_spaces_work(src: str) -> None:
    problems = ProblemLog()
    asked: list[str] = []

    def resolve(path: str, line: int | None) -> ResolvedImage:
        asked.append(path)
        return ResolvedImage("https://cdn/images/Partnerschaftstreffen%202026.JPG", 800, 600)

    body = parse_body(f"![Treffen]({src})", path="x.md", first_line=1, problems=problems, resolve_image=resolve)
    assert asked == ["images/Partnerschaftstreffen 2026.JPG"]
    assert 'src="https://cdn/images/Partnerschaftstreffen%202026.JPG"' in str(body.html)


def test_an_image_path_with_a_bare_space_is_an_error_not_text() -> None:
    _, problems = parse("![Treffen](images/Partnerschaftstreffen 2026.JPG)")
    assert [(p.code, p.line) for p in problems.errors] == [(Code.IMAGE_PATH, 10)]
    assert "<images/" in str(problems.errors[0])


@pytest.mark.parametrize(
    "opening",
    ["Liebe Kolleginnen und Kollegen,", "Sehr geehrte Damen und Herren,", "Dear colleagues,",
     "Шановні колеги!", "Lieber Herr Schmidt, liebe Frau Weber,"],
)  # fmt: skip
def test_a_body_that_greets_again_is_flagged(opening: str) -> None:
    _, problems = parse(f"{opening}\n\nheute berichten wir.\n")
    assert [(p.code, p.line) for p in problems.warnings] == [(Code.DOUBLE_GREETING, 10)]


@pytest.mark.parametrize(
    "opening", ["Liebe zur Heimat verbindet Dortmund und Lviv.", "Heute: Liebe Grüße aus Lviv,", "## Hallo,\n\nText"]
)
def test_sentences_that_are_no_greeting_pass(opening: str) -> None:
    _, problems = parse(opening)
    assert problems.warnings == []


def test_table_cells_carry_their_column_heading() -> None:
    body, _ = parse("| Programm | Förderhöhe |\n|---|---|\n| KePol | bis 31.01.2027 |\n")
    html = str(body.html)
    assert html.startswith('<div class="table-box">\n<table>')
    assert '<td data-label="Programm">KePol</td>' in html and '<td data-label="Förderhöhe">' in html


def test_images_point_at_their_public_url() -> None:
    body, _ = parse("![Karte der Partnerschaften](images/karte.png)")
    assert 'src="https://cdn/images/karte.png"' in str(body.html)
    assert 'alt="Karte der Partnerschaften"' in str(body.html)


def test_wide_images_are_capped_to_the_email_column() -> None:
    body, _ = parse("![Karte](images/karte.png)")
    html = str(body.html)
    assert 'width="552"' in html and 'height="276"' in html


@pytest.mark.parametrize(
    "source",
    [
        "[https://www.sparkasse.de/login](https://evil.example/x)",
        "[www.auslandsgesellschaft.de](https://auslandsgesellschaft.evil.example)",
        '<a href="https://evil.example">staedtepartnerschaftennrw.org</a>',
        '<p>Mehr bei <a href="https://evil.example/x">www.land.nrw</a></p>',
        'Mehr bei <a href="https://outlook.live.com/calendar">Outlook.com</a>.',
    ],
)
def test_look_alike_link_text_is_an_error(source: str) -> None:
    _, problems = parse(source)
    assert any("shows another address" in str(p) and str(p).startswith("x.md:10:") for p in problems.errors)


def test_honest_link_texts_pass() -> None:
    _, problems = parse(
        "[www.rgre.de](https://www.rgre.de/partnerschaft) · [RGRE-Datenbank](https://evil.example) · "
        "<https://example.org/a> · [skew.engagement-global.de](https://skew.engagement-global.de/)"
    )
    assert problems.errors == []
