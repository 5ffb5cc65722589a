"""``--state PATH|URL`` for every command, and ``state copy``: move a state between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import click

from reallabor_mail.db import StateLocation, parse_state


class StateParam(click.ParamType):  # type: ignore[type-arg]
    """A state file path or a ``postgresql://`` URL (``click.Path`` would fold the URL's ``//``)."""

    name = "PATH|URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> StateLocation:
        if not isinstance(value, str):
            return value  # type: ignore[no-any-return]  # already converted (a default)
        if not value.strip():
            self.fail("an empty state path", param, ctx)
        return parse_state(value.strip())


STATE_TYPE = StateParam()
