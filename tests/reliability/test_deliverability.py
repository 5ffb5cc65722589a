"""Deliverability: SpamAssassin scores, DKIM over the unsubscribe headers, size under Gmail's clipping."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from email import message_from_bytes, policy
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from reallabor_mail.mail.dkim import DkimSigner
from reallabor_mail.publish.build import build

from ..conftest import SAMPLE_CONTENT, TEMPLATES, TODAY
from .conftest import Row

MAX_SCORE = 1.0
MAX_HTML_PART = 95 * 1024


@pytest.fixture(scope="module")
def messages(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("deliver") / "build"
    build(SAMPLE_CONTENT, TEMPLATES, out, today=TODAY)
    return sorted(out.rglob("preview*.eml"))


def spam_score(path: Path) -> tuple[float, list[str]]:
    result = subprocess.run(["spamassassin", "-L", "-t"], input=path.read_bytes(), capture_output=True, timeout=120)
    report = result.stdout.decode("utf-8", "replace")
    status = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+).*?tests=(.*?)autolearn", report, re.M | re.S)
    assert status, report[-2000:]
    rules = [r.strip() for r in status.group(2).replace("\n", "").split(",") if r.strip() and r.strip() != "none"]
    return float(status.group(1)), rules


@pytest.mark.skipif(shutil.which("spamassassin") is None, reason="apt-get install spamassassin")
def test_spamassassin_scores(messages: list[Path], row: Row) -> None:
    scored = {path: spam_score(path) for path in messages}
    worst = max(score for score, _ in scored.values())
    rules = sorted({rule for _, hits in scored.values() for rule in hits})
    over = [f"{p.parent.name}/{p.name}: {s}" for p, (s, _) in scored.items() if s > MAX_SCORE]
    row("Deliverability", f"SpamAssassin (local rules) on every sample preview.eml; worst score {worst}; rules hit: "
        f"{', '.join(rules) or 'none'}", len(scored), len(over))  # fmt: skip
    assert not over, over


def test_html_parts_stay_under_gmail_clipping(messages: list[Path], row: Row) -> None:
    sizes = {}
    for path in messages:
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        html = next(p for p in msg.walk() if p.get_content_type() == "text/html")
        sizes[path] = len(html.get_payload().encode("ascii"))  # the encoded part as it travels
    over = [p for p, size in sizes.items() if size > MAX_HTML_PART]
    row("Deliverability", f"encoded HTML part of every sample message (largest {max(sizes.values()) // 1024} KB, "
        f"limit 95 KB)", len(sizes), len(over))  # fmt: skip
    assert not over


def test_dkim_signatures_verify_and_cover_one_click(messages: list[Path], tmp_path: Path, row: Row) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    signer = DkimSigner("news2026", "auslandsgesellschaft.de", pem)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"news2026._domainkey.auslandsgesellschaft.de." else b""

    failed = 0
    for path in messages:
        signed = signer.sign(path.read_bytes())
        header = signed.split(b"\r\n\r\n", 1)[0].replace(b"\r\n\t", b"").replace(b"\r\n ", b" ")
        signed_headers = re.search(rb"h=([^;]+);", header)
        covers = signed_headers is not None and {b"list-unsubscribe", b"list-unsubscribe-post"} <= {
            h.strip().lower() for h in signed_headers.group(1).split(b":")
        }
        if not (dkim.verify(signed, dnsfunc=dns) and covers):
            failed += 1
    row("Deliverability", "DKIM-sign every sample message, verify with dkimpy; List-Unsubscribe(-Post) signed",
        len(messages), failed)  # fmt: skip
    assert failed == 0
