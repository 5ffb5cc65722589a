"""Read the content folder: front matter + Markdown → validated models, every problem collected.

Nothing here writes or renders; :func:`load_content` either returns the whole validated content or
raises :class:`~reallabor_mail.errors.ContentError` listing every problem in every file.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast
from urllib.parse import quote

import PIL.Image
import yaml
from pydantic import BaseModel, ValidationError

from reallabor_mail.characters import TEXT_CONTROL
from reallabor_mail.content.images import HEAVY_BYTES, published
from reallabor_mail.content.markdown import Body, ImageResolver, ResolvedImage, parse_body, read_image_path
from reallabor_mail.content.models import (
    LANGUAGES,
    REPORT_BEFORE_EVENT,
    UNKNOWN_LIST,
    EventFrontMatter,
    EventStatus,
    Language,
    MailingList,
    Newsletter,
    Photo,
    Report,
    Site,
)
from reallabor_mail.errors import Code, Problem, ProblemLog, ReallaborError, display_path
from reallabor_mail.i18n.messages import N_, _, current_staff_language

if TYPE_CHECKING:
    from typing_extensions import TypeIs  # typing.TypeIs from Python 3.13

Meta = TypeVar("Meta", bound=BaseModel)

_FRONT_MATTER_FENCE = re.compile(r"^(---|\.\.\.)\s*$")
_TRANSLATION = re.compile(r"^(?P<stem>.+)\.(?P<lang>[a-z]{2})$")


@dataclass(frozen=True)
class ShownPhoto:
    """A report's photo as pages show it: its published address and size, what it shows, who took it."""

    url: str
    width: int
    height: int
    alt: str
    credit: str | None


@dataclass(frozen=True)
class Version(Generic[Meta]):
    """One language version of a newsletter, event or report: its file, front matter and body."""

    language: Language
    path: Path
    meta: Meta
    body: Body
    photos: tuple[ShownPhoto, ...] = ()  # a report's ``photos:``, resolved like the body's images


class Kind(StrEnum):
    """What an item is. The value is the word in campaign keys (``newsletter:2023-3``); the folder is the plural."""

    NEWSLETTER = "newsletter"
    EVENT = "event"
    REPORT = "report"

    @property
    def folder(self) -> str:
        return f"{self.value}s"


@dataclass(frozen=True)
class Item(Generic[Meta]):
    """A newsletter or event with all its language versions; the site language is always present."""

    stem: str
    versions: Mapping[Language, Version[Meta]]
    default_language: Language

    @property
    def main(self) -> Version[Meta]:
        return self.versions[self.default_language]

    @property
    def meta(self) -> Meta:
        return self.main.meta

    @property
    def kind(self) -> Kind:
        if isinstance(self.meta, Newsletter):
            return Kind.NEWSLETTER
        return Kind.REPORT if isinstance(self.meta, Report) else Kind.EVENT

    @property
    def path(self) -> Path:
        return self.main.path

    def version(self, language: str) -> Version[Meta]:
        """The version in ``language``, falling back to the site language."""
        return self.versions.get(cast(Language, language), self.main)


NewsletterItem = Item[Newsletter]
EventItem = Item[EventFrontMatter]
ReportItem = Item[Report]  # its stem is the stem of the event it reports on


def is_event(item: NewsletterItem | EventItem) -> TypeIs[EventItem]:
    """Whether an item is an event (and, for the type checker, which of the two it is)."""
    return item.kind is Kind.EVENT


@dataclass(frozen=True)
class Content:
    """Everything ``build``, ``send`` and ``serve`` need from the content folder, validated."""

    root: Path
    site: Site
    newsletters: tuple[NewsletterItem, ...]
    events: tuple[EventItem, ...]
    images: frozenset[Path] = field(default_factory=frozenset)
    warnings: tuple[Problem, ...] = ()
    reports: tuple[ReportItem, ...] = ()  # oldest first

    def upcoming_events(self, after: dt.date) -> list[EventItem]:
        """Events starting after a date (a newsletter's publication date), soonest first."""
        return [e for e in self.events if e.meta.start.date() > after]

    def report_of(self, event: EventItem) -> ReportItem | None:
        """The report written about an event, if there is one."""
        return next((r for r in self.reports if r.stem == event.stem), None)

    def event_of(self, report: ReportItem) -> EventItem:
        """The event a report is about (the loader made sure it exists)."""
        return next(e for e in self.events if e.stem == report.stem)

    def review(self, newsletter: NewsletterItem) -> list[ReportItem]:
        """The reports a newsletter's Rückblick lists: dated after the previous issue, up to this issue's date.

        The previous issue is the newsletter with the latest date before this one's; the first issue
        looks back to the beginning. Each report so appears in exactly one issue's Rückblick.
        """
        date = newsletter.meta.date
        earlier = [n.meta.date for n in self.newsletters if n.meta.date < date]
        since = max(earlier, default=dt.date.min)
        return [r for r in self.reports if since < r.meta.date <= date]

    def find(self, path: Path) -> NewsletterItem | EventItem:
        """The newsletter or event a content file belongs to (any of its language versions)."""
        target = path.resolve()
        items: tuple[NewsletterItem | EventItem, ...] = (*self.newsletters, *self.events)
        for item in items:
            if any(v.path.resolve() == target for v in item.versions.values()):
                return item
        raise ReallaborError(_("{path}: not a newsletter or event of {root}", path=path, root=self.root))


# --- front matter -------------------------------------------------------------------------------


@dataclass
class Document:
    """A file's parsed YAML (front matter or ``site.yaml``) with the line of every key."""

    path: str
    data: dict[str, Any]
    key_lines: dict[tuple[str, ...], int]
    first_line: int
    body: str = ""
    body_line: int = 1

    def line_of(self, loc: tuple[str | int, ...]) -> int:
        """The line of the deepest key of ``loc`` that the file contains."""
        keys = tuple(str(k) for k in loc if isinstance(k, str))
        while keys:
            if keys in self.key_lines:
                return self.key_lines[keys]
            keys = keys[:-1]
        return self.first_line


def _key_lines(node: yaml.Node, offset: int, path: str, problems: ProblemLog) -> dict[tuple[str, ...], int]:
    lines: dict[tuple[str, ...], int] = {}

    def walk(n: yaml.Node, prefix: tuple[str, ...]) -> None:
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                name = str(key.value)
                line = key.start_mark.line + 1 + offset
                if (*prefix, name) in lines:
                    key_name = ".".join((*prefix, name))
                    message = _("key '{key}' appears twice; keep one", key=key_name)
                    problems.error(path, line, message, Code.DUPLICATE_KEY)
                lines[(*prefix, name)] = line
                walk(value, (*prefix, name))

    walk(node, ())
    return lines


class _FrontMatterLoader(yaml.SafeLoader):
    """SafeLoader that leaves dates and times as text, so pydantic parses them and reports the key."""


_FrontMatterLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _FastFrontMatterLoader(getattr(yaml, "CSafeLoader", _FrontMatterLoader)):  # type: ignore[misc]
    """The same loader with libyaml's parser (about ten times faster), when PyYAML was built with it.

    Only for files that parse: on any YAML error the file is read again with :class:`_FrontMatterLoader`,
    whose messages and lines the error reports are written for. libyaml accepts two things PyYAML refuses
    (a tab inside a value, a ``?`` in a flow ``[…]``/``{…}``), so a file with a tab or a ``?`` goes to
    PyYAML directly: every file is accepted or refused as before.
    """

    yaml_implicit_resolvers = _FrontMatterLoader.yaml_implicit_resolvers


def _compose(text: str) -> tuple[yaml.Node | None, Any]:
    """The YAML node of ``text`` (for the key lines) and the data made from it: parsed once.

    Raises PyYAML's error (the one the messages of :func:`parse_yaml` explain) if the text is not valid.
    """
    if "\t" not in text and "?" not in text:
        try:
            return _compose_with(_FastFrontMatterLoader, text)
        except yaml.YAMLError:
            pass  # read again below, for PyYAML's error
    return _compose_with(_FrontMatterLoader, text)


def _compose_with(loader_class: type[Any], text: str) -> tuple[yaml.Node | None, Any]:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return node, loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


_TYPOGRAPHIC_QUOTES = re.compile(r":\s*[„“”«»‚‘’]")  # a value opened with a typographic quote
_UNCLOSED = ("quoted scalar", "flow")  # what PyYAML was reading when a quote or bracket never closed


def _runaway_quote(text: str, problem_line: int) -> int | None:
    """The line a quoted value starts on if it ran over lines up to the error (its quote was never closed).

    ``title: "unclosed`` swallows the lines below it until the next ``"``; PyYAML then fails where
    that quote ends, lines below the mistake.
    """
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if (
                isinstance(token, yaml.ScalarToken)
                and token.style in ('"', "'")
                and token.start_mark.line < token.end_mark.line == problem_line
            ):
                return int(token.start_mark.line)
    except yaml.YAMLError:
        pass
    return None


def _error_line(exc: yaml.MarkedYAMLError, text: str, line_offset: int) -> int:
    """The file line to fix: where an unclosed quote or bracket opens, else where reading failed."""
    opened = exc.context_mark if exc.context and any(what in exc.context for what in _UNCLOSED) else None
    mark = opened or exc.problem_mark or exc.context_mark
    if mark is None:
        return line_offset + 1
    runaway = _runaway_quote(text, mark.line) if mark is exc.problem_mark else None
    return (runaway if runaway is not None else mark.line) + 1 + line_offset


def parse_yaml(text: str, path: str, line_offset: int, problems: ProblemLog) -> Document | None:
    """Safe-load YAML (no tags that construct objects) and remember where each key is."""
    try:
        node, data = _compose(text)
    except yaml.MarkedYAMLError as exc:
        line = _error_line(exc, text, line_offset)
        source_lines = text.splitlines()
        source = source_lines[line - 1 - line_offset] if 0 <= line - 1 - line_offset < len(source_lines) else ""
        if _TYPOGRAPHIC_QUOTES.search(source):
            message = _(
                "typographic quotes („…“ or “…”) do not quote a value in YAML; use straight quotes \"…\" "
                "around a text with a colon"
            )
            problems.error(path, line, message, Code.QUOTES_NOT_STRAIGHT)
            return None
        if "\t" in source:
            message = _("a tab character: YAML indents with spaces only; replace the tab with spaces")
        elif exc.problem == "mapping values are not allowed here":
            message = _(
                "a second colon in a value: put the whole text in straight quotes, e.g. title: \"Thema: Untertitel\""
            )
        else:
            detail = exc.problem or exc.context
            message = _("invalid YAML: {detail}; check indentation and quoting", detail=detail)
        problems.error(path, line, message, Code.INVALID_YAML)
        return None
    except yaml.YAMLError as exc:
        problems.error(path, line_offset + 1, _("invalid YAML: {detail}", detail=exc), Code.INVALID_YAML)
        return None
    if data is None:
        data = {}
    if not isinstance(data, dict) or node is None:
        problems.error(path, line_offset + 1, _("expected 'key: value' lines"), Code.NOT_A_MAPPING)
        return None
    lines = _key_lines(node, line_offset, path, problems)
    return Document(path, data, lines, first_line=max(line_offset, 1))


def parse_front_matter(text: str, path: str, problems: ProblemLog) -> Document | None:
    """Split ``---`` front matter from the Markdown body of a content file."""
    lines = text.splitlines(keepends=True)
    if not lines or not _FRONT_MATTER_FENCE.match(lines[0]) or lines[0].startswith("..."):
        message = _("the file must start with front matter: a '---' line, 'title: …', then '---'")
        problems.error(path, 1, message, Code.NO_FRONT_MATTER)
        return None
    for index in range(1, len(lines)):
        if _FRONT_MATTER_FENCE.match(lines[index]):
            break
    else:
        message = _("front matter is not closed; add a '---' line after the last key")
        problems.error(path, 1, message, Code.FRONT_MATTER_NOT_CLOSED)
        return None
    doc = parse_yaml("".join(lines[1:index]), path, 1, problems)
    if doc is None:
        return None
    doc.first_line = 1
    doc.body = "".join(lines[index + 1 :])
    doc.body_line = index + 2
    return doc


# Pydantic's error types, each as a sentence of ours (its own ``msg`` is English and cannot be translated).
_SENTENCES: dict[str, str] = {
    "string_type": N_("'{key}': text is expected here"),
    "string_too_short": N_("'{key}' is empty; write a value or remove the key"),
    # ListName is the only pattern-checked type (content/models.py).
    "string_pattern_mismatch": N_(
        "'{key}': '{value}' is not a list name; use lower-case letters, digits, '-' and '_', e.g. newsletter"
    ),
    "bool_type": N_("'{key}': write true or false"),
    "bool_parsing": N_("'{key}': write true or false"),
    "int_type": N_("'{key}': a whole number is expected, e.g. 60"),
    "int_parsing": N_("'{key}': a whole number is expected, e.g. 60"),
    "int_from_float": N_("'{key}': a whole number is expected, e.g. 60"),
    "greater_than_equal": N_("'{key}': must be at least {ge}"),
    "less_than_equal": N_("'{key}': must be at most {le}"),
    "list_type": N_("'{key}': a list is expected, e.g. [newsletter]"),
    "dict_type": N_("'{key}': indented 'key: value' lines are expected here"),
    "model_type": N_("'{key}': indented 'key: value' lines are expected here"),
    "model_attributes_type": N_("'{key}': indented 'key: value' lines are expected here"),
    "url_type": N_("'{key}': not a web address; write it in full, starting with https://"),
    "url_parsing": N_("'{key}': not a web address; write it in full, starting with https://"),
    "url_scheme": N_("'{key}': not a web address; write it in full, starting with https://"),
    "url_syntax_violation": N_("'{key}': not a web address; write it in full, starting with https://"),
    "url_too_long": N_("'{key}': the web address is too long"),
    "enum": N_("'{key}': '{value}' is not allowed; write one of: {allowed}"),
    "literal_error": N_("'{key}': '{value}' is not allowed; write one of: {allowed}"),
    "value_error": N_("'{key}': {detail}"),
    UNKNOWN_LIST: N_("'{key}': unknown list {names}; site.yaml declares: {known}"),
    REPORT_BEFORE_EVENT: N_("'{key}': {date} is before the event ended ({end}); date the report on or after that day"),
}
_CODES = {UNKNOWN_LIST: Code.UNKNOWN_LIST, REPORT_BEFORE_EVENT: Code.REPORT_BEFORE_EVENT_END}
_QUOTED = re.compile(r"'([^']*)'")


def _describe(error: Mapping[str, Any], model: type[BaseModel]) -> tuple[str, Code]:
    """One validation error as a sentence in the staff language, from pydantic's error ``type`` and ``ctx``."""
    # A list index is left out (the value is quoted); "[key]": the error is in a mapping's key itself.
    parts = [p for p in error["loc"] if isinstance(p, str) and p != "[key]"]
    loc = ".".join(str(p) for p in parts)
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return _("missing required key '{key}'; add it to the front matter", key=loc), Code.MISSING_KEY
    if kind == "extra_forbidden":
        parent = model
        for part in error["loc"][:-1]:
            annotation = parent.model_fields[str(part)].annotation if isinstance(part, str) else None
            candidates = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)]
            nested = next((a for a in candidates if issubclass(a, BaseModel)), None)
            if nested is None:
                break
            parent = nested
        allowed = ", ".join(parent.model_fields)
        return _("unknown key '{key}'; allowed keys are: {allowed}", key=loc, allowed=allowed), Code.UNKNOWN_KEY
    values = {
        "key": loc,
        "value": str(error.get("input"))[:80],
        "detail": str(ctx.get("error", "")),
        "allowed": ", ".join(_QUOTED.findall(str(ctx.get("expected", "")))),
        **{name: value for name, value in ctx.items() if name in ("ge", "le", "names", "known", "date", "end")},
    }
    code = _CODES.get(kind, Code.INVALID_VALUE)
    if kind == "value_error" and not loc:
        return values["detail"], code
    if kind.startswith("date_"):
        return _("'{key}': not a date; write dates as YYYY-MM-DD, e.g. 2023-10-05", key=loc), code
    sentence = _SENTENCES.get(kind)
    if sentence is None:  # a type our models do not produce today: pydantic's English words, marked as such
        return _("'{key}': invalid value ({detail})", key=loc, detail=error["msg"]), code
    return _(sentence, **values), code


def validate(
    doc: Document, model: type[Meta], problems: ProblemLog, context: dict[str, Any] | None = None
) -> Meta | None:
    """Validate a document against a model, reporting every error at its key's line."""
    try:
        return model.model_validate(doc.data, context=context)
    except ValidationError as exc:
        for error in exc.errors():
            problems.error(doc.path, doc.line_of(tuple(error["loc"])), *_describe(error, model))
        return None


# --- the content folder -------------------------------------------------------------------------


def _markdown_files(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        yield from sorted(p for p in folder.glob("*.md") if p.is_file() and p.name.lower() != "readme.md")


def _split_language(path: Path) -> tuple[str, str | None]:
    match = _TRANSLATION.match(path.stem)
    if match:
        return match["stem"], match["lang"]
    return path.stem, None


def strip_control_characters(text: str, path: str, problems: ProblemLog) -> str:
    """Remove invisible control characters (pasted from PDFs and Word) and say where they were."""
    if not TEXT_CONTROL.search(text):
        return text
    for number, line in enumerate(text.splitlines(), start=1):
        if found := TEXT_CONTROL.search(line):
            character = f"U+{ord(found.group()):04X}"
            message = _("invisible control character {character} removed", character=character)
            problems.warning(path, number, message, Code.CONTROL_CHARACTER)
    return TEXT_CONTROL.sub("", text)


@dataclass(frozen=True)
class FileStamp:
    """A file as the cache knows it: path, modification time and size (None when it is gone)."""

    path: Path
    mtime_ns: int | None
    size: int | None

    @classmethod
    def of(cls, path: Path) -> FileStamp:
        try:
            info = path.stat()
        except OSError:
            return cls(path, None, None)
        return cls(path, info.st_mtime_ns, info.st_size)


@dataclass(frozen=True)
class Parsed:
    """What reading one content file gave: its document and version, and what it reported and used on the way."""

    stamp: FileStamp
    doc: Document | None
    version: Version[Any] | None
    problems: tuple[Problem, ...]
    images: frozenset[Path]


class ContentCache:
    """Parsed content files kept between reads of one folder (the preview), so a reload re-reads only changed files.

    An entry is used only while its file has the same (path, mtime_ns, size) and what it was read
    against is unchanged: the original's file for a translation, the event's end for a report. Any
    change to the rest of the folder (site.yaml, an image, any file but the newsletters', events' and
    reports' Markdown) or of the staff language drops every entry. The rules across files (reports ↔
    events, lists, the original of a translation) are checked on every read, over the whole folder.
    """

    def __init__(self) -> None:
        self._entries: dict[Path, tuple[Hashable, Parsed]] = {}
        self._surroundings: Hashable = None
        self._used: set[Path] = set()
        self.reads: list[Path] = []  # every file read from disk rather than taken from the cache, in order

    def begin(self, root: Path) -> None:
        """Start a read of ``root``: drop everything if anything but its item files changed since the last one."""
        surroundings = (current_staff_language(), folder_stamps(root, but=_ITEM_FILES))
        if surroundings != self._surroundings:
            self._entries.clear()
            self._surroundings = surroundings
        self._used = set()

    def get(self, stamp: FileStamp, depends: Hashable) -> Parsed | None:
        entry = self._entries.get(stamp.path)
        if entry is None or entry[0] != depends or entry[1].stamp != stamp:
            return None
        self._used.add(stamp.path)
        return entry[1]

    def put(self, parsed: Parsed, depends: Hashable) -> None:
        self._entries[parsed.stamp.path] = (depends, parsed)
        self._used.add(parsed.stamp.path)
        self.reads.append(parsed.stamp.path)

    def end(self) -> None:
        """Forget the files this read did not see (deleted or renamed)."""
        self._entries = {path: entry for path, entry in self._entries.items() if path in self._used}


_ITEM_FILES = tuple(f"{kind.folder}/*.md" for kind in Kind)


def folder_stamps(root: Path, but: tuple[str, ...] = ()) -> tuple[FileStamp, ...]:
    """Every file under ``root`` but those matching ``but`` (relative paths); hidden ones left out (.git, .swp)."""
    stamps = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        here = Path(folder)
        for name in sorted(n for n in names if not n.startswith(".")):
            file = here / name
            if not any(PurePosixPath(file.relative_to(root).as_posix()).match(pattern) for pattern in but):
                stamps.append(FileStamp.of(file))
    return tuple(stamps)


class _Loader:
    def __init__(self, root: Path, cache: ContentCache | None = None) -> None:
        self.root = root
        self.cache = cache
        self.problems = ProblemLog()
        self.images: set[Path] = set()
        self.site: Site | None = None
        self.event_ends: dict[str, dt.date] = {}  # known once the events are loaded; reports are checked against it

    def rel(self, path: Path) -> str:
        return display_path(path, self.root)

    def load_site(self) -> Site | None:
        path = self.root / "site.yaml"
        if not path.is_file():
            message = _("site.yaml is missing; copy the example from the README")
            self.problems.error(self.rel(path), None, message, Code.SITE_YAML_MISSING)
            return None
        text = self.read_text(path)
        doc = parse_yaml(text, self.rel(path), 0, self.problems) if text is not None else None
        return validate(doc, Site, self.problems) if doc else None

    def read_text(self, file: Path) -> str | None:
        """A content file as text (UTF-8, a byte order mark allowed); None after reporting anything else."""
        try:
            return file.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            message = _("not UTF-8 text ({reason}); save the file as UTF-8", reason=exc.reason)
            self.problems.error(self.rel(file), None, message, Code.NOT_UTF8)
            return None

    def image_url(self, path: str) -> ImageResolver:
        def resolve(src: str, line: int | None) -> ResolvedImage | None:
            try:
                file = read_image_path(src, self.root)
                image = published(file)
            except ValueError as exc:
                self.problems.error(path, line, str(exc), Code.IMAGE_PATH)
                return None
            except (OSError, PIL.UnidentifiedImageError):
                message = _("{src!r} is not an image we can read; use PNG, JPEG or GIF", src=src)
                self.problems.error(path, line, message, Code.IMAGE_UNREADABLE)
                return None
            if len(image.data) > HEAVY_BYTES:
                message = _(
                    "image {src!r} is {size} KB even at {width} px wide; save it smaller than {limit} KB "
                    "(JPEG for photos), it slows the email down on a phone",
                    src=src,
                    size=len(image.data) // 1024,
                    width=image.width,
                    limit=HEAVY_BYTES // 1024,
                )
                self.problems.warning(path, line, message, Code.IMAGE_TOO_HEAVY)
            self.images.add(file)
            public = self.site.public_url if self.site else ""
            address = quote(file.relative_to(self.root.resolve()).as_posix())
            return ResolvedImage(f"{public}/{address}", image.width, image.height)

        return resolve

    def photos(self, doc: Document, photos: list[Photo]) -> tuple[ShownPhoto, ...]:
        """A report's photos, each file checked and published like an image in the body."""
        shown = []
        for photo in photos:
            image = self.image_url(doc.path)(photo.path, doc.line_of(("photos",)))
            if image is not None:
                shown.append(ShownPhoto(image.url, image.width, image.height, photo.alt, photo.credit))
        return tuple(shown)

    def load_items(self, folder: str, model: type[Meta], language: Language) -> tuple[Item[Meta], ...]:
        groups: dict[str, dict[str, Path]] = {}
        for file in _markdown_files(self.root / folder):
            stem, lang = _split_language(file)
            if lang is not None and lang not in LANGUAGES:
                message = _("unknown language '{language}'; translations end in .uk.md or .en.md", language=lang)
                self.problems.error(self.rel(file), None, message, Code.UNKNOWN_LANGUAGE)
                continue
            groups.setdefault(stem, {})[lang or language] = file
        items = []
        for stem, files in sorted(groups.items()):
            if language not in files:
                for file in files.values():
                    message = _("translation without original; add {stem}.md", stem=stem)
                    self.problems.error(self.rel(file), None, message, Code.TRANSLATION_WITHOUT_ORIGINAL)
                continue
            item = self._load_item(stem, files, model, language)
            if item is not None:
                items.append(item)
        return tuple(items)

    def parsed(
        self, file: Path, depends: Hashable, read: Callable[[], tuple[Document | None, Version[Any] | None]]
    ) -> Parsed:
        """One file read by ``read``, or taken from the cache if neither it nor what it depends on changed.

        What the read reports and which images it uses are recorded with it, so a file taken from the
        cache reports the same problems again.
        """
        stamp = FileStamp.of(file)
        cached = self.cache.get(stamp, depends) if self.cache is not None else None
        if cached is None:
            outer_problems, outer_images = self.problems, self.images
            self.problems, self.images = ProblemLog(), set()
            try:
                doc, version = read()
                found = (*self.problems.errors, *self.problems.warnings)
                cached = Parsed(stamp, doc, version, found, frozenset(self.images))
            finally:
                self.problems, self.images = outer_problems, outer_images
            if self.cache is not None:
                self.cache.put(cached, depends)
        self.problems.extend(cached.problems)
        self.images |= cached.images
        return cached

    def _read_version(
        self, file: Path, lang: str, model: type[Meta], context: dict[str, Any], main_doc: Document | None
    ) -> tuple[Document | None, Version[Meta] | None]:
        """One language version of an item: its document (None if it does not parse) and version (None if invalid)."""
        rel = self.rel(file)
        text = self.read_text(file)
        if text is None:
            return None, None
        text = strip_control_characters(text, rel, self.problems)
        doc = parse_front_matter(text, rel, self.problems)
        if doc is None:
            return None, None
        if main_doc is not None:
            # A translation repeats only what it translates; the rest comes from the original.
            doc.data = {**main_doc.data, **doc.data}
            doc.key_lines = {**{k: doc.first_line for k in main_doc.key_lines}, **doc.key_lines}
        meta = validate(doc, model, self.problems, context)
        body = parse_body(
            doc.body, path=rel, first_line=doc.body_line, problems=self.problems, resolve_image=self.image_url(rel)
        )
        if meta is None:
            return doc, None
        code = cast(Language, lang)
        photos = self.photos(doc, meta.photos) if isinstance(meta, Report) else ()
        return doc, Version(code, file, meta, body, photos)

    def _load_item(self, stem: str, files: dict[str, Path], model: type[Meta], language: Language) -> Item[Meta] | None:
        main_doc: Document | None = None
        versions: dict[Language, Version[Meta]] = {}
        context = {
            "default_timezone": self.site.timezone if self.site else "Europe/Berlin",
            "known_lists": self.site.known_lists if self.site and self.site.lists is not None else None,
            "event_end": self.event_ends.get(stem),
        }
        stamps: dict[str, FileStamp] = {}
        for lang in sorted(files, key=lambda code: code != language):
            file = files[lang]
            # A translation is read over its original, so it depends on the original's version of the file too.
            depends = (stamps.get(language), context["event_end"])
            parsed = self.parsed(file, depends, partial(self._read_version, file, lang, model, context, main_doc))
            stamps[lang] = parsed.stamp
            if lang == language:
                main_doc = parsed.doc
            if parsed.version is not None:
                versions[cast(Language, lang)] = parsed.version
        if language not in versions:
            return None
        return Item(stem, versions, language)


def load_site(root: Path) -> Site:
    """Only ``site.yaml`` of ``root``, by the rules :func:`load_content` reads it with; ContentError otherwise.

    The public server needs no more: it must keep running while a draft newsletter has errors.
    """
    loader = _Loader(root)
    site = loader.load_site()
    loader.problems.raise_if_errors()
    assert site is not None
    return site


def read_content(root: Path, cache: ContentCache | None = None) -> tuple[Content | None, ProblemLog]:
    """The content folder as far as it is valid, and every problem found in it.

    The items with errors are left out; None without a valid site.yaml. The preview shows the rest
    beside the errors (with a ``cache`` kept between its reloads); :func:`load_content` is the strict
    form every other command uses.
    """
    loader = _Loader(root, cache)
    if not root.is_dir():
        message = _("content folder not found; pass --content DIR or run in the project folder")
        loader.problems.error(str(root), None, message, Code.CONTENT_FOLDER_MISSING)
        return None, loader.problems
    if cache is not None:
        cache.begin(root)
    site = loader.site = loader.load_site()
    language: Language = site.language if site else "de"
    newsletters = loader.load_items(Kind.NEWSLETTER.folder, Newsletter, language)
    events = loader.load_items(Kind.EVENT.folder, EventFrontMatter, language)
    loader.event_ends = {event.stem: event.meta.end.date() for event in events}
    reports = _reports_of_events(loader, loader.load_items(Kind.REPORT.folder, Report, language))
    if cache is not None:
        cache.end()
    for item in newsletters:
        main = item.main
        if not main.meta.preheader:
            message = _("no 'preheader'; inboxes will show the first words of the body instead")
            loader.problems.warning(loader.rel(main.path), 1, message, Code.NO_PREHEADER)
    if site is None:
        return None, loader.problems
    if site.lists is None:
        site = _lists_from_content(site, (*newsletters, *events))
        message = _(
            "no 'lists:' section; the lists the content names ({lists}) are used with their names as labels. "
            "Add a 'lists:' section with a label per language (see content/README.md)",
            lists=", ".join(site.known_lists),
        )
        loader.problems.warning(loader.rel(root / "site.yaml"), None, message, Code.SITE_LISTS_MISSING)
    events = tuple(sorted(events, key=lambda e: (e.meta.start, e.stem)))
    newsletters = tuple(sorted(newsletters, key=lambda n: (n.meta.date, n.stem), reverse=True))
    content = Content(
        root=root,
        site=site,
        newsletters=newsletters,
        events=events,
        images=frozenset(loader.images),
        warnings=tuple(loader.problems.warnings),
        reports=tuple(sorted(reports, key=lambda r: (r.meta.date, r.stem))),
    )
    return content, loader.problems


def load_content(root: Path) -> Content:
    """Read and validate the whole content folder; raise ContentError with every problem found."""
    content, problems = read_content(root)
    problems.raise_if_errors()
    assert content is not None
    return content


def _reports_of_events(loader: _Loader, reports: Iterable[ReportItem]) -> list[ReportItem]:
    """The reports whose event loaded; a report named after no event file is an error.

    A report of an event file with errors is left out without a word: the event's errors are what to fix.
    """
    kept = []
    for report in reports:
        if report.stem in loader.event_ends:
            kept.append(report)
            continue
        if (loader.root / Kind.EVENT.folder / f"{report.stem}.md").is_file():
            continue
        message = _(
            "no event '{stem}' to report on; name the report like its event's file, events/{stem}.md", stem=report.stem
        )
        loader.problems.error(loader.rel(report.path), None, message, Code.REPORT_WITHOUT_EVENT)
    return kept


def _lists_from_content(site: Site, items: Iterable[NewsletterItem | EventItem]) -> Site:
    """Old content without ``lists:`` in site.yaml: every list the content names, labelled with its name."""
    names = sorted({name for item in items for version in item.versions.values() for name in version.meta.lists})
    declared = {name: MailingList(label={site.language: name}) for name in names}
    return site.model_copy(update={"lists": declared})


def is_cancelled(event: EventItem) -> bool:
    return event.meta.status is EventStatus.CANCELLED
