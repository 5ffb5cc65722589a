"""The language ``site.yaml`` names, read without loading the content model (pydantic, Markdown, Pillow).

Every command, ``--help`` included, needs it to choose the staff language before it writes a word, so it
lives apart from :mod:`reallabor_mail.content.loader`: a command that does not read content pays for YAML
only (issue 16: ``--help`` within 2× a bare ``import click``).
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import yaml

from reallabor_mail.i18n.languages import LANGUAGES, Language


def site_language(root: Path) -> Language | None:
    """The ``language`` site.yaml names, read before anything is validated; None if it cannot tell.

    The command line writes its messages in this language when neither ``REALLABOR_LANG`` nor the
    locale chooses one, so it has to know it before the first problem is reported.
    """
    try:
        data = yaml.safe_load((root / "site.yaml").read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    language = data.get("language") if isinstance(data, dict) else None
    return cast(Language, language) if language in LANGUAGES else None
