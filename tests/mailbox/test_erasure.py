"""Erasure reaches the mailbox records: after `recipients delete` no form of the address is left
from the calendar answers, declines and bounces the inbox filed."""

from __future__ import annotations

import gc
from pathlib import Path

from ..recipients.test_erasure import forms
from . import samples
from .conftest import Invited, cli
from .test_inbox import ANKE, KIM, maildir


def test_erasure_removes_answers_and_bounces_the_inbox_filed(invited: Invited, tmp_path: Path) -> None:
    folder = maildir(tmp_path / "mail", samples.outlook_reply(invited.messages[ANKE], "DECLINED"),
                     samples.postfix_dsn(invited.messages[KIM]))  # fmt: skip
    result = cli("inbox", "--maildir", str(folder), "--content", str(invited.content))
    assert result.exit_code == 0, result.output
    for person in (ANKE, KIM):
        result = cli("recipients", "delete", person, "--yes")
        assert result.exit_code == 0, result.output
    gc.collect()
    files = [p for p in invited.state.parent.iterdir() if p.name.startswith(invited.state.name)]
    for path in files:
        data = path.read_bytes()
        for person in (ANKE, KIM):
            left = [form for form in forms(person) if form in data]
            assert not left, f"{path.name}: {person} still there as {left}"
    result = cli("inbox", "--maildir", str(folder), "--content", str(invited.content))
    assert result.exit_code == 0 and "Suppressed" not in result.output, result.output  # read once, still
