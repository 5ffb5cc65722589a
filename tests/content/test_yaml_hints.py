"""YAML mistakes staff make get a message that says what to do, with the line they are on."""

from __future__ import annotations

from pathlib import Path

from ..test_content_errors import EVENT, only, problems_for, write_event


def test_a_tab_says_to_use_spaces(content_copy: Path) -> None:
    write_event(content_copy, EVENT.replace("lists: [reallabor]", "lists:\n\t- reallabor"))
    message = only(problems_for(content_copy), "tab character")
    assert "2030-01-01-test.md:8:" in message and "spaces" in message


def test_a_colon_in_an_unquoted_title_says_to_quote_it(content_copy: Path) -> None:
    write_event(content_copy, EVENT.replace('title: "Kollegialer Austausch"', "title: Austausch: Kommunen im Dialog"))
    message = only(problems_for(content_copy), "second colon")
    assert "2030-01-01-test.md:2:" in message and 'title: "Thema: Untertitel"' in message


def test_what_pyyaml_refuses_stays_refused(content_copy: Path) -> None:
    """libyaml (the fast parser) accepts a tab inside a value and a ``?`` in a flow list; PyYAML does not."""
    write_event(content_copy, EVENT.replace('title: "Kollegialer Austausch"', "title: Kollegialer\tAustausch"))
    assert "2030-01-01-test.md:2:" in only(problems_for(content_copy), "tab character")
    write_event(content_copy, EVENT.replace("lists: [reallabor]", "lists: [real?labor]"))
    assert "2030-01-01-test.md:7:" in only(problems_for(content_copy), "invalid YAML")
