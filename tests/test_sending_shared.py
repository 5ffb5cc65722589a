"""Several senders share one campaign on PostgreSQL (issue 15): each claims its own ledger rows, so two
``send --resume`` started together reach everyone exactly once, and both send some."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

from reallabor_mail.db import DatabaseUrl, connect
from tests.reliability.harness import (
    CAMPAIGN,
    accepted,
    ledger_states,
    populate,
    recording_server,
    send_command,
    send_env,
)

COUNT = 400


def test_two_senders_share_one_campaign_each_recipient_once(content_copy: Path, tmp_path: Path, pg_url: str) -> None:
    state, log = DatabaseUrl(pg_url), tmp_path / "accepted.log"
    populate(state, range(COUNT))
    with recording_server(log) as port:
        env = send_env(state, port)
        command = send_command(content_copy, "--resume", "--rate", "1200/min")  # 20/s each: both get a share
        pair = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]  # fmt: skip
        outputs = [sender.communicate(timeout=120) for sender in pair]
    assert [sender.returncode for sender in pair] == [0, 0], outputs
    received = Counter(accepted(log))
    assert len(received) == COUNT and set(received.values()) == {1}  # everyone, nobody twice
    assert set(ledger_states(state).values()) == {"sent"}
    conn = connect(state)
    shares = conn.execute("SELECT owner, count(*) FROM send_ledger WHERE campaign = ? GROUP BY owner", (CAMPAIGN,))
    counts = sorted(int(row[1]) for row in shares)
    assert len(counts) == 2 and counts[0] >= 50, counts  # both senders sent a share
    state_row = conn.execute("SELECT state FROM campaigns WHERE key = ?", (CAMPAIGN,)).fetchone()
    assert state_row is None or state_row[0] == "sent"
