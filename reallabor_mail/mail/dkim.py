"""Optional DKIM signing of outgoing messages (dkimpy), configured from the environment.

``REALLABOR_DKIM_KEY`` (path to a PEM private key), ``REALLABOR_DKIM_SELECTOR`` and
``REALLABOR_DKIM_DOMAIN``: all three or none. The signature covers the headers a receiver and the
one-click unsubscribe rely on (RFC 8058 asks that List-Unsubscribe and List-Unsubscribe-Post are
signed), with relaxed canonicalisation for header and body so that relays that re-fold lines do not
break it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dkim

from reallabor_mail.errors import ReallaborError

ENV_KEY = "REALLABOR_DKIM_KEY"
ENV_SELECTOR = "REALLABOR_DKIM_SELECTOR"
ENV_DOMAIN = "REALLABOR_DKIM_DOMAIN"

SIGNED_HEADERS: tuple[bytes, ...] = (
    b"From", b"Reply-To", b"To", b"Subject", b"Date", b"Message-ID", b"List-Id",
    b"List-Unsubscribe", b"List-Unsubscribe-Post", b"MIME-Version", b"Content-Type", b"Content-Language",
)  # fmt: skip


class DkimError(ReallaborError):
    """The DKIM settings are incomplete or the key cannot be used."""


@dataclass(frozen=True)
class DkimSigner:
    """Signs wire-format messages; the key never appears in its repr."""

    selector: str
    domain: str
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        try:
            dkim.sign(b"From: a@b.c\r\n\r\nkey check\r\n", self.selector.encode(), self.domain.encode(), self.key)
        except (dkim.DKIMException, ValueError, IndexError) as exc:
            raise DkimError(f"{ENV_KEY}: the key cannot sign ({exc}); expected an RSA private key (PEM)") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DkimSigner | None:
        """The signer the environment describes, None if DKIM is not configured."""
        env = os.environ if environ is None else environ
        values = {name: env.get(name, "").strip() for name in (ENV_KEY, ENV_SELECTOR, ENV_DOMAIN)}
        if not any(values.values()):
            return None
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise DkimError(f"DKIM needs {ENV_KEY}, {ENV_SELECTOR} and {ENV_DOMAIN}; missing: {', '.join(missing)}")
        path = Path(values[ENV_KEY])
        try:
            key = path.read_bytes()
        except OSError as exc:
            raise DkimError(f"{path}: cannot read the DKIM key ({exc.strerror})") from None
        try:
            domain = values[ENV_DOMAIN].encode("idna").decode("ascii")
        except UnicodeError:
            raise DkimError(f"{ENV_DOMAIN}: {values[ENV_DOMAIN]!r} is not a domain name") from None
        return cls(values[ENV_SELECTOR], domain, key)

    def sign(self, message: bytes) -> bytes:
        """The message with a ``DKIM-Signature`` header in front."""
        try:
            header: bytes = dkim.sign(
                message,
                self.selector.encode("ascii"),
                self.domain.encode("ascii"),
                self.key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=list(SIGNED_HEADERS),
            )
        except dkim.DKIMException as exc:
            raise DkimError(f"DKIM signing failed: {exc}") from None
        return header + message

    def describe(self) -> str:
        return f"DKIM d={self.domain} s={self.selector}"
