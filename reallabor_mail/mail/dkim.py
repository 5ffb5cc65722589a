"""Optional DKIM signing of outgoing messages (dkimpy), configured from the environment (settings.py).

``REALLABOR_DKIM_KEY`` (path to a PEM private key), ``REALLABOR_DKIM_SELECTOR`` and
``REALLABOR_DKIM_DOMAIN``: all three or none. The domain signs in its IDNA 2008 form, the one the
addresses go out with (``straße.de`` as ``xn--strae-oqa.de``, never IDNA 2003's ``strasse.de``). The
signature covers the headers a receiver and the one-click unsubscribe rely on (RFC 8058 asks that
List-Unsubscribe and List-Unsubscribe-Post are signed), with relaxed canonicalisation for header and
body so that relays that re-fold lines do not break it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dkim

from reallabor_mail.addresses import InvalidAddress, ascii_domain
from reallabor_mail.errors import SettingsError
from reallabor_mail.i18n.messages import _, os_reason
from reallabor_mail.settings import ENV_DKIM_DOMAIN, ENV_DKIM_KEY, DkimSettings

SIGNED_HEADERS: tuple[bytes, ...] = (
    b"From", b"Reply-To", b"To", b"Subject", b"Date", b"Message-ID", b"List-Id",
    b"List-Unsubscribe", b"List-Unsubscribe-Post", b"MIME-Version", b"Content-Type", b"Content-Language",
)  # fmt: skip


class DkimError(SettingsError):
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
            raise DkimError(_("{setting}: the key cannot sign ({detail}); expected an RSA private key (PEM)",
                              setting=ENV_DKIM_KEY, detail=exc)) from None  # fmt: skip

    @classmethod
    def from_settings(cls, settings: DkimSettings | None) -> DkimSigner | None:
        """The signer the settings describe (reads the key file), None if DKIM is not configured."""
        if settings is None:
            return None
        try:
            domain = ascii_domain(settings.domain)
        except InvalidAddress as exc:
            raise DkimError(f"{ENV_DKIM_DOMAIN}: {exc.detail}") from None
        try:
            key = settings.key.read_bytes()
        except OSError as exc:
            message = _("{path}: cannot read the DKIM key ({reason})", path=settings.key, reason=os_reason(exc))
            raise DkimError(message) from None
        return cls(settings.selector, domain, key)

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
            raise DkimError(_("DKIM signing failed: {detail}", detail=exc)) from None
        return header + message

    def describe(self) -> str:
        return f"DKIM d={self.domain} s={self.selector}"
