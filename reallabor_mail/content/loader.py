"""Read the content folder: front matter + Markdown → validated models, every problem collected.

Nothing here writes or renders; :func:`load_content` either returns the whole validated content or
raises :class:`~reallabor_mail.errors.ContentError` listing every problem in every file.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import PIL.Image
import yaml
from pydantic import BaseModel, ValidationError

from reallabor_mail.characters import TEXT_CONTROL
from reallabor_mail.content.markdown import Body, ImageResolver, ResolvedImage, parse_body, read_image_path
from reallabor_mail.content.models import LANGUAGES, EventFrontMatter, EventStatus, Language, Newsletter, Site
from reallabor_mail.errors import ContentError, Problem, ProblemLog, ReallaborError, display_path

Meta = TypeVar("Meta", bound=BaseModel)

_FRONT_MATTER_FENCE = re.compile(r"^(---|\.\.\.)\s*$")
_TRANSLATION = re.compile(r"^(?P<stem>.+)\.(?P<lang>[a-z]{2})$")


@dataclass(frozen=True)
class Version(Generic[Meta]):
    """One language version of a newsletter or event: its file, front matter and body."""

    language: Language
    path: Path
    meta: Meta
    body: Body


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
    def path(self) -> Path:
        return self.main.path

    def version(self, language: str) -> Version[Meta]:
        """The version in ``language``, falling back to the site language."""
        return self.versions.get(cast(Language, language), self.main)


NewsletterItem = Item[Newsletter]
EventItem = Item[EventFrontMatter]


@dataclass(frozen=True)
class Content:
    """Everything ``build``, ``send`` and ``serve`` need from the content folder, validated."""

    root: Path
    site: Site
    newsletters: tuple[NewsletterItem, ...]
    events: tuple[EventItem, ...]
    images: frozenset[Path] = field(default_factory=frozenset)
    warnings: tuple[Problem, ...] = ()

    def upcoming_events(self, after: dt.date) -> list[EventItem]:
        """Events starting after a date (a newsletter's publication date), soonest first."""
        return [e for e in self.events if e.meta.start.date() > after]

    def find(self, path: Path) -> NewsletterItem | EventItem:
        """The newsletter or event a content file belongs to (any of its language versions)."""
        target = path.resolve()
        items: tuple[NewsletterItem | EventItem, ...] = (*self.newsletters, *self.events)
        for item in items:
            if any(v.path.resolve() == target for v in item.versions.values()):
                return item
        raise ReallaborError(f"{path}: not a newsletter or event of {self.root}")


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
                    problems.error(path, line, f"key '{'.'.join((*prefix, name))}' appears twice; keep one")
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


def parse_yaml(text: str, path: str, line_offset: int, problems: ProblemLog) -> Document | None:
    """Safe-load YAML (no tags that construct objects) and remember where each key is."""
    try:
        node = yaml.compose(text, Loader=_FrontMatterLoader)
        data = yaml.load(text, Loader=_FrontMatterLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 + line_offset if mark else line_offset + 1
        problems.error(path, line, f"invalid YAML: {exc.problem or exc.context}; check indentation and quoting")
        return None
    except yaml.YAMLError as exc:
        problems.error(path, line_offset + 1, f"invalid YAML: {exc}")
        return None
    if data is None:
        data = {}
    if not isinstance(data, dict) or node is None:
        problems.error(path, line_offset + 1, "expected 'key: value' lines")
        return None
    lines = _key_lines(node, line_offset, path, problems)
    return Document(path, data, lines, first_line=max(line_offset, 1))


def parse_front_matter(text: str, path: str, problems: ProblemLog) -> Document | None:
    """Split ``---`` front matter from the Markdown body of a content file."""
    lines = text.splitlines(keepends=True)
    if not lines or not _FRONT_MATTER_FENCE.match(lines[0]) or lines[0].startswith("..."):
        problems.error(path, 1, "the file must start with front matter: a '---' line, 'title: …', then '---'")
        return None
    for index in range(1, len(lines)):
        if _FRONT_MATTER_FENCE.match(lines[index]):
            break
    else:
        problems.error(path, 1, "front matter is not closed; add a '---' line after the last key")
        return None
    doc = parse_yaml("".join(lines[1:index]), path, 1, problems)
    if doc is None:
        return None
    doc.first_line = 1
    doc.body = "".join(lines[index + 1 :])
    doc.body_line = index + 2
    return doc


def _describe(error: Mapping[str, Any], model: type[BaseModel]) -> str:
    loc = ".".join(str(p) for p in error["loc"])
    kind = error["type"]
    if kind == "missing":
        return f"missing required key '{loc}'; add it to the front matter"
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
        return f"unknown key '{loc}'; allowed keys are: {allowed}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind.startswith("date"):
        message += " (write dates as YYYY-MM-DD)"
    return f"'{loc}': {message}" if loc else message


def validate(
    doc: Document, model: type[Meta], problems: ProblemLog, context: dict[str, Any] | None = None
) -> Meta | None:
    """Validate a document against a model, reporting every error at its key's line."""
    try:
        return model.model_validate(doc.data, context=context)
    except ValidationError as exc:
        for error in exc.errors():
            problems.error(doc.path, doc.line_of(tuple(error["loc"])), _describe(error, model))
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
            problems.warning(path, number, f"invisible control character U+{ord(found.group()):04X} removed")
    return TEXT_CONTROL.sub("", text)


class _Loader:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems = ProblemLog()
        self.images: set[Path] = set()
        self.site: Site | None = None

    def rel(self, path: Path) -> str:
        return display_path(path, self.root)

    def load_site(self) -> Site | None:
        path = self.root / "site.yaml"
        if not path.is_file():
            self.problems.error(self.rel(path), None, "site.yaml is missing; copy the example from the README")
            return None
        doc = parse_yaml(path.read_text(encoding="utf-8"), self.rel(path), 0, self.problems)
        return validate(doc, Site, self.problems) if doc else None

    def image_url(self, path: str) -> ImageResolver:
        def resolve(src: str, line: int | None) -> ResolvedImage | None:
            try:
                file = read_image_path(src, self.root)
                with PIL.Image.open(file) as picture:
                    width, height = picture.size
            except ValueError as exc:
                self.problems.error(path, line, str(exc))
                return None
            except (OSError, PIL.UnidentifiedImageError):
                self.problems.error(path, line, f"{src!r} is not an image we can read; use PNG, JPEG or GIF")
                return None
            self.images.add(file)
            public = self.site.public_url if self.site else ""
            return ResolvedImage(f"{public}/{file.relative_to(self.root.resolve()).as_posix()}", width, height)

        return resolve

    def load_items(self, folder: str, model: type[Meta], language: Language) -> tuple[Item[Meta], ...]:
        groups: dict[str, dict[str, Path]] = {}
        for file in _markdown_files(self.root / folder):
            stem, lang = _split_language(file)
            if lang is not None and lang not in LANGUAGES:
                self.problems.error(
                    self.rel(file), None, f"unknown language '{lang}'; translations end in .uk.md or .en.md"
                )
                continue
            groups.setdefault(stem, {})[lang or language] = file
        items = []
        for stem, files in sorted(groups.items()):
            if language not in files:
                for file in files.values():
                    self.problems.error(self.rel(file), None, f"translation without original; add {stem}.md")
                continue
            item = self._load_item(stem, files, model, language)
            if item is not None:
                items.append(item)
        return tuple(items)

    def _load_item(self, stem: str, files: dict[str, Path], model: type[Meta], language: Language) -> Item[Meta] | None:
        main_doc: Document | None = None
        versions: dict[Language, Version[Meta]] = {}
        context = {"default_timezone": self.site.timezone if self.site else "Europe/Berlin"}
        for lang in sorted(files, key=lambda code: code != language):
            file = files[lang]
            rel = self.rel(file)
            try:
                text = file.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                self.problems.error(rel, None, f"not UTF-8 text ({exc.reason}); save the file as UTF-8")
                continue
            text = strip_control_characters(text, rel, self.problems)
            doc = parse_front_matter(text, rel, self.problems)
            if doc is None:
                continue
            if main_doc is not None:
                # A translation repeats only what it translates; the rest comes from the original.
                doc.data = {**main_doc.data, **doc.data}
                doc.key_lines = {**{k: doc.first_line for k in main_doc.key_lines}, **doc.key_lines}
            meta = validate(doc, model, self.problems, context)
            body = parse_body(
                doc.body, path=rel, first_line=doc.body_line, problems=self.problems, resolve_image=self.image_url(rel)
            )
            if lang == language:
                main_doc = doc
            if meta is not None:
                code = cast(Language, lang)
                versions[code] = Version(code, file, meta, body)
        if language not in versions:
            return None
        return Item(stem, versions, language)


def load_content(root: Path) -> Content:
    """Read and validate the whole content folder; raise ContentError with every problem found."""
    if not root.is_dir():
        raise ContentError(
            [Problem(str(root), None, "content folder not found; pass --content DIR or run in the project folder")]
        )
    loader = _Loader(root)
    site = loader.site = loader.load_site()
    language: Language = site.language if site else "de"
    newsletters = loader.load_items("newsletters", Newsletter, language)
    events = loader.load_items("events", EventFrontMatter, language)
    for item in newsletters:
        main = item.main
        if not main.meta.preheader:
            loader.problems.warning(
                loader.rel(main.path), 1, "no 'preheader'; inboxes will show the first words of the body instead"
            )
    loader.problems.raise_if_errors()
    assert site is not None
    events = tuple(sorted(events, key=lambda e: (e.meta.start, e.stem)))
    newsletters = tuple(sorted(newsletters, key=lambda n: (n.meta.date, n.stem), reverse=True))
    return Content(
        root=root,
        site=site,
        newsletters=newsletters,
        events=events,
        images=frozenset(loader.images),
        warnings=tuple(loader.problems.warnings),
    )


def is_cancelled(event: EventItem) -> bool:
    return event.meta.status is EventStatus.CANCELLED
