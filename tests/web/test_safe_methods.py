"""Only POST changes state: link scanners send GET and HEAD to every link in a mail (issue 12, HIGH).

Before, Starlette answered HEAD with the GET route and the handlers treated every method that was not
GET as the button's POST: a HEAD confirmed sign-ups and unsubscribed people (11 of 11 links).
"""

from __future__ import annotations

import httpx
import pytest

from reallabor_mail.db import tables
from reallabor_mail.recipients import store as rcp
from reallabor_mail.recipients.links import unsubscribe_url
from reallabor_mail.recipients.person import Recipient

from .conftest import FORM, SECRET, START, Setup, link_in

pytestmark = pytest.mark.anyio


def dump(setup: Setup) -> list[tuple[str, list[tuple[object, ...]]]]:
    """Every table's rows, in the same order on every back end."""
    conn = setup.db()
    return [(name, sorted((tuple(row) for row in conn.execute(f"SELECT * FROM {name}")), key=repr))
            for name in tables(conn)]  # fmt: skip


async def test_get_and_head_on_every_link_change_nothing(setup: Setup, client: httpx.AsyncClient) -> None:
    conn = setup.db()
    rcp.add_recipient(conn, Recipient("olena@hromada.example.org", language="uk"), "newsletter",
                      status="subscribed", source="test", now=START)  # fmt: skip
    rcp.add_recipient(conn, Recipient("erased@example.org"), "newsletter", status="subscribed", source="test",
                      now=START)  # fmt: skip
    rcp.erase(conn, "erased@example.org", SECRET, now=START)
    await client.post("/subscribe", data=FORM)
    await client.post("/subscribe", data={**FORM, "email": "erased@example.org"})  # a stranger signs up an erased one
    confirm_links = [link_in(m.message, "confirm") for m in await setup.delivered()]
    unsubscribe = unsubscribe_url(setup.config.site, "olena@hromada.example.org", "newsletter", SECRET)
    links = [*confirm_links, unsubscribe, unsubscribe + "?lang=de"]
    assert len(links) == 4
    before = dump(setup)

    for url in links:
        for method in ("HEAD", "GET"):
            answer = await client.request(method, url, headers={"User-Agent": "Mimecast link scanner"})
            assert answer.status_code == 200, (method, url)
    assert dump(setup) == before  # not one row changed: no consent recorded, nobody unsubscribed
    assert rcp.is_suppressed(conn, "erased@example.org", SECRET)  # the erased address stays suppressed

    one_click = await client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})  # RFC 8058 still works
    assert one_click.status_code == 200 and setup.statuses("olena@hromada.example.org") == {
        "newsletter": "unsubscribed"
    }
    assert (await client.post(confirm_links[0])).status_code == 200
    assert setup.statuses("anna.mueller@dortmund.de") == {"newsletter": "subscribed"}


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_other_methods_are_refused(setup: Setup, client: httpx.AsyncClient, method: str) -> None:
    rcp.add_recipient(setup.db(), Recipient("anna@example.org"), "newsletter", status="subscribed", source="test",
                      now=START)  # fmt: skip
    url = unsubscribe_url(setup.config.site, "anna@example.org", "newsletter", SECRET)
    answer = await client.request(method, url, content=b"List-Unsubscribe=One-Click")
    assert answer.status_code == 405
    assert setup.statuses("anna@example.org") == {"newsletter": "subscribed"}
