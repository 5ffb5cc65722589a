"""What the CLI prints for one of our errors: its message, a state problem said in the staff language.

Most errors are written in the staff language where they are raised. db.py cannot be (it is below
i18n), so its :class:`~reallabor_mail.db.StateError` carries what failed and where, and this module says it.
"""

from __future__ import annotations

from reallabor_mail.errors import ReallaborError
from reallabor_mail.i18n.messages import N_, _


def error_text(exc: ReallaborError) -> str:
    """The one line staff read for ``exc``: it starts with the path or the setting it is about."""
    from reallabor_mail.db import LATEST_VERSION, StateError
    from reallabor_mail.settings import ENV_DATABASE_URL, ENV_STATE

    if not isinstance(exc, StateError) or exc.failure is None:
        return str(exc)
    return _(STATE_FAILURES[exc.failure], where=exc.where, reason=exc.detail, version=exc.detail,
             latest=str(LATEST_VERSION), state=ENV_STATE, database=ENV_DATABASE_URL)  # fmt: skip


STATE_FAILURES = {  # StateFailure → what staff read; {reason} is SQLite's (or PostgreSQL's) own words
    "open": N_("{where}: cannot open the state database: {reason}"),
    "read": N_("{where}: cannot read the state database: {reason}"),
    "write": N_("{where}: cannot write the state database: {reason}"),
    "use": N_("{where}: cannot use the state database: {reason}"),
    "busy": N_("{where}: another program (another send, the worker, an import) is writing the state file and did "
               "not finish in time; wait until it is done, then run the command again (an interrupted send: with "
               "--resume)"),
    "full": N_("{where}: the disk is full, so the state file cannot be written; make room on the disk, then run "
               "the command again (an interrupted send: with --resume)"),
    "read-only": N_("{where}: the state file cannot be written (no permission, or a read-only disk); check the "
                    "file's permissions, or pass another --state"),
    "not a database": N_("{where}: the file is not a state database (SQLite); move it away or pass another "
                         "--state"),
    "newer": N_("{where}: this state file was written by a newer reallabor-mail (state version {version}, this "
                "one knows up to {latest}); update reallabor-mail"),
    "no state": N_("{where}: no state yet (nothing was imported or sent with this state file); run in the "
                   "project folder, or pass --state PATH or set {state} or {database}"),
    "no psycopg": N_("{where}: PostgreSQL needs the psycopg package; install it with pip install "
                     "'psycopg[binary]'"),
}  # fmt: skip
