"""Where ``inbox`` reads the organiser's mail: an IMAP folder or a Maildir. Reads; changes only flags.

IMAP through the standard library's :mod:`imaplib`, not imapclient: ``inbox`` needs five commands (LOGIN,
SELECT, UID SEARCH, UID FETCH ``BODY.PEEK[]``, UID STORE), which imaplib does with the TLS context we
give it; a dependency would buy parsing we do not need. ``BODY.PEEK[]`` fetches a message without
setting ``\\Seen``; only messages that were filed are flagged ``\\Seen`` afterwards (:meth:`filed`), so
whatever is left for a human stays unread and in its folder. The folder's UIDVALIDITY and the highest
UID read are kept (table ``imap_watermarks``) so a run fetches only what is new; the per-message key in
:mod:`reallabor_mail.mailbox.filing` makes a second reading harmless anyway.

A Maildir (``--maildir DIR``, where Postfix or Dovecot deliver) is read as it is: ``new/`` and ``cur/``,
in file-name order, nothing moved, renamed or flagged.
"""

from __future__ import annotations

import contextlib
import imaplib
import mailbox as stdlib_mailbox
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from reallabor_mail.db import Connection, transaction
from reallabor_mail.errors import ReallaborError
from reallabor_mail.i18n.messages import server_shown
from reallabor_mail.settings import ImapSettings

FETCH_BATCH = 200  # messages per UID FETCH
TIMEOUT = 60.0  # seconds a server may stay silent


class MailboxError(ReallaborError):
    """The mailbox cannot be read: the server refuses, the login is wrong, the folder or Maildir is missing."""


@dataclass(frozen=True)
class RawMessage:
    """One message as it lies in the mailbox, and where (for staff and for :meth:`Source.filed`)."""

    location: str
    data: bytes


class Source(Protocol):
    """A mailbox to read: every message not read before, then a note of those that were filed."""

    def describe(self) -> str: ...

    def messages(self) -> Iterator[RawMessage]: ...

    def filed(self, message: RawMessage) -> None: ...

    def close(self) -> None: ...


class MaildirSource:
    """A Maildir folder, read only."""

    def __init__(self, path: Path) -> None:
        if not (path / "cur").is_dir() or not (path / "new").is_dir():
            raise MailboxError(f"{path}: not a Maildir (it needs the folders cur/ and new/); pass the Maildir folder")
        self.path = path
        self.maildir = stdlib_mailbox.Maildir(path, factory=None, create=False)

    def describe(self) -> str:
        return f"Maildir {self.path}"

    def messages(self) -> Iterator[RawMessage]:
        for key in sorted(self.maildir.keys()):
            try:
                data = self.maildir.get_bytes(key)
            except (OSError, KeyError):  # taken away by a mail client meanwhile
                continue
            yield RawMessage(f"{self.path}/{key}", data)

    def filed(self, message: RawMessage) -> None:
        """Nothing: a Maildir is left as it is (its owner's mail client keeps its flags)."""

    def close(self) -> None:
        self.maildir.close()


_UID = re.compile(rb"\bUID (\d+)")


class ImapSource:
    """An IMAP folder (``REALLABOR_IMAP_*``): TLS verified against the system's certificates unless the
    server is on this machine and the settings say ``none``."""

    def __init__(
        self, settings: ImapSettings, conn: Connection, *, tls_context: ssl.SSLContext | None = None
    ) -> None:
        self.settings, self.conn = settings, conn
        self.name = f"{settings.user}@{settings.host}:{settings.port}/{settings.folder}"
        context = tls_context or ssl.create_default_context()
        prefix = settings.PREFIX
        try:
            if settings.security == "tls":
                self.imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    settings.host, settings.port, ssl_context=context, timeout=TIMEOUT
                )
            else:
                self.imap = imaplib.IMAP4(settings.host, settings.port, timeout=TIMEOUT)
                if settings.security == "starttls":
                    self.imap.starttls(context)
        except ssl.SSLError as exc:
            raise MailboxError(
                f"{prefix}HOST: {settings.host}:{settings.port}: TLS failed ({exc.reason or exc}); check "
                f"{prefix}PORT and {prefix}SECURITY (tls on 993, starttls on 143)"
            ) from None
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(f"{prefix}HOST: cannot reach {settings.host}:{settings.port}: {exc}") from None
        password = settings.password.reveal() if settings.password else ""
        try:
            self.imap.login(settings.user or "", password)
        except imaplib.IMAP4.error:
            self.imap.shutdown()
            raise MailboxError(
                f"{prefix}USER: the server refused the login of {settings.user}; "
                f"check {prefix}USER and {prefix}PASSWORD"
            ) from None
        status, _ = self.imap.select(_quoted(settings.folder))
        if status != "OK":
            self.close()
            raise MailboxError(f"{prefix}FOLDER: the server has no folder {settings.folder!r} for this user")
        _, values = self.imap.response("UIDVALIDITY")
        self.uidvalidity = int(values[0]) if values and values[0] else 0

    def describe(self) -> str:
        return f"IMAP {server_shown(self.settings)}"

    def _last_uid(self) -> int:
        row = self.conn.execute(
            "SELECT uidvalidity, last_uid FROM imap_watermarks WHERE mailbox = ?", (self.name,)
        ).fetchone()
        if row is None or int(row[0]) != self.uidvalidity:  # a new folder under the same name: read it all
            return 0
        return int(row[1])

    def messages(self) -> Iterator[RawMessage]:
        last = self._last_uid()
        status, data = self.imap.uid("SEARCH", f"UID {last + 1}:*")
        if status != "OK":
            raise MailboxError(f"{self.describe()}: the server refused to list the folder: {data!r}")
        uids = sorted(int(u) for u in (data[0] or b"").split() if int(u) > last)
        for start in range(0, len(uids), FETCH_BATCH):
            batch = uids[start : start + FETCH_BATCH]
            status, items = self.imap.uid("FETCH", ",".join(map(str, batch)), "(UID BODY.PEEK[])")
            if status != "OK":
                raise MailboxError(f"{self.describe()}: the server refused to hand out messages: {items!r}")
            for item in items:
                if not isinstance(item, tuple):
                    continue
                found = _UID.search(item[0])
                if found is None:
                    continue
                uid = int(found.group(1))
                yield RawMessage(f"{self.settings.folder} UID {uid}", item[1])
                self._advance(uid)

    def _advance(self, uid: int) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO imap_watermarks (mailbox, uidvalidity, last_uid) VALUES (?, ?, ?) "
                "ON CONFLICT (mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity, "
                "last_uid = CASE WHEN imap_watermarks.uidvalidity = excluded.uidvalidity "
                "AND imap_watermarks.last_uid > excluded.last_uid THEN imap_watermarks.last_uid "
                "ELSE excluded.last_uid END",
                (self.name, self.uidvalidity, uid),
            )

    def filed(self, message: RawMessage) -> None:
        """A filed message is marked read (``\\Seen``); it stays in its folder."""
        uid = message.location.rpartition(" UID ")[2]
        self.imap.uid("STORE", uid, "+FLAGS.SILENT", "(\\Seen)")

    def close(self) -> None:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            self.imap.logout()


def _quoted(folder: str) -> str:
    """An IMAP quoted string (the folder name was checked for quotes and line breaks by the settings)."""
    return f'"{folder}"'
