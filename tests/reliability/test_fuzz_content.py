"""Fuzzing: whatever staff type ends in a rendered message or a `path:line: message`, never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reallabor_mail.content.loader import load_content
from reallabor_mail.errors import ContentError
from reallabor_mail.i18n.greetings import greeting
from reallabor_mail.recipients.person import Recipient
from reallabor_mail.render.engine import Renderer

from ..conftest import SAMPLE_CONTENT, TEMPLATES
from .conftest import Row

KEYS = ["title", "kind", "start", "end", "timezone", "format", "location", "online_url", "registration", "status",
        "lists", "date", "preheader", "upcoming_events", "x"]  # fmt: skip
scalars = st.one_of(
    st.text(max_size=40),
    st.integers(),
    st.booleans(),
    st.none(),
    st.sampled_from(["2026-03-29 02:30", "2026-10-25 02:30", "2030-01-01 10:00", "online", "hybrid", "Europe/Kiev"]),
)
yaml_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
markdown = st.lists(
    st.one_of(
        st.text(max_size=80),
        st.sampled_from([
            "## Abschnitt", "- Punkt", "1. Eins", "| a | b |\n|---|---|\n| c | d |",
            "![alt](images/austausch-2023-09.png)", "![](images/fehlt.png)", "[x](https://example.org)", "<b>fett</b>",
            "<script>x</script>", "```\ncode\n```", "> Zitat", "---", "# H1", "[a](javascript:x)", "\x00", "\u202e",
            "Київ 🇺🇦 & <>",
        ]),
    ),
    max_size=8,
).map("\n\n".join)  # fmt: skip


def yaml_line(key: str, value: object) -> str:
    import json

    return f"{key}: {json.dumps(value, ensure_ascii=False)}"


class Counter:
    rendered = 0
    refused = 0
    crashed = 0


def attempt(root: Path, counter: Counter) -> None:
    try:
        content = load_content(root)
        renderer = Renderer(content, TEMPLATES)
        for event in content.events:
            renderer.invitation_email(event, "de")
        counter.rendered += 1
    except ContentError as exc:
        assert exc.problems and all(p.path and p.message for p in exc.problems)
        counter.refused += 1
    except Exception:
        counter.crashed += 1
        raise


def test_fuzzed_front_matter_and_markdown(tmp_path_factory: object, row: Row) -> None:
    base = Path(str(tmp_path_factory.mktemp("fuzz")))  # type: ignore[attr-defined]
    root = base / "content"
    shutil.copytree(SAMPLE_CONTENT, root)
    shutil.rmtree(root / "newsletters")
    for event in (root / "events").glob("*.md"):
        event.unlink()
    counter = Counter()

    @settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        front=st.dictionaries(st.sampled_from(KEYS), yaml_values, max_size=8), body=markdown, valid_base=st.booleans()
    )
    @example(front={"title": "\u001b"}, body="", valid_base=True)  # YAML's escape made ESC; MJML then failed
    def run(front: dict[str, object], body: str, valid_base: bool) -> None:
        fields = {"title": "T", "start": "2030-01-01 10:00", "end": "2030-01-01 11:00", "format": "online",
                  "online_url": "https://example.org/"} if valid_base else {}  # fmt: skip
        fields.update(front)
        text = "---\n" + "\n".join(yaml_line(k, v) for k, v in fields.items()) + "\n---\n" + body + "\n"
        (root / "events" / "2030-01-01-fuzz.md").write_text(text, encoding="utf-8", errors="surrogatepass")
        attempt(root, counter)

    try:
        run()
    finally:
        total = counter.rendered + counter.refused + counter.crashed
        detail = f"{counter.rendered} rendered, {counter.refused} refused with path:line"
        row("Fuzzing", "hypothesis: random front matter (keys, types, nesting) and Markdown in an event file",
            total, counter.crashed, detail)  # fmt: skip


def test_fuzzed_raw_files(tmp_path_factory: object, row: Row) -> None:
    base = Path(str(tmp_path_factory.mktemp("raw")))  # type: ignore[attr-defined]
    root = base / "content"
    shutil.copytree(SAMPLE_CONTENT, root)
    counter = Counter()

    @settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        raw=st.binary(max_size=300)
        | st.text(max_size=300).map(lambda t: ("---\n" + t).encode("utf-8", "surrogatepass"))
    )
    def run(raw: bytes) -> None:
        (root / "newsletters" / "2030-1.md").write_bytes(raw)
        attempt(root, counter)

    try:
        run()
    finally:
        total = counter.rendered + counter.refused + counter.crashed
        row("Fuzzing", "hypothesis: arbitrary bytes and text as a newsletter file", total, counter.crashed,
            f"{counter.rendered} rendered, {counter.refused} refused with path:line")  # fmt: skip


def test_fuzzed_names_always_greet(row: Row) -> None:
    names = st.one_of(
        st.none(), st.text(max_size=30), st.sampled_from(["Олена", "Андрій", "Ilja", "Ñ", "🇺🇦", "Dr.", ""])
    )
    counter = Counter()

    @settings(max_examples=2000, deadline=None)
    @given(sal=st.sampled_from([None, "Frau", "Herr"]), title=names, first=names, last=names,
           lang=st.sampled_from(["de", "uk", "en"]))  # fmt: skip
    def run(sal: str | None, title: str | None, first: str | None, last: str | None, lang: str) -> None:
        text = greeting(Recipient("a@example.org", sal, title, first, last, None, lang), lang)  # type: ignore[arg-type]
        assert text.strip() and text.endswith((",", "!"))
        counter.rendered += 1

    try:
        run()
    finally:
        row("Fuzzing", "hypothesis: salutation, title, first and last name in de/uk/en greetings", counter.rendered, 0)
