"""The preview's cache of parsed content files: a reload re-reads only what changed, and misses nothing.

``ContentCache.reads`` lists every file read from disk (the rest came from the cache): what the
tests count instead of timing. Each read goes through the real loader over a copy of the sample.
"""

from __future__ import annotations

from pathlib import Path

from reallabor_mail.content.loader import Content, ContentCache, read_content
from reallabor_mail.errors import Code, display_path

NEWSLETTER = Path("newsletters/2024-1.md")
ORIGINAL, TRANSLATION = Path("newsletters/2023-3.md"), Path("newsletters/2023-3.uk.md")
EVENT = Path("events/2023-09-19-kollegialer-austausch.md")
REPORT = Path("reports/2023-09-19-kollegialer-austausch.md")


def read_again(root: Path, cache: ContentCache) -> tuple[Content | None, list[str], list[Path]]:
    """One reload: the content, its errors as the preview shows them, and the files read from disk."""
    before = len(cache.reads)
    content, problems = read_content(root, cache)
    return content, [str(p) for p in problems.errors], [p.relative_to(root) for p in cache.reads[before:]]


def shown(root: Path, file: Path) -> str:
    """A file's path as problems name it."""
    return display_path(root / file, root)


def every_item_file(root: Path) -> set[Path]:
    folders = ("newsletters", "events", "reports")
    return {p.relative_to(root) for folder in folders for p in (root / folder).glob("*.md")}


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def test_saving_one_file_reads_only_that_file_again(content_copy: Path) -> None:
    cache = ContentCache()
    _content, _errors, first = read_again(content_copy, cache)
    assert sorted(first) == sorted(every_item_file(content_copy))

    append(content_copy / NEWSLETTER, "\nEin neuer Satz am Ende.\n")
    content, errors, second = read_again(content_copy, cache)

    assert second == [NEWSLETTER]
    assert errors == []
    assert content is not None
    newsletter = next(n for n in content.newsletters if n.stem == "2024-1")
    assert "Ein neuer Satz am Ende." in newsletter.main.body.html
    _content, _errors, third = read_again(content_copy, cache)
    assert third == []


def test_a_translation_is_read_again_with_its_original(content_copy: Path) -> None:
    cache = ContentCache()
    read_again(content_copy, cache)
    append(content_copy / ORIGINAL, "\nNoch ein Satz.\n")
    _content, _errors, reads = read_again(content_copy, cache)
    assert reads == [ORIGINAL, TRANSLATION]


def test_an_error_in_one_file_shows_with_its_line_on_every_reload(content_copy: Path) -> None:
    cache = ContentCache()
    read_again(content_copy, cache)
    path = content_copy / EVENT
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(2, "colour: blue\n")  # an unknown key on line 3
    path.write_text("".join(lines), encoding="utf-8")

    content, errors, reads = read_again(content_copy, cache)
    assert reads == [EVENT, REPORT]  # the report is read against its event's end, which is gone
    assert len(errors) == 1 and errors[0].startswith(f"{shown(content_copy, EVENT)}:3: ")
    assert f"[{Code.UNKNOWN_KEY}]" in errors[0]
    assert content is not None and all(e.stem != EVENT.stem for e in content.events)
    # The report of that event is left out too: the rule across files ran on the cached report.
    assert all(r.stem != EVENT.stem for r in content.reports)

    append(content_copy / NEWSLETTER, "\nEin Satz.\n")
    _content, again, reads = read_again(content_copy, cache)
    assert reads == [NEWSLETTER]
    assert again == errors  # the cached broken file reports the same problem again


def test_deleting_and_renaming_files_is_noticed(content_copy: Path) -> None:
    cache = ContentCache()
    read_again(content_copy, cache)

    (content_copy / NEWSLETTER).rename(content_copy / "newsletters" / "2024-2.md")
    (content_copy / EVENT).unlink()
    content, errors, reads = read_again(content_copy, cache)

    assert reads == [Path("newsletters/2024-2.md"), REPORT]
    assert content is not None
    assert [n.stem for n in content.newsletters if n.stem.startswith("2024")] == ["2024-2"]
    assert all(e.stem != EVENT.stem for e in content.events)
    # The report of the deleted event is now an error, though the report itself came from the cache.
    assert len(errors) == 1 and errors[0].startswith(f"{shown(content_copy, REPORT)}: ")
    assert f"[{Code.REPORT_WITHOUT_EVENT}]" in errors[0]


def test_a_change_to_site_yaml_or_an_image_reads_everything_again(content_copy: Path) -> None:
    cache = ContentCache()
    _content, _errors, first = read_again(content_copy, cache)

    site = content_copy / "site.yaml"
    site.write_text(site.read_text(encoding="utf-8").replace("  newsletter:\n", "  rundbrief:\n", 1), encoding="utf-8")
    _content, errors, reads = read_again(content_copy, cache)
    assert sorted(reads) == sorted(first)
    # Every file naming the list that is gone now says so, at its line.
    assert any(e.startswith(f"{shown(content_copy, NEWSLETTER)}:5: ") and f"[{Code.UNKNOWN_LIST}]" in e for e in errors)

    image = content_copy / "images" / "portraits-2024.png"
    image.write_bytes(image.read_bytes() + b"\0")
    _content, _errors, reads = read_again(content_copy, cache)
    assert sorted(reads) == sorted(first)
