"""Every kind of content error is reported as `path:line: message`, all of them, and nothing is written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reallabor_mail.content.loader import load_content
from reallabor_mail.errors import ContentError, display_path
from reallabor_mail.publish.build import build

from .conftest import SAMPLE_CONTENT, TEMPLATES, TODAY

EVENT = """---
title: "Kollegialer Austausch"
start: 2023-09-19 14:00
end: 2023-09-19 15:30
format: online
online_url: "https://us02web.zoom.us/j/86240913785"
lists: [reallabor]
---
Beschreibung.
"""


def write_event(content: Path, text: str, name: str = "2030-01-01-test.md") -> Path:
    path = content / "events" / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_for(content: Path) -> list[str]:
    with pytest.raises(ContentError) as info:
        load_content(content)
    return [str(p) for p in info.value.problems]


def only(messages: list[str], fragment: str) -> str:
    hits = [m for m in messages if fragment in m]
    assert len(hits) == 1, messages
    return hits[0]


def test_sample_content_is_valid() -> None:
    content = load_content(SAMPLE_CONTENT)
    assert len(content.newsletters) >= 2
    assert len(content.events) >= 10
    assert {"de", "uk"} <= set(next(n for n in content.newsletters if n.stem == "2023-3").versions)


def test_bad_yaml_names_file_and_line(content_copy: Path) -> None:
    write_event(content_copy, EVENT.replace('title: "Kollegialer Austausch"', 'title: "unclosed'))
    message = only(problems_for(content_copy), "invalid YAML")
    # the unclosed quote is on line 2; PyYAML notices at the end of the front matter, four lines later
    assert "2030-01-01-test.md:2: invalid YAML" in message


def test_unknown_key_lists_allowed_keys(content_copy: Path) -> None:
    write_event(content_copy, EVENT.replace("lists: [reallabor]", "lists: [reallabor]\nort: Dortmund"))
    message = only(problems_for(content_copy), "unknown key 'ort'")
    assert "2030-01-01-test.md:8:" in message
    assert "allowed keys are: title, kind, timezone, start, end, format, location" in message


def test_missing_required_key(content_copy: Path) -> None:
    write_event(content_copy, EVENT.replace('title: "Kollegialer Austausch"\n', ""))
    message = only(problems_for(content_copy), "missing required key 'title'")
    assert "2030-01-01-test.md:1:" in message


def test_wrong_type(content_copy: Path) -> None:
    write_event(content_copy, EVENT.replace("format: online", "format: webinar"))
    message = only(problems_for(content_copy), "'format'")
    assert "2030-01-01-test.md:5:" in message and "online" in message and "in_person" in message


def test_end_before_start(content_copy: Path) -> None:
    write_event(content_copy, EVENT.replace("end: 2023-09-19 15:30", "end: 2023-09-19 13:30"))
    message = only(problems_for(content_copy), "before it starts")
    assert "2030-01-01-test.md:4:" in message


def test_nonexistent_local_time(content_copy: Path) -> None:
    text = EVENT.replace("2023-09-19 14:00", "2026-03-29 02:30").replace("2023-09-19 15:30", "2026-03-29 04:00")
    write_event(content_copy, text)
    message = only(problems_for(content_copy), "does not exist")
    assert "2030-01-01-test.md:3:" in message and "Europe/Berlin" in message


def test_ambiguous_local_time(content_copy: Path) -> None:
    text = EVENT.replace("2023-09-19 14:00", "2026-10-25 02:30").replace("2023-09-19 15:30", "2026-10-25 04:00")
    write_event(content_copy, text)
    message = only(problems_for(content_copy), "happens twice")
    assert "2030-01-01-test.md:3:" in message


def test_format_decides_required_fields(content_copy: Path) -> None:
    write_event(content_copy, EVENT.replace("format: online", "format: hybrid"))
    message = only(problems_for(content_copy), "'location' is required for format hybrid")
    assert "2030-01-01-test.md:1:" in message


def test_kiev_is_written_as_kyiv(content_copy: Path) -> None:
    write_event(content_copy, EVENT.replace("format: online", 'timezone: "Europe/Kiev"\nformat: online'))
    content = load_content(content_copy)
    event = next(e for e in content.events if e.stem == "2030-01-01-test")
    assert event.meta.timezone == "Europe/Kyiv"
    assert str(event.meta.start.tzinfo) == "Europe/Kyiv"


def test_image_outside_content_folder(content_copy: Path) -> None:
    write_event(content_copy, EVENT + "\n![Karte](../../etc/passwd)\n")
    message = only(problems_for(content_copy), "outside the content folder")
    assert "2030-01-01-test.md:11:" in message


def test_missing_image(content_copy: Path) -> None:
    write_event(content_copy, EVENT + "\n![Karte](images/fehlt.png)\n")
    message = only(problems_for(content_copy), "not found")
    assert "2030-01-01-test.md:11:" in message and "images/fehlt.png" in message


def test_yaml_tags_that_construct_objects_are_refused(content_copy: Path) -> None:
    write_event(content_copy, EVENT.replace("lists: [reallabor]", "lists: !!python/object/apply:os.system ['true']"))
    message = only(problems_for(content_copy), "invalid YAML")
    assert "2030-01-01-test.md:7:" in message


def test_duplicate_key(content_copy: Path) -> None:
    write_event(content_copy, EVENT.replace("lists: [reallabor]", "lists: [reallabor]\ntitle: Nochmal"))
    message = only(problems_for(content_copy), "appears twice")
    assert "2030-01-01-test.md:8:" in message


def test_missing_front_matter(content_copy: Path) -> None:
    write_event(content_copy, "Nur Text, kein Kopf.\n")
    message = only(problems_for(content_copy), "front matter")
    assert "2030-01-01-test.md:1:" in message


def test_translation_without_original(content_copy: Path) -> None:
    write_event(content_copy, EVENT, name="2030-01-01-waise.uk.md")
    only(problems_for(content_copy), "translation without original")


def test_site_yaml_errors(content_copy: Path) -> None:
    site = content_copy / "site.yaml"
    site.write_text(
        site.read_text(encoding="utf-8").replace('email: "becker@auslandsgesellschaft.de"', 'email: "becker(at)ag"')
    )
    message = only(problems_for(content_copy), "sender.email")
    assert message.startswith(f"{display_path(site, content_copy)}:6: 'sender.email'"), message


def test_header_breaking_title_is_refused(content_copy: Path) -> None:
    write_event(content_copy, EVENT.replace('title: "Kollegialer Austausch"', 'title: "Zeile\\nBcc: x@example.org"'))
    message = only(problems_for(content_copy), "single line")
    assert "2030-01-01-test.md:2:" in message


def test_every_problem_in_every_file_is_reported(content_copy: Path) -> None:
    write_event(content_copy, EVENT.replace("format: online", "format: webinar"), "2030-01-01-a.md")
    write_event(content_copy, EVENT.replace("lists: [reallabor]", "ort: x"), "2030-01-02-b.md")
    newsletter = content_copy / "newsletters" / "2023-3.md"
    newsletter.write_text(newsletter.read_text(encoding="utf-8").replace("date: 2023-10-05", "date: gestern"))
    messages = problems_for(content_copy)
    assert any("2030-01-01-a.md:5: 'format'" in m for m in messages)
    assert any("2030-01-02-b.md:7: unknown key 'ort'" in m for m in messages)
    assert any("2023-3.md:3:" in m and "'date'" in m for m in messages)


def test_nothing_is_written_when_there_are_errors(content_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    build(content_copy, TEMPLATES, out, today=TODAY)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    write_event(content_copy, EVENT.replace("format: online", "format: webinar"))
    with pytest.raises(ContentError):
        build(content_copy, TEMPLATES, out, today=TODAY)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    fresh = tmp_path / "fresh"
    with pytest.raises(ContentError):
        build(content_copy, TEMPLATES, fresh, today=TODAY)
    assert not fresh.exists()


def test_template_error_names_template_and_line(content_copy: Path, tmp_path: Path) -> None:
    import shutil

    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    base = templates / "email" / "newsletter.mjml.j2"
    lines = base.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3] + "{{ nicht_definiert }}"
    base.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ContentError) as info:
        build(content_copy, templates, tmp_path / "out", today=TODAY)
    messages = [str(p) for p in info.value.problems]
    assert any("newsletter.mjml.j2:4:" in m and "nicht_definiert" in m for m in messages), messages


def test_missing_alt_text_is_a_warning_and_strict_makes_it_an_error(content_copy: Path, tmp_path: Path) -> None:
    write_event(content_copy, EVENT + "\n![](images/austausch-2023-09.png)\n")
    result = build(content_copy, TEMPLATES, tmp_path / "out", today=TODAY)
    assert any("no alt text" in str(w) and "2030-01-01-test.md:11:" in str(w) for w in result.warnings)
    with pytest.raises(ContentError) as info:
        build(content_copy, TEMPLATES, tmp_path / "out2", strict=True, today=TODAY)
    assert any("no alt text" in str(p) for p in info.value.problems)


def test_control_characters_are_removed_with_a_warning(content_copy: Path) -> None:
    write_event(content_copy, EVENT.replace("Beschreibung.", "Beschreibung\x1f mit\x0b Steuerzeichen."))
    content = load_content(content_copy)
    event = next(e for e in content.events if e.stem == "2030-01-01-test")
    assert "Beschreibung mit Steuerzeichen." in str(event.main.body.html)
    assert any("U+001F removed" in str(w) and "2030-01-01-test.md:9:" in str(w) for w in content.warnings)


def test_problems_carry_a_stable_code(content_copy: Path) -> None:
    write_event(content_copy, EVENT.replace("lists: [reallabor]", "lists: [reallabor]\nort: Dortmund"))
    message = only(problems_for(content_copy), "unknown key 'ort'")
    assert message.endswith(" [RLM107]")


def test_site_yaml_with_a_byte_order_mark_is_read(content_copy: Path) -> None:
    site = content_copy / "site.yaml"
    site.write_bytes(b"\xef\xbb\xbf" + site.read_bytes())
    assert load_content(content_copy).site.language == "de"


def test_site_yaml_in_windows_1252_is_one_problem(content_copy: Path) -> None:
    site = content_copy / "site.yaml"
    site.write_bytes(site.read_text(encoding="utf-8").encode("cp1252", errors="replace"))
    message = only(problems_for(content_copy), "not UTF-8")
    assert message.startswith(display_path(site, content_copy) + ": not UTF-8 text")


def test_a_content_file_with_a_byte_order_mark_is_read(content_copy: Path) -> None:
    write_event(content_copy, "\ufeff" + EVENT)
    event = next(e for e in load_content(content_copy).events if e.stem == "2030-01-01-test")
    assert event.meta.title == "Kollegialer Austausch"


@pytest.mark.parametrize("quoted", ["„Resilienz in Krisenzeiten: Kommunen“", "“Resilienz in Krisenzeiten: Kommunen”"])
def test_typographic_quotes_around_a_title_with_a_colon_ask_for_straight_ones(content_copy: Path, quoted: str) -> None:
    write_event(content_copy, EVENT.replace('"Kollegialer Austausch"', quoted))
    message = only(problems_for(content_copy), "straight quotes")
    assert message.startswith(display_path(content_copy / "events" / "2030-01-01-test.md", content_copy) + ":2: ")
    assert message.endswith("[RLM115]") and "YAML error" not in message and 'use straight quotes "…"' in message


def write_photo(path: Path, width: int, height: int) -> None:
    """A photo-like image (noise compresses badly, like a real photo)."""
    import PIL.Image

    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(path, quality=95)


def test_wide_images_are_scaled_for_the_build(content_copy: Path, tmp_path: Path) -> None:
    import PIL.Image

    photo = content_copy / "images" / "Partnerschaftstreffen 2026.JPG"
    PIL.Image.new("RGB", (4000, 3000), (40, 90, 160)).save(photo, quality=95)
    write_event(content_copy, EVENT + "\n![Gruppenfoto beim Treffen](<images/Partnerschaftstreffen 2026.JPG>)\n")
    first, second = tmp_path / "a", tmp_path / "b"
    result = build(content_copy, TEMPLATES, first, today=TODAY, strict=True)
    build(content_copy, TEMPLATES, second, today=TODAY)
    built = first / "images" / "Partnerschaftstreffen 2026.JPG"
    with PIL.Image.open(built) as picture:
        assert picture.size == (1200, 900) and picture.format == "JPEG"
    assert built.read_bytes() == (second / "images" / built.name).read_bytes()  # deterministic
    assert not [w for w in result.warnings if "2030-01-01-test" in str(w)]
    page = (first / "events" / "2030-01-01-test" / "index.html").read_text(encoding="utf-8")
    assert 'src="../../images/Partnerschaftstreffen%202026.JPG"' in page and 'width="552" height="414"' in page


def test_a_heavy_image_warns_and_strict_refuses_it(content_copy: Path, tmp_path: Path) -> None:
    write_photo(content_copy / "images" / "foto.jpg", 1000, 700)
    write_event(content_copy, EVENT + "\n![Foto](images/foto.jpg)\n")
    result = build(content_copy, TEMPLATES, tmp_path / "out", today=TODAY)
    message = only([str(w) for w in result.warnings], "foto.jpg")
    assert "2030-01-01-test.md:11:" in message and "KB" in message and message.endswith("[RLM209]")
    with pytest.raises(ContentError):
        build(content_copy, TEMPLATES, tmp_path / "strict", strict=True, today=TODAY)


def test_raw_html_image_problems_name_file_and_line(content_copy: Path) -> None:
    raw = '\n<img src="images/fehlt.png" alt="Fehlt">\n\n<img src="../site.yaml" alt="x">\n'
    write_event(content_copy, EVENT + raw)
    messages = problems_for(content_copy)
    assert "2030-01-01-test.md:11:" in only(messages, "fehlt.png")
    assert "2030-01-01-test.md:13:" in only(messages, "site.yaml")


def test_control_character_escaped_in_yaml_is_refused(content_copy: Path) -> None:
    # The raw-text rule sees only "\u001b" (six harmless characters); YAML makes it ESC.
    write_event(content_copy, EVENT.replace('title: "Kollegialer Austausch"', 'title: "Austausch\\u001b[31m"'))
    message = only(problems_for(content_copy), "U+001B")
    assert "2030-01-01-test.md:2: 'title': must be a single line of text without control characters" in message


def test_a_list_site_yaml_does_not_declare_is_an_error_naming_the_known_lists(content_copy: Path) -> None:
    write_event(content_copy, EVENT.replace("lists: [reallabor]", "lists: [reallabor, newsleter]"))
    message = only(problems_for(content_copy), "newsleter")
    assert message == (
        f"{display_path(content_copy / 'events' / '2030-01-01-test.md', content_copy)}:7: 'lists': unknown list "
        "newsleter; site.yaml declares: newsletter, reallabor [RLM120]"
    )


def without_lists_section(content: Path) -> None:
    site = content / "site.yaml"
    text = site.read_text(encoding="utf-8")
    site.write_text(text[: text.index("# Verteiler:")], encoding="utf-8")


def test_site_yaml_without_lists_keeps_old_content_valid_with_one_warning(content_copy: Path) -> None:
    without_lists_section(content_copy)
    write_event(content_copy, EVENT.replace("lists: [reallabor]", "lists: [reallabor, partner]"))
    content = load_content(content_copy)
    assert content.site.known_lists == ("newsletter", "partner", "reallabor")
    assert content.site.list_label("partner", "uk") == "partner"
    [warning] = [w for w in content.warnings if "lists:" in w.message]
    assert str(warning).startswith(f"{display_path(content_copy / 'site.yaml', content_copy)}: warning: no 'lists:'")
    assert str(warning).endswith("[RLM121]")


def test_list_labels_and_descriptions_fall_back_to_the_site_language(content_copy: Path) -> None:
    site = content_copy / "site.yaml"
    text = site.read_text(encoding="utf-8")
    text = text.replace('      uk: "Запрошення до «Реальної лабораторії Україна»"\n', "")
    text = text.replace('      uk: "Запрошення на зустрічі', '      # uk: "Запрошення на зустрічі')
    site.write_text(text, encoding="utf-8")
    loaded = load_content(content_copy).site
    assert loaded.list_label("reallabor", "uk") == "Einladungen zum Reallabor Ukraine"
    assert loaded.list_label("newsletter", "uk") == "Розсилка (щоквартально)"
    assert str(loaded.list_description("newsletter", "en")).startswith("News from")
    assert str(loaded.list_description("reallabor", "uk")).startswith("Einladungen zu Austauschrunden")
    assert loaded.list_label("unbekannt", "de") == "unbekannt"


def test_a_list_needs_a_label_in_the_site_language(content_copy: Path) -> None:
    site = content_copy / "site.yaml"
    site.write_text(site.read_text(encoding="utf-8").replace('      de: "Newsletter (vierteljährlich)"\n', ""), "utf-8")
    line = site.read_text(encoding="utf-8").splitlines().index("lists:") + 1
    message = only(problems_for(content_copy), "no label in de")
    assert f"site.yaml:{line}: 'lists': list 'newsletter' has no label in de, the site's language" in message


def test_a_list_name_follows_the_rule_for_list_names(content_copy: Path) -> None:
    site = content_copy / "site.yaml"
    site.write_text(site.read_text(encoding="utf-8").replace("  reallabor:\n", "  Reallabor!:\n"), "utf-8")
    line = site.read_text(encoding="utf-8").splitlines().index("  Reallabor!:") + 1
    message = only(problems_for(content_copy), "Reallabor!")
    assert f"site.yaml:{line}: 'lists.Reallabor!': 'Reallabor!' is not a list name" in message
