"""A real IMAP server (Dovecot, on a loopback port, throw-away config and Maildir) and a sent invitation to answer."""

from __future__ import annotations

import datetime as dt
import imaplib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reallabor_mail.cli.main import main
from reallabor_mail.db import DatabaseUrl, StateLocation, connect
from reallabor_mail.recipients import store as recipients
from tests.conftest import free_port
from tests.test_sending import PEOPLE as SENDING_PEOPLE

SECRET = "mailbox-secret-0123456789abcdef"
NOW = dt.datetime(2024, 6, 1, 9, 0, tzinfo=dt.UTC)
EVENT = "events/2024-06-19-abschlussveranstaltung.md"
IMAP_USER, IMAP_PASSWORD = "becker", "postfach-geheim"
PEOPLE = SENDING_PEOPLE[:6]  # the sending suite's subscribers, without the English-speaking one

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:{mail}/%u
first_valid_uid = 0
default_internal_user = {internal}
default_login_user = {login}
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_group} home={mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


@dataclass
class Dovecot:
    """A running Dovecot: where it listens, how to log in, and a way to put mail into the INBOX."""

    port: int
    root: Path
    mail: Path  # the Maildirs, one per user

    def env(self) -> dict[str, str]:
        return {
            "REALLABOR_IMAP_HOST": "127.0.0.1", "REALLABOR_IMAP_PORT": str(self.port),
            "REALLABOR_IMAP_SECURITY": "none", "REALLABOR_IMAP_USER": IMAP_USER,
            "REALLABOR_IMAP_PASSWORD": IMAP_PASSWORD,
        }  # fmt: skip

    def client(self) -> imaplib.IMAP4:
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        imap.login(IMAP_USER, IMAP_PASSWORD)
        imap.select("INBOX")
        return imap

    def deliver(self, *messages: bytes) -> None:
        imap = self.client()
        for data in messages:
            status, _ = imap.append("INBOX", None, None, data)
            assert status == "OK"
        imap.logout()

    def flags(self) -> dict[str, set[str]]:
        """Message-ID (or subject) → the flags the server keeps for it."""
        imap = self.client()
        _, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        found: dict[str, set[str]] = {}
        for item in data:
            if isinstance(item, tuple):
                head = item[0].decode()
                flags = set(head.split("FLAGS (", 1)[1].split(")", 1)[0].split())
                found[item[1].decode().split(":", 1)[-1].strip()] = flags
        imap.logout()
        return found


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[Dovecot]:
    """Debian's Dovecot (``dovecot-imapd``, installed by scripts/install.sh test) as ``dovecot -F`` on a loopback
    port, never the system service; the Maildir lives in tmp_path."""
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    assert Path(binary).exists(), "Dovecot is missing: apt-get install dovecot-imapd (scripts/install.sh test)"
    root = tmp_path / "dovecot"
    root.mkdir()
    me = pwd.getpwuid(os.geteuid()).pw_name
    root_user = os.geteuid() == 0  # Dovecot refuses mail as root: then the Debian package's own users
    mail_user = "dovecot" if root_user else me
    if root_user:  # pytest's tmp_path is closed to other users: the Maildir goes where `dovecot` may enter
        mail = Path(tempfile.mkdtemp(prefix="rlm-dovecot-"))
        shutil.chown(mail, mail_user, mail_user)
    else:
        mail = root / "mail"
        mail.mkdir()
    port = free_port()
    config = root / "dovecot.conf"
    config.write_text(CONFIG.format(
        root=root, mail=mail, port=port, password=IMAP_PASSWORD, mail_user=mail_user, mail_group=mail_user,
        internal="dovecot" if root_user else me, login="dovenull" if root_user else me,
    ))  # fmt: skip
    server = subprocess.Popen([binary, "-F", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            imaplib.IMAP4("127.0.0.1", port, timeout=5).logout()
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, (root / "dovecot.log").read_text()
            time.sleep(0.1)
    try:
        yield Dovecot(port, root, mail)
    finally:
        server.terminate()
        server.wait(10)
        if root_user:
            shutil.rmtree(mail, ignore_errors=True)


@dataclass
class Invited:
    """An event invitation sent to :data:`PEOPLE` into an outbox Maildir; the messages by recipient."""

    state: StateLocation
    content: Path
    messages: dict[str, EmailMessage]

    @property
    def event(self) -> Path:
        return self.content / EVENT


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=True)


@pytest.fixture
def invited(tmp_path: Path, content_copy: Path, monkeypatch: pytest.MonkeyPatch, state: StateLocation) -> Invited:
    """On each back end (the ``state`` fixture): a SQLite file, or a PostgreSQL database."""
    for key in [k for k in os.environ if k.startswith(("REALLABOR_SMTP_", "REALLABOR_IMAP_", "REALLABOR_DKIM_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("REALLABOR_SECRET", SECRET)
    if isinstance(state, DatabaseUrl):
        monkeypatch.setenv("REALLABOR_DATABASE_URL", state.url)
    else:
        monkeypatch.delenv("REALLABOR_DATABASE_URL", raising=False)
        monkeypatch.setenv("REALLABOR_STATE", str(state))
    conn = connect(state)
    for person in PEOPLE:
        for name in ("newsletter", "reallabor"):
            recipients.add_recipient(conn, person, name, status="subscribed", source="test", now=NOW)
    conn.close()
    outbox = tmp_path / "outbox"
    result = cli("send", str(content_copy / EVENT), "--outbox", str(outbox), "--yes")
    assert result.exit_code == 0, result.output
    messages: dict[str, EmailMessage] = {}
    for file in sorted((outbox / "new").iterdir()):
        msg = message_from_bytes(file.read_bytes(), policy=policy.default)
        messages[str(msg["To"].addresses[0].addr_spec)] = msg  # type: ignore[assignment]
    assert len(messages) == len(PEOPLE)
    return Invited(state, content_copy, messages)
