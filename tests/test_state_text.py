"""Text from strangers' mail reaches the state with whatever it carries; both back ends must keep it."""

from __future__ import annotations

from typing import Any

from reallabor_mail.db import connect


def test_a_nul_in_text_is_stored_on_both_back_ends(state: Any) -> None:
    conn = connect(state)
    conn.execute("INSERT INTO consent_texts (version, language, text) VALUES (?, ?, ?)", ("v1", "de", "a\x00b"))
    stored = conn.execute("SELECT text FROM consent_texts WHERE version = ?", ("v1",)).fetchone()[0]
    assert stored == ("a\ufffdb" if conn.is_postgres else "a\x00b")  # PostgreSQL's text cannot hold NUL
