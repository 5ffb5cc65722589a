"""The languages this program writes in: recipients' mails and pages, and what staff read.

Lives at the bottom of the house (below ``content``), so the catalogs, dates and greetings need no
content model to know which languages exist.
"""

from __future__ import annotations

from typing import Literal

Language = Literal["de", "uk", "en"]
LANGUAGES: tuple[Language, ...] = ("de", "uk", "en")
