"""The preview's snapshot after a save (issue 16: reload ≤ 0.3 s): only the saved file is read again, the
compiled templates are kept while the templates folder is unchanged, and nothing stale is shown.

Real loader, real Builder, real files; ``ContentCache.reads`` counts what was read from disk.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from reallabor_mail.errors import display_path
from reallabor_mail.web.preview import Snapshot
from tests.conftest import TEMPLATES, TODAY

NEWSLETTER = Path("newsletters/2024-1.md")


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def email_text(snap: Snapshot) -> str:
    rendered = snap.rendered("newsletters", "2024-1")
    assert rendered is not None and not rendered.errors, rendered
    data = rendered.file("email.txt", "de")
    assert data is not None
    return data.decode("utf-8")


def test_the_snapshot_after_a_save_reads_only_that_file_and_keeps_the_templates(content_copy: Path) -> None:
    before = Snapshot("one", content_copy, TEMPLATES, TODAY)
    email_text(before)
    read_first = len(before.cache.reads)

    append(content_copy / NEWSLETTER, "\nEin Satz, gerade gespeichert.\n")
    after = before.following("two", TODAY)

    assert after.cache.reads[read_first:] == [content_copy / NEWSLETTER]
    assert "Ein Satz, gerade gespeichert." in email_text(after)
    assert after.builder is not None and before.builder is not None
    assert after.builder.renderer.templates is before.builder.renderer.templates


def test_a_changed_template_is_compiled_again(content_copy: Path, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    before = Snapshot("one", content_copy, templates, TODAY)
    assert "Frisch aus der Vorlage" not in email_text(before)

    append(templates / "email" / "newsletter.txt.j2", "Frisch aus der Vorlage\n")
    after = before.following("two", TODAY)

    assert after.builder is not None and before.builder is not None
    assert after.builder.renderer.templates is not before.builder.renderer.templates
    assert "Frisch aus der Vorlage" in email_text(after)


def test_an_error_saved_into_one_file_shows_with_path_and_line(content_copy: Path) -> None:
    before = Snapshot("one", content_copy, TEMPLATES, TODAY)
    path = content_copy / NEWSLETTER
    path.write_text(path.read_text(encoding="utf-8").replace("date: 2024-02-15", "date: 15.02.2024"), encoding="utf-8")

    after = before.following("two", TODAY)

    shown = [str(p) for p in after.problems]
    assert len(shown) == 1 and shown[0].startswith(f"{display_path(path, content_copy)}:3: "), shown
    assert after.find("newsletters", "2024-1") is None and after.find("newsletters", "2023-3") is not None

    path.write_text(path.read_text(encoding="utf-8").replace("date: 15.02.2024", "date: 2024-02-15"), encoding="utf-8")
    fixed = after.following("three", TODAY)
    assert fixed.problems == [] and fixed.find("newsletters", "2024-1") is not None
