"""The organiser's mailbox under load and abuse: Dovecot and Maildirs through the real ``inbox`` command."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from reallabor_mail.db import connect
from reallabor_mail.recipients import store as recipients
from tests.mailbox import conftest as mailbox_fixtures
from tests.mailbox import samples
from tests.mailbox.conftest import PEOPLE, Dovecot, Invited, cli
from tests.mailbox.test_inbox import dump, maildir, registrations
from tests.reliability.conftest import Row

dovecot, invited = mailbox_fixtures.dovecot, mailbox_fixtures.invited  # the fixtures of tests/mailbox
HAMM, KIM, IVAN, ANKE = "info@hamm.example", "kim@bochum.example", "ivan@lviv.example", "brockmann@dortmund.example"


def run_inbox(invited: Invited, *args: str) -> str:
    result = cli("inbox", "--content", str(invited.content), *args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def subscribed(state: Path) -> int:
    conn = connect(state)
    count = sum(1 for _ in recipients.subscribers(conn, "reallabor"))
    conn.close()
    return count


def mixed(invited: Invited, count: int) -> list[bytes]:
    """``count`` messages, a fifth each: calendar answers, auto-replies, soft bounces, forged unsubscribes, people."""
    m = invited.messages
    reply = samples.gmail_reply(m[HAMM], "ACCEPTED")
    ooo = samples.out_of_office(m[ANKE])
    forged = samples.unsubscribe_mail(m[IVAN], sender=ANKE, token="eyJlIjoieCJ9.forged")
    out: list[bytes] = []
    for i in range(count):
        kind = i % 5
        if kind == 0:
            out.append(reply.replace(b"<000000000000a1b2c3061a9f7e2d@google.com>", f"<g{i}@google.com>".encode()))
        elif kind == 1:
            out.append(ooo.replace(b"<ooo-0001@", f"<ooo-{i}@".encode()))
        elif kind == 2:
            out.append(samples.postfix_dsn(m[KIM], status="4.2.2", message_id=f"<soft-{i}@mail.example>"))
        elif kind == 3:
            out.append(forged.replace(b"forged", f"forged{i}".encode()))
        else:
            out.append(samples.human(i))
    return out


def test_the_same_mailbox_processed_twice_changes_nothing(
    invited: Invited, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch, row: Row
) -> None:
    for key, value in dovecot.env().items():
        monkeypatch.setenv(key, value)
    dovecot.deliver(*mixed(invited, 200), samples.postfix_dsn(invited.messages[KIM]))
    first = run_inbox(invited)
    before, flags = dump(invited.state), dovecot.flags()
    second = run_inbox(invited)
    unchanged = dump(invited.state) == before and dovecot.flags().keys() == flags.keys()
    assert "201 new messages" in first and "0 new messages" in second and unchanged
    row("Mailbox", "the same IMAP mailbox (Dovecot, 201 mixed messages) processed twice", 2, 0 if unchanged else 1,
        "second run: 0 new, state rows and server flags identical")  # fmt: skip


def test_five_thousand_mixed_messages(invited: Invited, tmp_path: Path, row: Row) -> None:
    messages = mixed(invited, 5000)
    folder = maildir(tmp_path / "Maildir", *messages)
    started = time.monotonic()
    output = run_inbox(invited, "--maildir", str(folder))
    seconds = time.monotonic() - started
    expected = {"calendar answers": 1000, "auto-replies (ignored)": 1000, "bounces": 1000, "unsubscribe mails": 1000,
                "left for staff (unread in the mailbox)": 2000}  # fmt: skip
    counts = {label: re.search(rf"{re.escape(label)}: ([\d,]+)", output) for label in expected}
    found = {label: int(match.group(1).replace(",", "")) if match else -1 for label, match in counts.items()}
    wrong = sum(abs(found[k] - v) for k, v in expected.items())
    assert wrong == 0, output[:2000]
    assert subscribed(invited.state) == len(PEOPLE)  # the soft bounces are dated long ago: outside the 30 days
    row("Mailbox", "5,000 mixed messages from a Maildir (answers, auto-replies, soft bounces, forged unsubscribes, "
        "people)", 5000, wrong, f"{seconds:.1f} s ({5000 / seconds:,.0f} messages/s); each kind counted exactly")


def test_malformed_mime(invited: Invited, tmp_path: Path, row: Row) -> None:
    broken = [samples.malformed(), b"", b"\x00" * 100, b"Subject: no body", b"From: x\r\n\r\n--unterminated",
              b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n--", b"\xff\xfe" * 500,
              b"Content-Type: text/calendar; method=REPLY\r\n\r\nBEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nBEGIN:VEVENT",
              samples.postfix_dsn(invited.messages[KIM])[:700]]  # fmt: skip
    valid = samples.outlook_reply(invited.messages[ANKE])
    folder = maildir(tmp_path / "Maildir", *broken, valid)
    output = run_inbox(invited, "--maildir", str(folder))
    lost = 0 if f"{len(broken) + 1} new messages" in output and "accepted 1" in registrations(invited) else 1
    assert lost == 0, output
    row("Mailbox", f"{len(broken)} broken messages (MIME, calendar, truncated DSN, binary) before a valid answer",
        len(broken), lost, "the run went on; the answer after them was recorded; the broken ones left for staff")


def test_a_reply_for_an_unknown_uid(invited: Invited, tmp_path: Path, row: Row) -> None:
    uids = ["2031-01-01-gibt-es-nicht@auslandsgesellschaft.de", "2024-06-19-abschlussveranstaltung@evil.example",
            "@auslandsgesellschaft.de", "@", "no-at-sign", "%00%0a@auslandsgesellschaft.de"]  # fmt: skip
    replies = [samples.outlook_reply(invited.messages[ANKE], uid=uid) for uid in uids]
    output = run_inbox(invited, "--maildir", str(maildir(tmp_path / "Maildir", *replies)))
    conn = connect(invited.state)
    stored = conn.execute("SELECT count(*) FROM event_answers").fetchone()[0]
    conn.close()
    assert stored == 0 and f"left for staff (unread in the mailbox): {len(uids)}" in output, output
    row("Mailbox", "calendar replies for UIDs we never sent (other event, other domain, empty, garbage)", len(uids),
        stored, "no answer stored; each left for staff")  # fmt: skip


def test_a_dsn_for_an_address_on_no_list(invited: Invited, tmp_path: Path, row: Row) -> None:
    kims = invited.messages[KIM]
    foreign = [
        samples.postfix_dsn(kims).replace(b"kim@bochum.example", f"nobody{i}@nowhere.example".encode()).replace(
            str(kims["Message-ID"]).encode(), f"<foreign-{i}@elsewhere.example>".encode())
        for i in range(20)
    ]  # fmt: skip
    output = run_inbox(invited, "--maildir", str(maildir(tmp_path / "Maildir", *foreign)))
    suppressed = output.count("Suppressed")
    assert suppressed == 0 and subscribed(invited.state) == len(PEOPLE), output
    row("Mailbox", "permanent DSNs for addresses on no list, for messages we never sent", len(foreign), suppressed,
        "nobody suppressed; each left for staff")  # fmt: skip


def test_a_forged_mailto_unsubscribe(invited: Invited, tmp_path: Path, row: Row) -> None:
    ivans = invited.messages[IVAN]
    token = str(ivans["List-Unsubscribe"]).split(",")[0].strip(" <>").rsplit("/", 1)[1]
    payload, signature = token.split(".")
    tokens = [f"{payload}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}", f"{payload}A.{signature}",
              f"{payload}.", f".{signature}", f"{payload}={signature}", token.upper(), token[::-1]]  # fmt: skip
    forged = [samples.unsubscribe_mail(ivans, sender=person.email, token=t) for t in tokens for person in PEOPLE]
    output = run_inbox(invited, "--maildir", str(maildir(tmp_path / "Maildir", *forged)))
    lost = output.count("Unsubscribed")
    assert lost == 0 and subscribed(invited.state) == len(PEOPLE), output
    row("Mailbox", "mailto unsubscribes with altered tokens, from every subscriber's address", len(forged), lost,
        "nobody unsubscribed; each left for staff")  # fmt: skip
