"""``registration:`` with the public server's form (issue 14): ``form: true`` or ``registration: form``,
``capacity`` only with the form and only a positive whole number; mistakes name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from reallabor_mail.content.loader import load_content

from ..test_content_errors import EVENT, only, problems_for, write_event


def with_registration(text: str) -> str:
    return EVENT.replace("lists: [reallabor]", f"lists: [reallabor]\n{text}")


@pytest.mark.parametrize("written", ["registration: form", "registration: {form: true, capacity: 40}",
                                     "registration:\n  form: true\n  deadline: 2029-12-20"])  # fmt: skip
def test_the_form_is_taken_in_each_spelling(content_copy: Path, written: str) -> None:
    write_event(content_copy, with_registration(written))
    event = next(e for e in load_content(content_copy).events if e.stem == "2030-01-01-test")
    assert event.meta.registration is not None and event.meta.registration.form


def test_capacity_without_the_form_says_to_add_it(content_copy: Path) -> None:
    by_mail = 'registration: {email: "becker@auslandsgesellschaft.de", capacity: 40}'
    write_event(content_copy, with_registration(by_mail))
    message = only(problems_for(content_copy), "capacity")
    assert "2030-01-01-test.md:8:" in message and "form: true" in message


@pytest.mark.parametrize("capacity", ["0", "-3", "viele"])
def test_capacity_must_be_a_positive_number(content_copy: Path, capacity: str) -> None:
    write_event(content_copy, with_registration(f"registration: {{form: true, capacity: {capacity}}}"))
    message = only(problems_for(content_copy), "capacity")
    assert "2030-01-01-test.md:8:" in message


def test_registration_with_no_way_names_the_form(content_copy: Path) -> None:
    write_event(content_copy, with_registration("registration: {deadline: 2029-12-20}"))
    assert "form: true" in only(problems_for(content_copy), "registration")
