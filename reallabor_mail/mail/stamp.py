"""Personal messages at mass-mailing speed: :func:`build_message` once, then stamp per recipient.

:func:`reallabor_mail.mail.message.build_message` is the one definition of what a message looks like; it
runs on the standard library's header and body machinery, which costs milliseconds per message. A
:class:`MessageStamp` calls it once per campaign, language and calendar method with placeholders for
everything personal (To, Message-ID, the unsubscribe link and mailto, the two bodies, the calendar object), and
fills those in per recipient:

- bodies: quoted-printable or base64, whichever is smaller for this campaign's text (base64 for
  Cyrillic). For quoted-printable the parts between the personal marks (greeting, unsubscribe link)
  are encoded once and joined with soft line breaks, so per recipient only the greeting and the link
  are encoded; base64 is re-encoded whole (C speed);
- the personal values are what :meth:`RenderedEmail.personalise` puts in (escaping included): it is
  asked on a probe holding only the marks, so the substitution rules live in one place;
- To via :func:`reallabor_mail.mail.message.set_header`; the calendar object in base64.

Tests check that a stamped message decodes to exactly what ``build_message`` produces.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from dataclasses import dataclass
from email.message import EmailMessage

from reallabor_mail.characters import header_safe
from reallabor_mail.content.models import Site
from reallabor_mail.errors import MessageError
from reallabor_mail.i18n.greetings import greeting
from reallabor_mail.mail.message import (
    MAIL_POLICY,
    CalendarPart,
    Campaign,
    build_message,
    mailbox,
    message_id,
    set_header,
)
from reallabor_mail.recipients.links import unsubscribe_mailto
from reallabor_mail.recipients.person import Recipient
from reallabor_mail.render.engine import GREETING_MARK, UNSUBSCRIBE_MARK, RenderedEmail

_TO = "rlm-recipient@rlm.invalid"
_URL = "https://rlm.invalid/RLMUNSUBSCRIBEURL"
_TEXT = "RLMTEXTBODYPART"
_HTML = "RLMHTMLBODYPART"
_ICS = "RLMICSCALENDARPART"  # 18 characters: its base64 has no padding and appears verbatim
_ICS_B64 = base64.b64encode(_ICS.encode()).decode()
_PLAIN_CTE = "Content-Transfer-Encoding: 7bit\r\n"
_MARKS = re.compile(f"({re.escape(GREETING_MARK)}|{re.escape(UNSUBSCRIBE_MARK)})")
_PROBE = RenderedEmail(
    "de", "", "", f"{GREETING_MARK}\x00{UNSUBSCRIBE_MARK}", f"{GREETING_MARK}\x00{UNSUBSCRIBE_MARK}", ""
)
MAX_LINE = 998
QP_LINE = 76


class StampError(MessageError):
    """The skeleton message did not have the expected shape (message.py changed)."""


def _base64_lines(data: bytes) -> bytes:
    """Base64 in lines of 76 characters with CRLF, as MIME wants it."""
    encoded = binascii.b2a_base64(data, newline=False)
    return b"\r\n".join([encoded[i : i + QP_LINE] for i in range(0, len(encoded), QP_LINE)]) + b"\r\n"


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def _fold_qp(line: bytes, width: int = QP_LINE) -> bytes:
    """A quoted-printable line cut by soft line breaks into lines of at most ``width``, never inside an =XX escape,
    and no line starting with a dot (written ``=2E``): SMTP would have to double it (RFC 5321 4.5.2), a
    copy of the whole message per recipient, and a German text has such lines (". Januar", CSS ".mj-…").

    b2a_qp leaves a line of 77 when it escapes trailing white space before a hard line break (found by the
    hypothesis test: 70 letters, five spaces, a line break).
    """
    out = []
    while True:
        if line.startswith(b"."):
            line = b"=2E" + line[1:]
        if len(line) <= width:
            break
        cut = width - 1
        escape = line.rfind(b"=", cut - 2, cut)
        cut = escape if escape != -1 else cut
        out.append(line[:cut] + b"=")
        line = line[cut:]
    out.append(line)
    return b"\r\n".join(out)


def _qp_piece(text: str) -> bytes:
    """Quoted-printable of a piece of a body; a piece that stops mid-line ends in a soft line break."""
    data = text.encode("utf-8")
    encoded = binascii.b2a_qp(data, istext=True)
    if b"\n" not in data:  # b2a_qp takes its line break from the data; without one it uses LF
        encoded = encoded.replace(b"\n", b"\r\n")
    encoded = b"\r\n".join(_fold_qp(line) for line in encoded.split(b"\r\n"))
    if not data or data.endswith(b"\r\n"):
        return encoded
    head, newline, last = encoded.rpartition(b"\r\n")
    return head + newline + _fold_qp(last, QP_LINE - 1) + b"=\r\n"  # room for the soft break's "="


@dataclass(frozen=True)
class BodyPart:
    """The text or HTML part of a stamp: its headers and the body cut at the personal marks.

    ``constant`` holds the text around the marks (``marks[i]`` comes after ``constant[i]``), for
    quoted-printable already encoded; base64 cannot be joined, so it is kept as text and encoded whole.
    """

    head: bytes  # Content-Transfer-Encoding and the part's other headers, up to the blank line
    cte: str
    constant: tuple[str, ...] | tuple[bytes, ...]
    marks: tuple[str, ...]

    @classmethod
    def of(cls, template: str, headers: str) -> BodyPart:
        body = _crlf(template if template.endswith("\n") else template + "\n")
        sample = _MARKS.sub("", body).encode("utf-8")
        qp = len(binascii.b2a_qp(sample, istext=True)) <= len(_base64_lines(sample))
        cte = "quoted-printable" if qp else "base64"
        parts = _MARKS.split(body)
        texts, marks = tuple(parts[0::2]), tuple(parts[1::2])
        constant = tuple(_qp_piece(text) for text in texts) if qp else texts
        return cls(f"Content-Transfer-Encoding: {cte}\r\n{headers}\r\n".encode("ascii"), cte, constant, marks)

    def encode(self, values: dict[str, str]) -> bytes:
        """This part for one recipient; ``values``: what replaces each mark."""
        filled = [values[mark] for mark in self.marks] + [""]
        if self.cte == "base64":
            body = "".join(text + value for text, value in zip(self.constant, filled, strict=True))  # type: ignore[operator]
            encoded = _base64_lines(body.encode("utf-8"))
        else:
            encoded = b"".join(piece + _qp_piece(value) for piece, value in zip(self.constant, filled, strict=True))  # type: ignore[operator]
        return self.head + encoded[:-2]  # the skeleton supplies the final line break


@dataclass(frozen=True)
class MessageStamp:
    """One campaign's message in one language (and calendar method), ready to be personalised."""

    site: Site
    rendered: RenderedEmail
    campaign: Campaign
    secret: bytes
    segments: tuple[str | bytes, ...]  # literal bytes and slot names, in order
    text: BodyPart
    html: BodyPart

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
            "mailto": re.escape(unsubscribe_mailto(site.sender.email, _URL)),
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
        expected = ["to", "message_id", "url", "mailto", "text", "html"] + (["ics", "ics"] if method else [])
        if sorted(found) != sorted(expected):
            raise StampError(f"message skeleton has slots {found}, expected {expected}")
        return cls(
            site,
            rendered,
            campaign,
            secret,
            tuple(segments),
            BodyPart.of(rendered.text, part_headers["text"]),
            BodyPart.of(rendered.html, part_headers["html"]),
        )

    def message(self, recipient: Recipient, unsubscribe_url: str, ics: str | None = None) -> tuple[str, bytes]:
        """The Message-ID and wire bytes of one recipient's message."""
        url = header_safe(unsubscribe_url, "unsubscribe URL")
        mailto = unsubscribe_mailto(self.site.sender.email, url)
        if len(url) + len("List-Unsubscribe: <>,") > MAX_LINE or len(mailto) + 3 > MAX_LINE:
            raise StampError(f"{url[:60]}…: the unsubscribe URL is too long for a header line")
        opening = greeting(recipient, self.rendered.language)
        html_marks, text_marks = (dict(zip((GREETING_MARK, UNSUBSCRIBE_MARK), side.split("\x00"), strict=True))
                                  for side in _PROBE.personalise(opening, url))  # fmt: skip
        msgid = message_id(self.campaign.key, recipient.email, self.secret, self.site.domain)
        holder = EmailMessage(policy=MAIL_POLICY)
        set_header(holder, "To", mailbox(recipient.display_name or None, recipient.email))
        values: dict[str, bytes] = {
            "to": MAIL_POLICY.fold_binary(*next(iter(holder.raw_items()))),
            "message_id": msgid.encode("ascii"),
            "url": url.encode("ascii"),
            "mailto": mailto.encode("ascii"),
            "text": self.text.encode(text_marks),
            "html": self.html.encode(html_marks),
        }
        if ics is not None:
            values["ics"] = _base64_lines(ics.encode("utf-8"))[:-2]
        return msgid, b"".join(values[s] if isinstance(s, str) else s for s in self.segments)
