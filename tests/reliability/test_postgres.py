"""PostgreSQL state (issue 15): two senders of one campaign on one database, the one sending SIGKILLed at
random moments and both restarted, 20 times; then a final resume.

On PostgreSQL one process sends a campaign at a time (a session advisory lock, which the server drops
when the process dies, on whichever machine): the other is refused and tries again in the next round, as
``reallabor-mail worker`` does. At the end every row is ``sent`` (exactly one message arrived) or
``unknown`` (at most one arrived, and ``--status`` lists it).
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from reallabor_mail.db import DatabaseUrl
from tests.reliability.conftest import Row
from tests.reliability.harness import accepted, ledger_states, populate, recording_server, send_command, send_env

COUNT = 2000
KILLS = 20


def test_two_senders_on_postgresql_one_killed_twenty_times(content_copy: Path, tmp_path: Path, pg_url: str,
                                                          row: Row) -> None:  # fmt: skip
    state, log = DatabaseUrl(pg_url), tmp_path / "accepted.log"
    populate(state, range(COUNT))
    rng = random.Random(15)
    refused = 0
    started = time.monotonic()
    with recording_server(log) as port:
        env = send_env(state, port)
        for _ in range(KILLS):
            before = len(accepted(log))
            command = send_command(content_copy, "--resume", "--connections", str(rng.randint(1, 4)))
            pair = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                    for _ in range(2)]  # fmt: skip
            target, deadline = before + rng.randint(1, 80), time.monotonic() + 60
            while len(accepted(log)) < target and any(p.poll() is None for p in pair) and time.monotonic() < deadline:
                time.sleep(0.002)
            for sender in pair:
                if sender.poll() is None:
                    sender.send_signal(signal.SIGKILL)
                sender.wait()
                stderr = sender.stderr.read() if sender.stderr else ""
                refused += "another `send` of" in stderr
        final = subprocess.run(send_command(content_copy, "--resume"), env=env, capture_output=True, text=True,
                               timeout=300)  # fmt: skip
        status = subprocess.run([*send_command(content_copy)[:-1], "--status"], env=env, capture_output=True,
                                text=True, timeout=60)  # fmt: skip
    minutes = (time.monotonic() - started) / 60
    assert final.returncode == 0, final.stderr
    received = Counter(accepted(log))
    rows = ledger_states(state)
    unknown = {email for email, s in rows.items() if s == "unknown"}
    lost = [email for email, s in rows.items() if s == "sent" and received[email] != 1]
    lost += [f"person{i:05d}@example.org" for i in range(COUNT) if f"person{i:05d}@example.org" not in rows]
    lost += [email for email, s in rows.items() if s not in ("sent", "unknown")]
    duplicates = sum(n - 1 for n in received.values() if n > 1)
    unlisted = [email for email in unknown if email not in status.stdout]
    row(
        "PostgreSQL state",
        f"two `send --resume` of one {COUNT:,}-message campaign started together on one PostgreSQL database, the "
        "sending one SIGKILLed at a random moment and both restarted",
        KILLS,
        len(lost) + max(0, duplicates - len(unknown)) + len(unlisted),
        f"{refused} starts refused while the other held the campaign; {len(received):,} received, {duplicates} "
        f"duplicates, {len(unknown)} rows unknown (all listed by --status); {minutes:.1f} min",
    )
    assert lost == [] and unlisted == [] and duplicates <= len(unknown)
