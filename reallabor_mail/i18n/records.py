"""Sentences the program writes into its records in English and shows staff in their language.

The send ledger's ``reply`` of a row and a run's stop reason are kept in English, so the record reads the
same whoever sent (and a server's own reply, ``550 5.1.1 …``, stays as the server said it). Every sentence
we write there ourselves is a :class:`Record` of this module; :func:`shown` finds the one a stored text was
made from and says it in the staff language, its values shown the same way (a record may hold another:
``not sent: {reason}``). A text no record made (a server's reply) is shown unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from reallabor_mail.i18n.messages import N_, _

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Record:
    """One English sentence with ``{placeholders}``, as written into a record (its msgid in the catalogs)."""

    template: str
    values: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(_PLACEHOLDER.findall(self.template)))

    def __call__(self, **values: object) -> str:
        """The English text to store."""
        return self.template.format(**values)

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        parts = _PLACEHOLDER.split(self.template)  # literal, name, literal, name, …, literal
        return re.compile("".join(
            re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts)
        ), re.DOTALL)  # fmt: skip


# delivery/engine.py: why a run stopped early, and the rows it did not hand over
INTERRUPTED = Record(N_("stopped by Ctrl-C: no new message was started; the messages in flight were finished"))
ABANDONED = Record(N_("Ctrl-C pressed twice while the server had the message: it may or may not have arrived"))
FAILED_IN_ROW = Record(N_("the server failed {count} times in a row (last: {reply})"))
NOT_SENT = Record(N_("not sent: {reason}"))
SUPPRESSED = Record(N_("not sent: unsubscribed, erased or suppressed after the send began"))
DOMAIN_REFUSED = Record(N_("not sent: {domain} refused our mail earlier in this run ({reply})"))
RUN_STOPPED = Record(N_("not sent: the run was stopped"))
SENDER_REFUSED = Record(N_("not sent: the server refused our sender address: {reply}"))
DOMAIN_BLOCKED = Record(N_("{domain} blocked: {reply}"))
# delivery/transport.py: what happened on the connection when the server gave no usable reply
HANDED_OVER = Record(N_("the message was handed over, then {why}: it may or may not have arrived"))
HANDED_OVER_SILENT = Record(N_("the message was handed over, then no reply within {seconds} s: it may or may not "
                               "have arrived"))  # fmt: skip
HANDED_OVER_CLOSED = Record(N_("the message was handed over, then the server closed the connection: it may or may "
                               "not have arrived"))  # fmt: skip  # HANDED_OVER with CLOSED, as one sentence
CLOSED = Record(N_("the server closed the connection"))
CLOSED_AFTER_GREETING = Record(N_("the server closed the connection after the greeting"))
GONE = Record(N_("the connection is closed"))
CONNECTION_FAILED = Record(N_("connection failed: {why}"))
EARLIER_REFUSED = Record(N_("5.5.1 not sent: an earlier command was refused"))

RECORDS = (
    INTERRUPTED, ABANDONED, FAILED_IN_ROW, SUPPRESSED, DOMAIN_REFUSED, RUN_STOPPED, SENDER_REFUSED, NOT_SENT,
    DOMAIN_BLOCKED, HANDED_OVER_SILENT, HANDED_OVER_CLOSED, HANDED_OVER, CLOSED, CLOSED_AFTER_GREETING, GONE,
    CONNECTION_FAILED, EARLIER_REFUSED,
)  # fmt: skip  # the more specific first: "not sent: {reason}" would match the others' texts too
_CODE = re.compile(r"(\d{3}) (.*)", re.DOTALL)


def shown(text: str) -> str:
    """A stored record text in the staff language; a text we did not write (a server's reply) as it is."""
    code = _CODE.fullmatch(text)  # a Reply with a code: ``503 5.5.1 not sent: …``
    if code is not None:
        rest = shown(code[2])
        return text if rest == code[2] else f"{code[1]} {rest}"
    for record in RECORDS:
        found = record.pattern.fullmatch(text)
        if found is not None:
            values = {name: _value(found[name]) for name in record.values}
            return _(record.template, **values)
    return text


def _value(text: str) -> object:
    return int(text) if text.isdigit() else shown(text)
