"""Signed, optionally expiring tokens for the links in mails (confirm, unsubscribe).

A token is ``<payload>.<signature>``, both base64url without padding, and that is its only spelling:
padding, the standard alphabet's ``+``/``/``, stray characters or unused trailing bits are refused, so
one valid token is one string (nothing downstream can tell two spellings of it apart). The payload is compact JSON;
the signature is HMAC-SHA256 over the purpose and the payload, so a confirmation token can never be
used as an unsubscribe token or the other way round. Tokens are not encrypted: they carry nothing
the recipient does not already know (their own address and a list name).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Collection

from reallabor_mail.errors import ReallaborError, SettingsError
from reallabor_mail.i18n.messages import _
from reallabor_mail.settings import ENV_SECRET, Settings

MIN_SECRET_LENGTH = 16


class SecretMissing(SettingsError):
    """``REALLABOR_SECRET`` is not set or too short."""


class InvalidToken(ReallaborError):
    """A token was forged, tampered with, made for another purpose, or has expired."""


def load_secret(settings: Settings) -> bytes:
    """The signing secret from ``$REALLABOR_SECRET``; without it no link can be made or checked."""
    value = settings.secret.reveal() if settings.secret else ""
    if len(value) < MIN_SECRET_LENGTH:
        how = f"export {ENV_SECRET}=\"$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')\""
        if not value:
            problem = _("{setting} is not set.", setting=ENV_SECRET)
        else:
            problem = _("{setting} is shorter than {length} characters.", setting=ENV_SECRET, length=MIN_SECRET_LENGTH)
        raise SecretMissing(problem + " " + _(
            "Links in mails and the suppression list are signed with it; create one once and keep it: {command} "
            "(changing it later invalidates every link already sent)", command=how,
        ))  # fmt: skip
    return value.encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Decode base64url without padding; ValueError for any other spelling of the same bytes."""
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not the canonical spelling")
    return data


def _mac(secret: bytes, purpose: str, payload: str) -> bytes:
    return hmac.new(secret, f"{purpose}\x00{payload}".encode("ascii"), hashlib.sha256).digest()


def make_token(
    secret: bytes, purpose: str, fields: dict[str, str], *, expires: dt.datetime | None = None
) -> str:
    """Sign ``fields`` for ``purpose``; with ``expires`` the token stops working at that moment."""
    data: dict[str, str | int] = dict(fields)
    if expires is not None:
        data["x"] = int(expires.timestamp())
    payload = _b64(json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8"))
    return f"{payload}.{_b64(_mac(secret, purpose, payload))}"


def read_token(
    secret: bytes, purpose: str, token: str, *, now: dt.datetime, fields: Collection[str] = ()
) -> dict[str, str]:
    """The fields of a valid token that has every one of ``fields``; :class:`InvalidToken` for anything
    forged, altered, expired or without them."""
    payload, dot, signature = token.partition(".")
    try:
        if not dot or not payload.isascii() or not signature.isascii():
            raise ValueError
        if not hmac.compare_digest(_unb64(signature), _mac(secret, purpose, payload)):
            raise InvalidToken(_("the link is not valid: its signature does not match (altered or forged)"))
        data = json.loads(_unb64(payload).decode("utf-8"))  # json.loads would also take UTF-16 and -32
    except (ValueError, binascii.Error, RecursionError):  # RecursionError: nesting deeper than json can read
        raise InvalidToken(_("the link is not valid: it is incomplete or garbled")) from None
    expires = data.pop("x", None) if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or not all(name in data for name in fields)
        or not all(isinstance(value, str) for value in data.values())
        or not (expires is None or (isinstance(expires, int) and not isinstance(expires, bool)))
    ):
        raise InvalidToken(_("the link is not valid: unexpected content"))
    if expires is not None and now.timestamp() >= expires:
        raise InvalidToken(_("the link has expired"))
    return {str(k): str(v) for k, v in data.items()}
