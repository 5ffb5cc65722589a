"""Only ``site.base_url``'s host is served, no redirect is built from the Host header, and a valid
token has exactly one spelling (issue 12)."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from reallabor_mail.recipients import links
from reallabor_mail.recipients import store as rcp
from reallabor_mail.recipients.person import Recipient
from reallabor_mail.recipients.tokens import InvalidToken, make_token, read_token

from .conftest import SECRET, START, Setup

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("path", ["/subscribe", "/", "/newsletters/2023-3/", "/newsletters/2023-3"])
async def test_another_host_is_refused(client: httpx.AsyncClient, path: str) -> None:
    answer = await client.get(path, headers={"Host": "evil.example"})
    assert answer.status_code == 400 and "evil.example" not in answer.headers.get("location", "")
    assert (await client.get(path)).status_code in (200, 307)


async def test_folder_redirect_is_by_path_only(client: httpx.AsyncClient) -> None:
    answer = await client.get("/newsletters/2023-3", headers={"Host": "testserver:8443"})
    assert answer.status_code == 307 and answer.headers["location"] == "/newsletters/2023-3/"
    sneaky = await client.get("//evil.example/newsletters/2023-3")
    assert not sneaky.headers.get("location", "/").startswith("//")


def spellings(token: str) -> list[str]:
    """Other spellings that a lenient base64 decoder turns into the same bytes."""
    payload, signature = token.split(".")
    last = signature[-1]
    flipped = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = flipped.index(last)
    sibling = flipped[index ^ 1]  # differs only in the unused low bits of the last sextet (43 chars: 2 bits)
    return [
        f"{payload}.{signature}=",  # padded
        f"{payload}=.{signature}",
        f"{payload}.{signature[:-1]}{sibling}",
        f"{payload}.{signature.replace('-', '+').replace('_', '/')}" if set("-_") & set(signature) else "",
        f"{payload}.{signature[:5]}*{signature[5:]}",  # a stray character base64 decoders skip
        f"{payload[:3]}\n{payload[3:]}.{signature}",
    ]


def test_a_token_has_one_spelling() -> None:
    now = START
    token = make_token(SECRET, "unsubscribe", {"e": "anna@example.org", "l": "newsletter"})
    assert read_token(SECRET, "unsubscribe", token, now=now) == {"e": "anna@example.org", "l": "newsletter"}
    others = [s for s in spellings(token) if s]
    assert len(others) >= 5
    for other in others:
        with pytest.raises(InvalidToken):
            read_token(SECRET, "unsubscribe", other, now=now + dt.timedelta(seconds=1))


async def test_another_spelling_of_a_link_changes_nothing(setup: Setup, client: httpx.AsyncClient) -> None:
    rcp.add_recipient(setup.db(), Recipient("anna@example.org"), "newsletter", status="subscribed", source="test",
                      now=START)  # fmt: skip
    url = links.unsubscribe_url(setup.config.site, "anna@example.org", "newsletter", SECRET)
    base, token = url.rsplit("/", 1)
    for other in (s for s in spellings(token) if s and "\n" not in s):
        answer = await client.post(f"{base}/{other}", data={"List-Unsubscribe": "One-Click"})
        assert answer.status_code in (400, 405), other  # a "/" makes it another path
    assert setup.statuses("anna@example.org") == {"newsletter": "subscribed"}
