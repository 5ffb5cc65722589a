"""Find active content in HTML: what a browser or mail client could execute or be redirected by."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

BANNED_TAGS = {
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "svg", "math", "form", "input",
    "button", "textarea", "select", "base", "isindex", "marquee", "video", "audio", "source", "details",
    "noscript", "template", "xss",
}  # fmt: skip
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "background", "xlink:href", "data", "poster", "srcdoc"}
_SCHEME = re.compile(r"^\s*([a-z][a-z0-9+.-]*):", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x20]+")


class _Scanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.findings: list[str] = []
        self.in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "head":
            self.in_head = True
        if tag in BANNED_TAGS:
            self.findings.append(f"<{tag}>")
        if tag == "style" and not self.in_head:
            self.findings.append("<style> in body")
        if tag == "meta" and any(k == "http-equiv" and (v or "").lower() == "refresh" for k, v in attrs):
            self.findings.append("meta refresh")
        if tag == "link" and any(k == "rel" and (v or "").lower() not in ("alternate",) for k, v in attrs):
            self.findings.append("<link> other than rel=alternate")
        for name, value in attrs:
            value = unescape(value or "")
            if name.startswith("on"):
                self.findings.append(f"{tag} {name}=")
            if name in URL_ATTRIBUTES:
                scheme = _SCHEME.match(_CONTROL.sub("", value))
                if scheme and scheme.group(1).lower() not in ("http", "https", "mailto"):
                    self.findings.append(f"{tag} {name}={value[:40]!r}")
            if name == "style" and re.search(r"expression\s*\(|javascript:|url\s*\(", value, re.IGNORECASE):
                self.findings.append(f"{tag} style={value[:40]!r}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self.in_head = False


def active_content(html: str) -> list[str]:
    """Everything in ``html`` that could run code or load from a non-web scheme; empty if clean."""
    scanner = _Scanner()
    scanner.feed(html)
    scanner.close()
    return scanner.findings
