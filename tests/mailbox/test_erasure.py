"""Erasure reaches the mailbox records: after `recipients delete` no form of the address is left
from the calendar answers, declines and bounces the inbox filed (on both back ends)."""

from __future__ import annotations

import gc
from pathlib import Path

from reallabor_mail.db import connect

from ..recipients.test_erasure import forms
from . import samples
from .conftest import Invited, cli
from .test_inbox import ANKE, KIM, maildir

# Every mailbox table and the columns that may name a person.
_NAMING = {
    "inbox_messages": ("sender", "subject", "detail"),
    "event_answers": ("email",),
    "event_declines": ("email",),
    "bounce_events": ("email",),
    "event_registrations": ("email",),
}


def test_erasure_removes_answers_and_bounces_the_inbox_filed(invited: Invited, tmp_path: Path) -> None:
    folder = maildir(tmp_path / "mail", samples.outlook_reply(invited.messages[ANKE], "DECLINED"),
                     samples.postfix_dsn(invited.messages[KIM]))  # fmt: skip
    result = cli("inbox", "--maildir", str(folder), "--content", str(invited.content))
    assert result.exit_code == 0, result.output
    conn = connect(invited.state)
    filed = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in _NAMING}
    assert filed["event_answers"] == filed["bounce_events"] == 1 and filed["inbox_messages"] == 2
    for person in (ANKE, KIM):
        result = cli("recipients", "delete", person, "--yes")
        assert result.exit_code == 0, result.output
    for table, columns in _NAMING.items():
        for row in conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall():
            text = " ".join(str(value).lower() for value in row if value is not None)
            assert ANKE not in text and KIM not in text, f"{table}: {text}"
    assert conn.execute("SELECT count(*) FROM inbox_messages").fetchone()[0] == 2  # still known as read
    conn.close()
    gc.collect()
    if isinstance(invited.state, Path):  # the file and its journal keep no old copy either
        files = [p for p in invited.state.parent.iterdir() if p.name.startswith(invited.state.name)]
        for path in files:
            data = path.read_bytes()
            for person in (ANKE, KIM):
                left = [form for form in forms(person) if form in data]
                assert not left, f"{path.name}: {person} still there as {left}"
    result = cli("inbox", "--maildir", str(folder), "--content", str(invited.content))
    assert result.exit_code == 0 and "Suppressed" not in result.output, result.output  # read once, still
