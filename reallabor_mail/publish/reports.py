"""The printed reports: each report page of a build as an A4 PDF beside it (``events/<stem>/report.pdf``).

WeasyPrint lays the page out with its own print CSS (``@page`` size, margins, page counters and the
funder's note in the page margin); it runs without a browser and fetches nothing from the network:
images come from the content folder, any other address is refused. Imported only by ``build`` and
``document``, so ``check`` and ``--help`` stay light.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from reallabor_mail.content.images import published
from reallabor_mail.content.loader import Content
from reallabor_mail.render import paths as layout
from reallabor_mail.render.site import SitePages


def content_images(content: Content) -> dict[str, tuple[bytes, str]]:
    """The content's images by their public address: what a PDF may load (and nothing else)."""
    root = content.root.resolve()
    return {
        f"{content.site.public_url}/{quote(image.relative_to(root).as_posix())}": (published(image).data, _mime(image))
        for image in content.images
    }


def _mime(file: Path) -> str:
    return {".png": "image/png", ".gif": "image/gif"}.get(file.suffix.lower(), "image/jpeg")


def pdf(html: str, content: Content, *, created: dt.date) -> bytes:
    """One page as an A4 PDF; ``created`` goes into the metadata, so the same input gives the same bytes."""
    import weasyprint  # heavy (pango, fonts): only when a PDF is made

    # The pages' screen-only CSS (overflow-x, width media queries) is what it warns about; errors still show.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)

    images = content_images(content)

    class ContentOnly(weasyprint.URLFetcher):  # type: ignore[misc]  # the library is untyped
        def fetch(self, url: str, headers: Any = None) -> Any:
            if url not in images:
                raise ValueError(f"{url}: not an image of the content; the PDF loads nothing from the network")
            data, mime = images[url]
            return weasyprint.urls.URLFetcherResponse(url, data, {"Content-Type": mime})

    stamped = html.replace("<head>", f'<head>\n<meta name="dcterms.created" content="{created.isoformat()}">', 1)
    document = weasyprint.HTML(string=stamped, url_fetcher=ContentOnly(), base_url=content.site.public_url)
    data: bytes = document.write_pdf(pdf_identifier=b"reallabor-mail", pdf_variant=None)
    return data


def report_pages(pages: SitePages) -> Iterator[tuple[PurePosixPath, PurePosixPath, dt.date]]:
    """(event page, its PDF, the report's date) of every event page that shows a report, in every language."""
    content = pages.renderer.content
    for event in content.events:
        report = content.report_of(event)
        if report is None or not pages.printed_report(event):
            continue
        for language in event.versions:
            page = layout.event_file(event.stem, "index.html", language, event.default_language)
            target = layout.report_pdf(event.stem, language, event.default_language)
            yield page, target, report.version(language).meta.date


def add_report_pdfs(files: dict[PurePosixPath, bytes], pages: SitePages) -> None:
    """Print every report page of a rendered build into ``files``, beside the page."""
    content = pages.renderer.content
    for page, target, date in report_pages(pages):
        if page in files:
            files[target] = pdf(files[page].decode("utf-8"), content, created=date)
