"""Parameter types several commands share: ``--state PATH|URL``.

Kept apart from the commands (``state copy`` lives in cli/state.py) so that a command module defining a
``--state`` option does not load another command; the state module (:mod:`reallabor_mail.db`) is
imported only when a value is given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from reallabor_mail.db import StateLocation


class StateParam(click.ParamType):  # type: ignore[type-arg]
    """A state file path or a ``postgresql://`` URL (``click.Path`` would fold the URL's ``//``)."""

    name = "PATH|URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> StateLocation:
        from reallabor_mail.db import parse_state

        if not isinstance(value, str):
            return value  # type: ignore[no-any-return]  # already converted (a default)
        if not value.strip():
            self.fail("an empty state path", param, ctx)
        return parse_state(value.strip())


STATE_TYPE = StateParam()
