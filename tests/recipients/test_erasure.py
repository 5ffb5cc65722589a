"""``recipients delete`` erases: no form of the address or the name is left in the state file, its
journal (``-wal``) or its index (``-shm``), also of people who were sent to, owed or in flight."""

from __future__ import annotations

import base64
import quopri
import sqlite3
from pathlib import Path

from reallabor_mail.db import connect
from reallabor_mail.delivery.ledger import Ledger
from reallabor_mail.recipients import store as recipients
from reallabor_mail.recipients.person import Recipient
from tests.test_recipients import NOW, SECRET, cli

ERASED = [  # typed as staff type them; each is in one state of the send
    ("Anna.Mueller@Straße.de", "Müller-Lüdenscheidt", "sent"),
    ("Boris.Kowal@Example.ORG", "Ковальчук", "pending"),
    ("Chris.Wagner@bücher.de", "Wagner-Xaver", "sending"),
    ("Dora.Retry@example.net", "Retrysson", "retry"),
]
KEPT = Recipient("kept@example.org", "Frau", None, "Käthe", "Bleibtreu")
CAMPAIGN = "newsletter:2023-3"


def forms(typed: str) -> set[bytes]:
    """Every form an address can take in a state file: as typed, case-folded, Unicode and punycode,
    and these in base64 (at each of the three alignments) and quoted-printable."""
    local, _, domain = typed.rpartition("@")
    texts = {typed, typed.casefold(), typed.lower(), f"{local}@{domain.encode('idna').decode()}",
             f"{local.lower()}@{domain.lower().encode('idna').decode()}",
             f"{local.lower()}@xn--strae-oqa.de", f"{local.lower()}@xn--bcher-kva.de"}  # fmt: skip
    found = {t.encode() for t in texts} | {t.encode("utf-16-le") for t in texts}
    for text in texts:
        found.add(quopri.encodestring(text.encode()).strip())
        for shift in range(3):  # the address inside a longer base64 text: the characters that stay the same
            encoded = base64.b64encode(b"\0" * shift + text.encode())
            found.add(encoded[4 if shift else 0 : -4])
    return {f for f in found if len(f) >= 8}


def state_with_sends(path: Path) -> Ledger:
    conn = connect(path)
    people = [Recipient(typed, "Herr", None, "Erwin", name) for typed, name, _ in ERASED] + [KEPT]
    for person in people:
        recipients.add_recipient(conn, person, "newsletter", status="subscribed", source="test", now=NOW)
    conn.execute(
        "INSERT INTO web_confirmation_outbox (email, lists, language, queued_at, next_attempt) VALUES (?, ?, ?, ?, ?)",
        ("boris.kowal@example.org", "reallabor", "uk", "2026-03-02T09:30:00Z", "2026-03-02T09:30:00Z"),
    )
    ledger = Ledger(conn, lambda: NOW)
    ledger.add(CAMPAIGN, [(p, "newsletter") for p in recipients.subscribers(conn, "newsletter")])
    states = {typed.lower().split("@")[0]: state for typed, _, state in ERASED}
    for entry in list(ledger.due(CAMPAIGN)):
        state = states.get(entry.email.split("@")[0], "sent")
        if state == "pending":
            continue
        ledger.apply([ledger.start_op(entry, f"<{entry.email}.id@auslandsgesellschaft.de>")])
        if state != "sending":
            reply = f"250 2.1.5 <{entry.email}> OK" if state == "sent" else f"451 4.2.0 <{entry.email}> later"
            ledger.apply([ledger.finish_op(entry, state, reply)])  # type: ignore[arg-type]
    return ledger


def test_erasure_leaves_no_form_of_the_address_in_the_file_or_its_journal(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    ledger = state_with_sends(state)
    before = ledger.summary(CAMPAIGN)
    assert (before["sent"], before["pending"], before["sending"], before["retry"]) == (2, 1, 1, 1)
    reader = connect(state)  # another program with the state file open (e.g. serve --public)
    reader.execute("SELECT count(*) FROM recipients").fetchone()

    for typed, _, _ in ERASED:
        done = cli(tmp_path, "recipients", "delete", typed, "--yes")
        assert done.returncode == 0, done.stderr

    after = Ledger(connect(state), lambda: NOW).summary(CAMPAIGN)
    assert (after["sent"], after["sending"], after["pending"], after["retry"]) == (2, 1, 0, 0)  # owed rows dropped
    rows = reader.execute("SELECT email, message_id, reply, recipient FROM send_ledger ORDER BY email").fetchall()
    stand_ins = [tuple(r) for r in rows if r[0].startswith("erased:")]
    assert len(stand_ins) == 2 and all(len(r[0]) == len("erased:") + 64 and r[1:] == (None,) * 3 for r in stand_ins)
    files = list(tmp_path.glob("s.db*"))
    assert {p.name for p in files} >= {"s.db"}
    raw = {p.name: p.read_bytes() for p in files}
    for typed, name, _ in ERASED:
        for form in forms(typed) | {name.encode(), name.encode("utf-16-le")}:
            for file_name, data in raw.items():
                assert form not in data, f"{form!r} is still in {file_name}"
    assert b"kept@example.org" in raw["s.db"] and b"Bleibtreu" in raw["s.db"]
    assert raw.get("s.db-wal", b"") == b""  # the journal was checkpointed and truncated
    for typed, _, _ in ERASED:
        assert recipients.is_suppressed(reader, typed, SECRET)


def test_erasure_says_so_when_a_reader_keeps_old_copies_in_the_journal(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    state_with_sends(state)
    reader = sqlite3.connect(state, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM recipients").fetchone()  # a read transaction left open
    done = cli(tmp_path, "recipients", "delete", ERASED[0][0], "--yes")
    assert done.returncode == 1
    assert "s.db-wal: another program is reading the state file" in done.stderr
    reader.execute("COMMIT")
    again = cli(tmp_path, "recipients", "delete", ERASED[0][0], "--yes")
    assert again.returncode == 0, again.stderr
    assert not any(f in (tmp_path / "s.db").read_bytes() for f in forms(ERASED[0][0]))
