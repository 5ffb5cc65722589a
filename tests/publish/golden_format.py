"""The readable form of a built file that the golden files hold: what a reviewer reads in a diff.

HTML is written one tag per line, indented by nesting, attributes in document order, text on lines of its
own (a change to one paragraph shows as one changed line, not as a 40 KB line). A message (``.eml``) is
written as its decoded headers and then each part decoded: text as text, HTML as above, calendar data as
text, anything else as its type, size and SHA-256. Text files stay as they are. The projection is exact
for everything a recipient sees; it drops only whitespace between tags, which HTML renders as nothing.
"""

from __future__ import annotations

import hashlib
from email import message_from_bytes, policy
from email.message import EmailMessage
from html import escape
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
RAW_TEXT = {"style", "script"}


class _Pretty(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.lines: list[str] = []
        self.depth = 0
        self.raw: str | None = None

    def _emit(self, text: str) -> None:
        self.lines.append("  " * self.depth + text)

    def handle_decl(self, decl: str) -> None:
        self._emit(f"<!{decl}>")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        shown = "".join(f" {k}" if v is None else f' {k}="{escape(v)}"' for k, v in attrs)
        self._emit(f"<{tag}{shown}>")
        if tag not in VOID:
            self.depth += 1
        if tag in RAW_TEXT:
            self.raw = tag

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        shown = "".join(f" {k}" if v is None else f' {k}="{escape(v)}"' for k, v in attrs)
        self._emit(f"<{tag}{shown} />")

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        self.raw = None
        self.depth = max(0, self.depth - 1)
        self._emit(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if self.raw is not None:
            for line in data.strip("\n").splitlines():
                if line.strip():
                    self._emit(line.strip())
            return
        text = " ".join(data.split())
        if text:
            self._emit(text)

    def handle_entityref(self, name: str) -> None:
        self._emit(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self._emit(f"&#{name};")

    def handle_comment(self, data: str) -> None:
        self._emit(f"<!--{' '.join(data.split())}-->")


def pretty_html(html: str) -> str:
    """One tag or text run per line, indented by nesting."""
    parser = _Pretty()
    parser.feed(html)
    parser.close()
    return "\n".join(parser.lines) + "\n"


def _part_text(part: EmailMessage) -> str:
    ctype = part.get_content_type()
    name = part.get_filename()
    head = f"----- part {ctype}" + (f" ({name})" if name else "") + f", {part.get('Content-Transfer-Encoding', '7bit')}"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    if ctype == "text/html":
        body = pretty_html(payload.decode(part.get_content_charset() or "utf-8"))
    elif part.get_content_maintype() == "text":
        body = payload.decode(part.get_content_charset() or "utf-8").replace("\r\n", "\n")
    else:
        body = f"{len(payload)} bytes, sha256 {hashlib.sha256(payload).hexdigest()}\n"
    return f"{head}\n{body}"


def decoded_message(data: bytes) -> str:
    """The message's headers decoded (RFC 2047), then every leaf part decoded."""
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    lines = [f"{name}: {' '.join(str(value).split())}" for name, value in msg.items()]
    parts = [_part_text(part) for part in msg.walk() if not part.is_multipart() and isinstance(part, EmailMessage)]
    return "\n".join(lines) + "\n\n" + "\n".join(parts)


def readable(name: str, data: bytes) -> str:
    """The golden form of the built file ``name``."""
    if name.endswith(".html"):
        return pretty_html(data.decode("utf-8"))
    if name.endswith(".eml"):
        return decoded_message(data)
    return data.decode("utf-8").replace("\r\n", "\n")
