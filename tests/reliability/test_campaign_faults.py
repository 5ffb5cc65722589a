"""Campaign faults (issue 11): Ctrl-C at random moments of invitation and update runs, a reply lost
after the final ".", a reply after 40 s, a second send through a symlinked state path, and an import of
100,000 rows while a send runs.

``send`` runs as its own process (it owns its SIGINT) against a fault-injecting aiosmtpd server in this
process, which keeps every message it accepts. For every row: nobody owed a message is left without one
(lost), and every address that got one message twice is listed as ``unknown`` beforehand.
"""

from __future__ import annotations

import random
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from reallabor_mail.db import connect
from tests.reliability.conftest import Row
from tests.reliability.harness import CLI, ledger_states, person, populate, send_command, send_env
from tests.smtp_faults import Faults, FaultServer, fault_server

EVENT = Path("events") / "2024-06-19-abschlussveranstaltung.md"
EVENT_CAMPAIGN = "event:2024-06-19-abschlussveranstaltung"
TRIALS = 10
PEOPLE = 40
_SEQUENCE = re.compile(r"^SEQUENCE:(\d+)", re.MULTILINE)


def wait_for(condition: Callable[[], bool], timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def run(command: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def event_command(content: Path, *options: str) -> list[str]:
    return [*CLI, "send", str(content / EVENT), "--yes", *options]


def sequence_of(message: EmailMessage) -> int:
    """The SEQUENCE of the calendar part a message carries (-1 without one)."""
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            found = _SEQUENCE.search(part.get_content())
            return int(found[1]) if found else -1
    return -1


def unknown_rows(state: Path, campaign: str) -> set[str]:
    return {email for email, s in ledger_states(state, campaign).items() if s == "unknown"}


def interrupted(command: list[str], env: dict[str, str], server: FaultServer, rng: random.Random, twice: bool) -> int:
    """Run ``command`` and press Ctrl-C (twice if ``twice``) after a random number of accepted messages."""
    start = len(server.handler.messages)
    target = start + rng.randint(0, PEOPLE - 1)
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(server.handler.messages) >= target or process.poll() is not None)
    time.sleep(rng.uniform(0, 0.08))
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        if twice:
            time.sleep(rng.uniform(0, 0.05))
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    return process.returncode


def sent_version(state: Path) -> int:
    """The newest SEQUENCE of the event that went out (recorded with its campaign's first message)."""
    conn = connect(state)
    try:
        return int(conn.execute("SELECT max(sequence) FROM event_versions").fetchone()[0])
    finally:
        conn.close()


def test_ctrl_c_at_random_moments_of_invitation_and_update_runs(tmp_path: Path, content_copy: Path, row: Row) -> None:
    rng = random.Random(11)
    lost = duplicates_unlisted = wrong_subject = unknown_total = 0
    with fault_server(Faults(pipelining=True)) as server:
        for trial in range(TRIALS):
            update = trial % 2 == 1
            content = tmp_path / f"content{trial}"
            shutil.copytree(content_copy, content)
            state = tmp_path / f"state{trial}.sqlite3"
            populate(state, range(PEOPLE), "reallabor")
            env = send_env(state, server.port, REALLABOR_LANG="en")
            server.handler.messages.clear()
            command = event_command(content, "--connections", "2", "--rate", "1200/min")
            interrupted(command, env, server, rng, twice=trial % 3 == 2)
            first_version = {rcpt for m in server.handler.messages for rcpt in m.rcpt_tos}
            if update:  # the event's end time changes after the interrupted invitation run
                path = content / EVENT
                text = path.read_text(encoding="utf-8").replace("end: 2024-06-19 13:00", "end: 2024-06-19 14:30")
                path.write_text(text, encoding="utf-8")
                interrupted(command, env, server, rng, twice=trial % 3 == 0)
            done = run([*command, "--resume"], env)
            sequence = sent_version(state)  # 0 after an update if nothing of the first version had gone out
            campaign = f"{EVENT_CAMPAIGN}:{sequence}"
            unknown = unknown_rows(state, campaign) | unknown_rows(state, f"{EVENT_CAMPAIGN}:0")
            unknown_total += len(unknown)
            got: Counter[tuple[str, int]] = Counter()
            for message in server.handler.messages:
                version = sequence_of(message.message)
                got[(message.rcpt_tos[0], version)] += 1
                if update and sequence == 1 and version == 1:
                    changed = str(message.message["Subject"]).startswith("Geändert: ")
                    wrong_subject += changed != (message.rcpt_tos[0] in first_version)
            everyone = {person(i).email for i in range(PEOPLE)}
            lost += sum(1 for email in everyone if got[(email, sequence)] == 0 and email not in unknown)
            lost += int(done.returncode != 0)
            duplicates_unlisted += sum(1 for (email, _), n in got.items() if n > 1 and email not in unknown)
    row("Campaigns", f"Ctrl-C (once, or twice in a third of the runs) at random moments of event invitation and "
        f"update runs ({PEOPLE} recipients, 2 connections), then `--resume`", TRIALS,
        lost + duplicates_unlisted + wrong_subject,
        f"{lost} without the current version, {duplicates_unlisted} unlisted duplicates, {wrong_subject} with the "
        f"wrong subject (update vs invitation); {unknown_total} listed as unknown")  # fmt: skip
    assert (lost, duplicates_unlisted, wrong_subject) == (0, 0, 0)


def test_reply_lost_after_the_final_dot(tmp_path: Path, content_copy: Path, row: Row) -> None:
    count, dropped = 200, {person(i).email for i in range(7, 200, 20)}
    state = tmp_path / "state.sqlite3"
    populate(state, range(count))
    with fault_server(Faults(pipelining=True, lose_reply=set(dropped))) as server:
        env = send_env(state, server.port, REALLABOR_LANG="en")
        first = run(send_command(content_copy, "--connections", "2"), env)
        again = [run(send_command(content_copy, *options), env) for options in (["--resume"], ["--retry-failed"], [])]
        status = run([*CLI, "send", str(content_copy / "newsletters" / "2023-3.md"), "--status"], env)
        received = server.handler.received_by()
    states = ledger_states(state)
    unknown = {email for email, s in states.items() if s == "unknown"}
    lost = sum(1 for i in range(count) if received[person(i).email] != 1)
    unlisted = len(dropped - unknown) + sum(1 for email in dropped if email not in status.stdout)
    row("Campaigns", f"the server closes the connection after the final \".\" (message delivered, reply lost) "
        f"for {len(dropped)} of {count} recipients, then `--resume`, `--retry-failed` and a plain `send`",
        len(dropped), lost + unlisted,
        f"{len(unknown)} unknown and listed by --status, {sum(received.values()) - count} messages sent twice; "
        f"first run exit {first.returncode}, later runs {[r.returncode for r in again]}")  # fmt: skip
    assert lost == 0 and unlisted == 0 and unknown == dropped
    assert first.returncode == 1 and set(states.values()) == {"sent", "unknown"}


def test_reply_after_40_seconds(tmp_path: Path, content_copy: Path, row: Row) -> None:
    outcomes = {}
    with fault_server(Faults(pipelining=True, data_delay=40.0)) as server:
        for timeout in (60, 5):
            state = tmp_path / f"state{timeout}.sqlite3"
            populate(state, range(3))
            env = send_env(state, server.port, REALLABOR_LANG="en", REALLABOR_SMTP_DATA_TIMEOUT=str(timeout))
            started = time.monotonic()
            done = run(send_command(content_copy, "--connections", "3"), env)
            outcomes[timeout] = (done.returncode, sorted(ledger_states(state).values()), time.monotonic() - started)
        received = server.handler.received_by()
    wrong = int(outcomes[60][:2] != (0, ["sent"] * 3)) + int(outcomes[5][:2] != (1, ["unknown"] * 3))
    row("Campaigns", "the server replies to the final \".\" after 40 s (3 recipients), with "
        "REALLABOR_SMTP_DATA_TIMEOUT 60 and 5", 2, wrong,
        f"timeout 60 s: {outcomes[60][1].count('sent')} sent in {outcomes[60][2]:.0f} s; timeout 5 s: "
        f"{outcomes[5][1].count('unknown')} unknown, none resent, in {outcomes[5][2]:.0f} s")  # fmt: skip
    assert wrong == 0 and max(received.values()) == 2  # the same three people, once per state file


def test_two_sends_through_a_symlinked_state_path(tmp_path: Path, content_copy: Path, row: Row) -> None:
    count = 120
    state = tmp_path / "state.sqlite3"
    populate(state, range(count))
    link = tmp_path / "elsewhere" / "link.sqlite3"
    link.parent.mkdir()
    link.symlink_to(state)
    with fault_server(Faults(pipelining=True)) as server:
        env = send_env(state, server.port, REALLABOR_LANG="en")
        first = subprocess.Popen(send_command(content_copy, "--rate", "600/min"), env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)  # fmt: skip
        wait_for(lambda: len(server.handler.messages) >= 3)
        second = run(send_command(content_copy, "--resume", "--state", str(link)), env)
        first.communicate(timeout=120)
        received = server.handler.received_by()
    duplicates = sum(n - 1 for n in received.values())
    lost = sum(1 for i in range(count) if received[person(i).email] == 0)
    refused = second.returncode == 1 and "is running right now" in second.stderr
    row("Campaigns", f"a second `send --resume` of a running campaign through a symlink to its state file "
        f"({count} recipients)", 1, duplicates + lost + int(not refused),
        f"second send {'refused' if refused else 'NOT refused'}; {duplicates} duplicates")  # fmt: skip
    assert refused, second.stderr
    assert duplicates == 0 and lost == 0 and first.returncode == 0


def test_an_import_of_100000_rows_during_a_send(tmp_path: Path, content_copy: Path, row: Row) -> None:
    count, imported = 1000, 100_000
    state = tmp_path / "state.sqlite3"
    populate(state, range(count))
    csv = tmp_path / "import.csv"
    with csv.open("w", encoding="utf-8") as out:
        out.write("email;first_name;last_name\n")
        out.writelines(f"import{i:06d}@example.net;Vorname{i};Nachname{i}\n" for i in range(imported))
    with fault_server(Faults(pipelining=True)) as server:
        env = send_env(state, server.port, REALLABOR_LANG="en")
        importer = subprocess.Popen([*CLI, "recipients", "import", str(csv), "--list", "presse", "--by", "test"],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        time.sleep(1.0)  # the import is under way
        started = time.monotonic()
        sent = run(send_command(content_copy, "--connections", "2", "--rate", "1200/min"), env, timeout=900)
        send_seconds = time.monotonic() - started
        import_running = importer.poll() is None
        import_out, import_err = importer.communicate(timeout=1800)
        received = server.handler.received_by()
    locked = sum("database is locked" in text for text in (sent.stderr, import_err))
    lost = sum(1 for i in range(count) if received[person(i).email] != 1)
    row("Campaigns", f"`recipients import` of {imported:,} rows running while a send to {count:,} recipients runs",
        1, lost + locked + int(sent.returncode != 0) + int(importer.returncode != 0),
        f"send exit {sent.returncode} in {send_seconds:.0f} s (import still running at its end: {import_running}), "
        f"import exit {importer.returncode}; 'database is locked' {locked} times")  # fmt: skip
    assert locked == 0 and sent.returncode == 0, sent.stderr
    assert importer.returncode == 0, import_err
    assert lost == 0 and f"{imported:,} added" in import_out
