"""The confirmation mails of the public form: limits that protect the addressee, and an outbox.

A sign-up never sends inside the request. It offers a mail to :class:`ConfirmationQueue`, which
checks two limits that protect third parties (whoever types an address into the form makes us mail
it): at most ``per_mailbox_per_day`` confirmation mails to one mailbox, and ``per_hour`` in all. A
mailbox is :attr:`~reallabor_mail.addresses.EmailAddress.mailbox` (``+tag`` removed, case-folded,
punycode domain, Gmail without dots), so ``Victim+1@Example.org`` and ``victim+2@example.org`` count
together. Each offer is recorded under a keyed hash of the mailbox (never the address) with its
outcome; the form answers the same either way, so nobody learns from it whether an address is known.

The hourly cap is no outage switch: a mail beyond it is not dropped but waits for the next clock hour
with room (``delayed``; staff get one warning per hour in the log), up to :data:`GIVE_UP_AFTER`.

Accepted offers go into the outbox table; :meth:`ConfirmationQueue.run` (a background task of the
server process) sends what is due through the one transport and retries later when the mail server
is down or answers 4xx. A row leaves the outbox once sent, refused for good, or no longer needed
(confirmed, erased or purged meanwhile; subscribed already). The tables are created by migrations 2
and 4 of :mod:`reallabor_mail.db`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage

from reallabor_mail.addresses import parse_address
from reallabor_mail.content.models import Language
from reallabor_mail.db import Connection, transaction, utc_stamp
from reallabor_mail.delivery.transport import DeliveryError, Transport, Verdict
from reallabor_mail.errors import ReallaborError
from reallabor_mail.i18n.messages import _
from reallabor_mail.mail.dkim import DkimSigner
from reallabor_mail.mail.message import envelope, sealed

ATTEMPTS_KEPT = dt.timedelta(days=30)
GIVE_UP_AFTER = dt.timedelta(days=2)  # a confirmation that could not leave in two days is not sent
RETRY_CAP = dt.timedelta(hours=1)
HOUR = dt.timedelta(hours=1)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignupLimits:
    """How many confirmation mails the form may cause (per mailbox and day, in all per hour), and how
    many sign-ups one client may send per hour (see :class:`~reallabor_mail.web.limits.ClientAllowance`)."""

    per_mailbox_per_day: int = 3
    per_hour: int = 100
    per_client_per_hour: int = 10


@dataclass(frozen=True)
class QueuedMail:
    """One confirmation mail waiting in the outbox."""

    id: int
    email: str
    lists: tuple[str, ...]
    language: Language
    attempts: int


# Builds the message for a queued mail at the moment it is sent; None: nothing to confirm any more.
Compose = Callable[[QueuedMail, dt.datetime], EmailMessage | None]


def forget(conn: Connection, email: str) -> None:
    """Drop confirmation mails still queued for an erased address (the attempts hold only keyed hashes)."""
    conn.execute("DELETE FROM web_confirmation_outbox WHERE email = ?", (email,))


def mailbox_key(email: str, secret: bytes) -> str:
    """The keyed hash of the mailbox an address reaches (see the module docstring)."""
    mailbox = parse_address(email).mailbox
    return hmac.new(secret, f"mailbox\x00{mailbox}".encode(), hashlib.sha256).hexdigest()[:32]


def retry_delay(attempts: int) -> dt.timedelta:
    """1, 2, 4 … minutes after each failed attempt, at most an hour."""
    return min(dt.timedelta(minutes=2 ** max(attempts - 1, 0)), RETRY_CAP)


class ConfirmationQueue:
    """The limits and the outbox of the double opt-in mails (see the module docstring)."""

    def __init__(
        self, conn: Connection, *, secret: bytes, limits: SignupLimits, clock: Callable[[], dt.datetime],
        transport: Transport, signer: DkimSigner | None, compose: Compose,
    ) -> None:  # fmt: skip
        self.conn = conn
        self.secret = secret
        self.limits = limits
        self.clock = clock
        self.transport = transport
        self.signer = signer
        self.compose = compose
        self.wakeup = asyncio.Event()
        self._warned: str | None = None  # the hour staff were last warned about the cap

    def offer(self, email: str, lists: Sequence[str], language: Language) -> str:
        """Queue a confirmation mail unless a limit forbids it; the outcome is recorded and returned:
        ``queued``, ``delayed`` (the hourly cap: it leaves in a later hour), ``mailbox_limit`` or
        ``global_limit`` (no hour with room before :data:`GIVE_UP_AFTER`)."""
        now = self.clock()
        moment = utc_stamp(now)
        key = mailbox_key(email, self.secret)
        due: dt.datetime | None = None
        with transaction(self.conn):
            self.conn.execute("DELETE FROM web_signup_attempts WHERE at < ?", (utc_stamp(now - ATTEMPTS_KEPT),))
            to_mailbox = self.conn.execute(
                "SELECT count(*) FROM web_signup_attempts WHERE mailbox = ? AND at > ? AND due IS NOT NULL",
                (key, utc_stamp(now - dt.timedelta(days=1))),
            ).fetchone()[0]
            if to_mailbox >= self.limits.per_mailbox_per_day:
                outcome = "mailbox_limit"
            else:
                due = self._hour_with_room(now)
                outcome = "global_limit" if due is None else "queued" if due == now else "delayed"
            if due is not None:
                self._enqueue(email, lists, language, due)
            self.conn.execute(
                "INSERT INTO web_signup_attempts (at, mailbox, outcome, due) VALUES (?, ?, ?, ?)",
                (moment, key, outcome, utc_stamp(due) if due else None),
            )
        if outcome == "queued":
            self.wakeup.set()
        elif outcome in ("delayed", "global_limit"):
            self._warn(now, outcome)
        return outcome

    def send_soon(self, email: str, lists: Sequence[str], language: Language) -> None:
        """Queue a mail that answers a confirmed person (a registration, a seat moved up): no limit holds
        it back, as nobody but the address's owner can cause it."""
        self._enqueue(email, lists, language, self.clock())
        self.wakeup.set()

    def _enqueue(self, email: str, lists: Sequence[str], language: Language, due: dt.datetime) -> None:
        self.conn.execute(
            "INSERT INTO web_confirmation_outbox (email, lists, language, queued_at, next_attempt)"
            " VALUES (?, ?, ?, ?, ?)",
            (email, ",".join(lists), language, utc_stamp(due), utc_stamp(due)),
        )

    def _hour_with_room(self, now: dt.datetime) -> dt.datetime | None:
        """When a mail may leave under the hourly cap: now, else the start of the next clock hour
        with room; None if none before :data:`GIVE_UP_AFTER`."""
        hour = now.replace(minute=0, second=0, microsecond=0)
        while hour < now + GIVE_UP_AFTER:
            used = self.conn.execute(
                "SELECT count(*) FROM web_signup_attempts WHERE due >= ? AND due < ?",
                (utc_stamp(hour), utc_stamp(hour + HOUR)),
            ).fetchone()[0]
            if used < self.limits.per_hour:
                return max(hour, now)
            hour += HOUR
        return None

    def _warn(self, now: dt.datetime, outcome: str) -> None:
        """One warning per clock hour for staff: someone may be flooding the form."""
        hour = utc_stamp(now.replace(minute=0, second=0, microsecond=0))
        if self._warned == hour:
            return
        self._warned = hour
        if outcome == "delayed":
            log.warning(_(
                "the sign-up form reached its cap of {count} confirmation mails an hour; further mails wait for "
                "a later hour (someone may be flooding the form; raise --confirmations-per-hour if not)",
                count=self.limits.per_hour,
            ))  # fmt: skip
        else:
            log.warning(_(
                "the sign-up form is booked up with confirmation mails for the next two days; new sign-ups get no "
                "mail until then (someone is flooding the form; put a rate limit in the proxy in front)"
            ))

    def due(self) -> list[QueuedMail]:
        rows = self.conn.execute(
            "SELECT id, email, lists, language, attempts FROM web_confirmation_outbox WHERE next_attempt <= ?"
            " ORDER BY id",
            (utc_stamp(self.clock()),),
        ).fetchall()
        return [QueuedMail(r["id"], r["email"], tuple(r["lists"].split(",")), r["language"], r["attempts"])
                for r in rows]  # fmt: skip

    async def deliver_due(self) -> int:
        """Send every mail that is due over one connection; returns how many were accepted."""
        due = self.due()
        if not due:
            return 0
        sent = 0
        connection = self.transport.connection()
        try:
            for mail in due:
                now = self.clock()
                message = self.compose(mail, now)
                if message is None:
                    self._drop(mail)
                    continue
                sender, recipient = envelope(message)
                try:
                    reply = await connection.deliver(sender, recipient, sealed(message, self.signer))
                except DeliveryError as exc:  # TLS or login: the server cannot be used now
                    self._retry(mail, now, str(exc))
                    continue
                if reply.verdict is Verdict.SENT:
                    self._drop(mail)
                    sent += 1
                elif reply.verdict is Verdict.RETRY:
                    self._retry(mail, now, str(reply))
                else:  # refused for good (no such mailbox, blocked): a confirmation is not worth a fight
                    self._drop(mail)
        finally:
            await connection.close()
        return sent

    def _drop(self, mail: QueuedMail) -> None:
        self.conn.execute("DELETE FROM web_confirmation_outbox WHERE id = ?", (mail.id,))

    def _retry(self, mail: QueuedMail, now: dt.datetime, error: str) -> None:
        queued = self.conn.execute("SELECT queued_at FROM web_confirmation_outbox WHERE id = ?", (mail.id,)).fetchone()
        if queued is None or queued[0] < utc_stamp(now - GIVE_UP_AFTER):
            self._drop(mail)
            return
        self.conn.execute(
            "UPDATE web_confirmation_outbox SET attempts = ?, next_attempt = ?, last_error = ? WHERE id = ?",
            (mail.attempts + 1, utc_stamp(now + retry_delay(mail.attempts + 1)), error[:500], mail.id),
        )

    async def run(self, poll_seconds: float) -> None:
        """The background task: send what is due, then sleep until woken by an offer or ``poll_seconds``."""
        while True:
            self.wakeup.clear()
            with contextlib.suppress(ReallaborError):  # e.g. the state file locked too long: again at the next poll
                await self.deliver_due()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), poll_seconds)
