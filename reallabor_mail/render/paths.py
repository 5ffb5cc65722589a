"""Where every output of contract §2 lives: one place for file paths and their public URLs."""

from __future__ import annotations

from pathlib import PurePosixPath

from reallabor_mail.content.models import Language


def localised(name: str, language: str, default_language: str) -> str:
    """``email.html`` → ``email.uk.html`` for a translation; the site language keeps the plain name."""
    if language == default_language:
        return name
    stem, dot, ext = name.rpartition(".")
    return f"{stem}.{language}.{ext}" if dot else f"{name}.{language}"


def newsletter_file(stem: str, name: str, language: Language, default_language: Language) -> PurePosixPath:
    return PurePosixPath("newsletters", stem, localised(name, language, default_language))


def event_file(stem: str, name: str, language: Language, default_language: Language) -> PurePosixPath:
    return PurePosixPath("events", stem, localised(name, language, default_language))


def registration_url(public_url: str, stem: str, language: Language) -> str:
    """The public server's registration form of an event (``registration: form``; no built file), in ``language``."""
    return f"{public_url}/events/{stem}/register?lang={language}"


def url(public_url: str, path: PurePosixPath) -> str:
    """The public URL of an output file; ``index.html`` is addressed by its folder."""
    text = path.as_posix()
    if path.name == "index.html":
        text = text[: -len("index.html")]
    return f"{public_url}/{text}"


CALENDAR_FEED = PurePosixPath("calendar.ics")
ATOM_FEED = PurePosixPath("feed.xml")
ARCHIVE = PurePosixPath("index.html")
UPCOMING_ANCHOR = "kommende"  # the archive's list of upcoming events
