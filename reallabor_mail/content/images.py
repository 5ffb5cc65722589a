"""Content images as the build publishes them: at most 1200 px wide, and light enough for an email.

A photo straight from a camera (4000×3000, 14 MB) is scaled down once for the email and the web page;
the result is the same bytes on every build (no timestamps, no metadata), so builds stay identical.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import PIL.Image
import PIL.ImageOps

MAX_WIDTH = 1200  # twice the email column, sharp on high-density screens
HEAVY_BYTES = 300 * 1024  # above this an image slows the email down on a mobile connection

# What is scaled, with how it is saved; GIFs (often animated) stay as they are.
_FORMATS: dict[str, dict[str, int | bool]] = {"JPEG": {"quality": 85}, "PNG": {"optimize": True}}


@dataclass(frozen=True)
class PublishedImage:
    """The bytes the build writes for one content image, and their size in pixels."""

    data: bytes
    width: int
    height: int


def published(file: Path) -> PublishedImage:
    """The image as the build writes it: the file itself, or scaled to ``MAX_WIDTH`` if it is wider.

    Raises OSError or PIL.UnidentifiedImageError when the file is not an image Pillow can read.
    """
    stat = file.stat()
    return _published(file.resolve(), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=256)
def _published(file: Path, mtime_ns: int, size: int) -> PublishedImage:
    """Cached by modification time and size, so the preview's reloads do not scale a photo again."""
    with PIL.Image.open(file) as picture:
        width, height = picture.size
        if width <= MAX_WIDTH or picture.format not in _FORMATS:
            picture.verify()
            return PublishedImage(file.read_bytes(), width, height)
        image_format = str(picture.format)
        upright = PIL.ImageOps.exif_transpose(picture)  # a camera's "rotate" flag does not survive scaling
        if upright.mode not in ("RGB", "RGBA", "L"):
            upright = upright.convert("RGBA" if image_format == "PNG" else "RGB")
        new_height = round(upright.height * MAX_WIDTH / upright.width)
        scaled = upright.resize((MAX_WIDTH, new_height), PIL.Image.Resampling.LANCZOS)
    out = io.BytesIO()
    scaled.save(out, format=image_format, **_FORMATS[image_format])
    return PublishedImage(out.getvalue(), scaled.width, scaled.height)
