"""Personal messages at mass-mailing speed: :func:`build_message` once, then stamp per recipient.

:func:`reallabor_mail.message.build_message` is the one definition of what a message looks like; it
runs on the standard library's header and body machinery, which costs milliseconds per message. A
:class:`MessageStamp` calls it once per campaign, language and calendar method with placeholders for
everything personal (To, Message-ID, the unsubscribe link, the two bodies, the calendar object), and
then fills those in per recipient with C-speed encoders: quoted-printable or base64 for the bodies,
whichever was the smaller for this campaign, base64 for the calendar parts, and the standard
library's header code for the To header (message.set_header). Tests check that a stamped message decodes to exactly what
``build_message`` produces for the same recipient.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from dataclasses import dataclass
from email.message import EmailMessage

from .addressing import Recipient, greeting
from .message import MAIL_POLICY, CalendarPart, Campaign, _safe, build_message, mailbox, message_id, set_header
from .models import Site
from .render import RenderedEmail

_TO = "rlm-recipient@rlm.invalid"
_URL = "https://rlm.invalid/RLMUNSUBSCRIBEURL"
_TEXT = "RLMTEXTBODYPART"
_HTML = "RLMHTMLBODYPART"
_ICS = "RLMICSCALENDARPART"  # 18 characters: its base64 has no padding and appears verbatim
_ICS_B64 = base64.b64encode(_ICS.encode()).decode()
_PLAIN_CTE = "Content-Transfer-Encoding: 7bit\r\n"
MAX_LINE = 998


class StampError(ValueError):
    """The skeleton message did not have the expected shape (message.py changed)."""


def _base64_lines(data: bytes) -> bytes:
    """Base64 in lines of 76 characters with CRLF, as MIME wants it."""
    encoded = binascii.b2a_base64(data, newline=False)
    return b"\r\n".join([encoded[i : i + 76] for i in range(0, len(encoded), 76)]) + b"\r\n"


def _encode_body(data: bytes, cte: str) -> bytes:
    return _base64_lines(data) if cte == "base64" else binascii.b2a_qp(data, istext=True)


def _smaller_cte(sample: str) -> str:
    data = sample.replace("\n", "\r\n").encode("utf-8")
    return "base64" if len(_encode_body(data, "base64")) < len(_encode_body(data, "quoted-printable")) else (
        "quoted-printable"
    )


@dataclass(frozen=True)
class MessageStamp:
    """One campaign's message in one language (and calendar method), ready to be personalised."""

    site: Site
    rendered: RenderedEmail
    campaign: Campaign
    secret: bytes
    segments: tuple[str | bytes, ...]  # literal bytes and slot names, in order
    text_cte: str
    html_cte: str
    part_headers: dict[str, str]  # the headers of the text and HTML parts besides the transfer encoding

    @classmethod
    def prepare(
        cls, site: Site, rendered: RenderedEmail, campaign: Campaign, *, secret: bytes, method: str | None = None
    ) -> MessageStamp:
        """Build the skeleton with :func:`build_message` and cut it at the personal parts."""
        blank = dataclasses.replace(rendered, html=_HTML, text=_TEXT)
        calendar = CalendarPart(_ICS, method) if method else None
        skeleton = build_message(
            site, blank, Recipient(_TO), campaign, secret=secret, unsubscribe_url=_URL, calendar=calendar
        )
        raw = skeleton.as_bytes(policy=MAIL_POLICY).decode("ascii")
        placeholder_id = message_id(campaign.key, _TO, secret, site.domain)
        slots = {
            "to": re.escape(f"To: {_TO}\r\n"),
            "message_id": re.escape(placeholder_id),
            "url": re.escape(_URL),
            # a body part: its Content-Transfer-Encoding line, the part's other headers, the body
            "text": rf"{_PLAIN_CTE}((?:[^\r\n]+\r\n)*)\r\n{_TEXT}",
            "html": rf"{_PLAIN_CTE}((?:[^\r\n]+\r\n)*)\r\n{_HTML}",
            "ics": re.escape(_ICS_B64),
        }
        pattern = re.compile("|".join(f"(?P<{name}>{regex})" for name, regex in slots.items()))
        segments: list[str | bytes] = []
        part_headers: dict[str, str] = {}
        end = 0
        for match in pattern.finditer(raw):
            name = match.lastgroup or ""
            segments += [raw[end : match.start()].encode("ascii"), name]
            if name in ("text", "html"):
                part_headers[name] = match.group(match.re.groupindex[name] + 1)
            end = match.end()
        segments.append(raw[end:].encode("ascii"))
        found = [s for s in segments if isinstance(s, str)]
        expected = ["to", "message_id", "url", "text", "html"] + (["ics", "ics"] if method else [])
        if sorted(found) != sorted(expected):
            raise StampError(f"message skeleton has slots {found}, expected {expected}")
        sample_html, sample_text = rendered.personalise(greeting(Recipient(_TO), rendered.language), _URL)
        return cls(
            site, rendered, campaign, secret, tuple(segments),
            text_cte=_smaller_cte(sample_text), html_cte=_smaller_cte(sample_html), part_headers=part_headers,
        )

    def message(self, recipient: Recipient, unsubscribe_url: str, ics: str | None = None) -> tuple[str, bytes]:
        """The Message-ID and wire bytes of one recipient's message."""
        url = _safe(unsubscribe_url, "unsubscribe URL")
        if len(url) + len("List-Unsubscribe: <>,") > MAX_LINE:
            raise StampError(f"{url[:60]}…: the unsubscribe URL is too long for a header line")
        html_body, text_body = self.rendered.personalise(greeting(recipient, self.rendered.language), url)
        msgid = message_id(self.campaign.key, recipient.email, self.secret, self.site.domain)
        holder = EmailMessage(policy=MAIL_POLICY)
        set_header(holder, "To", mailbox(recipient.display_name or None, recipient.email))
        values: dict[str, bytes] = {
            "to": MAIL_POLICY.fold_binary(*next(iter(holder.raw_items()))),
            "message_id": msgid.encode("ascii"),
            "url": url.encode("ascii"),
            "text": self._part(text_body, self.text_cte, self.part_headers["text"]),
            "html": self._part(html_body, self.html_cte, self.part_headers["html"]),
        }
        if ics is not None:
            values["ics"] = _base64_lines(ics.encode("utf-8"))[:-2]
        return msgid, b"".join(values[s] if isinstance(s, str) else s for s in self.segments)

    @staticmethod
    def _part(body: str, cte: str, headers: str) -> bytes:
        body = body.replace("\r\n", "\n")
        data = (body if body.endswith("\n") else body + "\n").replace("\n", "\r\n").encode("utf-8")
        encoded = _encode_body(data, cte)
        if encoded.endswith(b"\r\n"):
            encoded = encoded[:-2]
        return f"Content-Transfer-Encoding: {cte}\r\n{headers}\r\n".encode("ascii") + encoded
