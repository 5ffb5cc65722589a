"""Everything the environment configures, read in one place and once: by the CLI, which passes it down.

No other module reads ``os.environ`` (a test checks this), so a library function's behaviour depends
only on its arguments. ``REALLABOR_STATE``, ``REALLABOR_SECRET``, ``REALLABOR_LANG`` and the locale
(``LC_ALL``/``LC_MESSAGES``/``LANG``) are read as they are; the mail server (``REALLABOR_SMTP_*``), the
mailbox (``REALLABOR_IMAP_*``) and DKIM (``REALLABOR_DKIM_*``) settings are checked only when a command
asks for them, so ``build`` does not fail on a typo in a setting only ``send`` uses.

A small typed dataclass reader rather than pydantic-settings: eight variables do not need a new
dependency, and our own reader gives errors in the house format (``VARIABLE: what is wrong; what to
do``) instead of pydantic's validation report. Secrets are :class:`Secret`, whose repr hides them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from reallabor_mail.errors import SettingsError

Security = Literal["starttls", "tls", "none"]
SECURITIES: tuple[Security, ...] = ("starttls", "tls", "none")
DEFAULT_PORTS: dict[Security, int] = {"starttls": 587, "tls": 465, "none": 25}
DATA_TIMEOUT = 600.0  # RFC 5321 4.5.3.2.6: a client waits 10 minutes for the reply to the message's final "."
ENV_STATE = "REALLABOR_STATE"
ENV_DATABASE_URL = "REALLABOR_DATABASE_URL"  # postgresql://…: a shared state server instead of the file
ENV_SECRET = "REALLABOR_SECRET"
ENV_LANG = "REALLABOR_LANG"
ENV_PREFIX = "REALLABOR_SMTP_"
ENV_IMAP_PREFIX = "REALLABOR_IMAP_"
ENV_DKIM_KEY = "REALLABOR_DKIM_KEY"
ENV_DKIM_SELECTOR = "REALLABOR_DKIM_SELECTOR"
ENV_DKIM_DOMAIN = "REALLABOR_DKIM_DOMAIN"
# The public server's abuse caps (``serve --public``; an option of the same name wins): positive whole numbers.
ENV_SERVER_LIMITS = (
    "REALLABOR_CONFIRMATIONS_PER_MAILBOX", "REALLABOR_CONFIRMATIONS_PER_HOUR", "REALLABOR_SIGN_UPS_PER_CLIENT",
    "REALLABOR_CONNECTIONS_PER_CLIENT",
)  # fmt: skip
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")


class Secret:
    """A string that never shows itself in repr, str, logs or tracebacks; ``reveal()`` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address (127.0.0.0/8, ::1)."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerSettings:
    """A mail server we log in to (SMTP to send, IMAP to read): TLS unless the server is on this machine.

    The rules are the same for both, so they live here once; a subclass names its variables' prefix
    and its default ports and security.
    """

    host: str
    port: int
    security: Security = "starttls"
    user: str | None = None
    password: Secret | None = None

    PREFIX: ClassVar[str]
    PORTS: ClassVar[dict[Security, int]]
    DEFAULT_SECURITY: ClassVar[Security]

    def __post_init__(self) -> None:
        prefix = self.PREFIX
        if self.security not in SECURITIES:
            raise SettingsError(f"{prefix}SECURITY: {self.security!r} is not one of {', '.join(SECURITIES)}")
        if self.security == "none" and not is_loopback(self.host):
            raise SettingsError(
                f"{prefix}SECURITY: 'none' (no encryption) is allowed only for a server on this machine "
                f"(127.0.0.1, ::1, localhost), not {self.host}; use 'starttls' or 'tls'"
            )
        if (self.user is None) != (self.password is None):
            raise SettingsError(f"{prefix}USER and {prefix}PASSWORD must be set together")

    @classmethod
    def _read(cls, environ: Mapping[str, str]) -> dict[str, Any] | None:
        """``<PREFIX>HOST``, ``_PORT``, ``_SECURITY``, ``_USER`` and ``_PASSWORD``; None without a host."""
        prefix = cls.PREFIX
        host = environ.get(f"{prefix}HOST", "").strip()
        if not host:
            return None
        text = environ.get(f"{prefix}SECURITY", "").strip().lower() or cls.DEFAULT_SECURITY
        security = next((s for s in SECURITIES if s == text), None)
        if security is None:
            raise SettingsError(f"{prefix}SECURITY: {text!r} is not one of {', '.join(SECURITIES)}")
        port_text = environ.get(f"{prefix}PORT", "").strip()
        try:
            port = int(port_text) if port_text else cls.PORTS[security]
        except ValueError:
            raise SettingsError(f"{prefix}PORT: {port_text!r} is not a port number") from None
        user = environ.get(f"{prefix}USER") or None
        password = environ.get(f"{prefix}PASSWORD")
        return {"host": host, "port": port, "security": security, "user": user,
                "password": Secret(password) if password else None}  # fmt: skip


@dataclass(frozen=True)
class SmtpSettings(ServerSettings):
    """Where and how to reach the mail server that sends (contract §3), ``REALLABOR_SMTP_*``."""

    data_timeout: float = DATA_TIMEOUT  # REALLABOR_SMTP_DATA_TIMEOUT: seconds to wait for the reply to a message

    PREFIX: ClassVar[str] = ENV_PREFIX
    PORTS: ClassVar[dict[Security, int]] = DEFAULT_PORTS
    DEFAULT_SECURITY: ClassVar[Security] = "starttls"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SmtpSettings | None:
        """Settings from the ``REALLABOR_SMTP_*`` entries of ``environ``; None when no host is configured."""
        values = cls._read(environ)
        if values is None:
            return None
        text = environ.get(f"{cls.PREFIX}DATA_TIMEOUT", "").strip()
        try:
            data_timeout = float(text) if text else DATA_TIMEOUT
        except ValueError:
            data_timeout = -1.0
        if not 1 <= data_timeout <= 3600:
            raise SettingsError(
                f"{cls.PREFIX}DATA_TIMEOUT: {text!r} is not a number of seconds between 1 and 3600 "
                f"(default {DATA_TIMEOUT:.0f}, as RFC 5321 asks)"
            )
        return cls(**values, data_timeout=data_timeout)


@dataclass(frozen=True)
class ImapSettings(ServerSettings):
    """The organiser's mailbox that ``inbox`` reads, ``REALLABOR_IMAP_*``: implicit TLS (993) by default
    (RFC 8314), STARTTLS on request, ``none`` only on this machine; a user and password are needed."""

    security: Security = "tls"
    folder: str = "INBOX"

    PREFIX: ClassVar[str] = ENV_IMAP_PREFIX
    PORTS: ClassVar[dict[Security, int]] = {"starttls": 143, "tls": 993, "none": 143}
    DEFAULT_SECURITY: ClassVar[Security] = "tls"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.user is None:
            raise SettingsError(f"{self.PREFIX}USER and {self.PREFIX}PASSWORD: the mailbox needs a login; set both")
        if not self.folder or any(c in self.folder for c in '\r\n"\\'):
            raise SettingsError(f"{self.PREFIX}FOLDER: {self.folder!r} is not a folder name (e.g. INBOX)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ImapSettings | None:
        """Settings from the ``REALLABOR_IMAP_*`` entries of ``environ``; None when no host is configured."""
        values = cls._read(environ)
        if values is None:
            return None
        return cls(**values, folder=environ.get(f"{cls.PREFIX}FOLDER", "").strip() or "INBOX")


@dataclass(frozen=True)
class DkimSettings:
    """Where the DKIM key is and what it signs as; the key itself is read by :mod:`reallabor_mail.mail.dkim`."""

    key: Path
    selector: str
    domain: str  # as typed; mail/dkim.py signs with its IDNA 2008 form (addresses.ascii_domain)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DkimSettings | None:
        """``REALLABOR_DKIM_KEY``, ``_SELECTOR`` and ``_DOMAIN``: all three or none (None)."""
        names = (ENV_DKIM_KEY, ENV_DKIM_SELECTOR, ENV_DKIM_DOMAIN)
        values = {name: environ.get(name, "").strip() for name in names}
        if not any(values.values()):
            return None
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise SettingsError(f"DKIM needs {', '.join(names[:2])} and {names[2]}; missing: {', '.join(missing)}")
        return cls(Path(values[ENV_DKIM_KEY]), values[ENV_DKIM_SELECTOR], values[ENV_DKIM_DOMAIN])


def _locale(environ: Mapping[str, str]) -> str | None:
    """The first locale variable that is set, as POSIX looks them up (it decides, even if it is ``C``)."""
    return next((environ[name].strip() for name in LOCALE_VARIABLES if environ.get(name, "").strip()), None)


@dataclass(frozen=True)
class Settings:
    """The environment of one run, typed. Build it with :meth:`from_environ`; tests pass a mapping."""

    state: Path | None = None
    database_url: str | None = field(default=None, repr=False)  # REALLABOR_DATABASE_URL (may hold a password)
    secret: Secret | None = None
    language: str | None = None  # REALLABOR_LANG: the staff-facing language
    locale: str | None = None  # LC_ALL, else LC_MESSAGES, else LANG
    _mail: Mapping[str, str] = field(default_factory=dict, repr=False)  # REALLABOR_SMTP_*, _IMAP_*, _DKIM_*
    _limits: Mapping[str, str] = field(default_factory=dict, repr=False)  # ENV_SERVER_LIMITS as set
    # Tests only (never from the environment): the clock commands read instead of the system's.
    clock: Callable[[], dt.datetime] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the process environment (or ``environ``) once."""
        env = os.environ if environ is None else environ
        state = env.get(ENV_STATE, "").strip()
        secret = env.get(ENV_SECRET, "")
        return cls(
            state=Path(state) if state else None,
            database_url=env.get(ENV_DATABASE_URL, "").strip() or None,
            secret=Secret(secret) if secret else None,
            language=env.get(ENV_LANG, "").strip() or None,
            locale=_locale(env),
            _mail={k: v for k, v in env.items() if k.startswith((ENV_PREFIX, ENV_IMAP_PREFIX, "REALLABOR_DKIM_"))},
            _limits={k: env[k].strip() for k in ENV_SERVER_LIMITS if env.get(k, "").strip()},
        )

    def now(self) -> dt.datetime:
        """The current moment (UTC), from the test clock if one is set."""
        return self.clock() if self.clock is not None else dt.datetime.now(dt.UTC)

    def smtp(self) -> SmtpSettings | None:
        """The mail server, None when ``REALLABOR_SMTP_HOST`` is not set; :class:`SettingsError` if broken."""
        return SmtpSettings.from_env(self._mail)

    def imap(self) -> ImapSettings | None:
        """The organiser's mailbox, None when ``REALLABOR_IMAP_HOST`` is not set; :class:`SettingsError` if broken."""
        return ImapSettings.from_env(self._mail)

    def server_limit(self, name: str) -> int | None:
        """One of :data:`ENV_SERVER_LIMITS`, None when unset; :class:`SettingsError` unless a positive number."""
        value = self._limits.get(name)
        if value is None:
            return None
        if not value.isdigit() or int(value) < 1:
            raise SettingsError(f"{name}: {value!r} is not a positive whole number; set e.g. {name}=10 or unset it")
        return int(value)

    def dkim(self) -> DkimSettings | None:
        """DKIM signing, None when not configured; :class:`SettingsError` if incomplete."""
        return DkimSettings.from_env(self._mail)
