"""Load: ``send`` to 5,000 recipients while a second process imports 1,000 more
(``recipients import``) and a third unsubscribes 100 through the one-click endpoint of the public
app under a real uvicorn server.

"Honoured" is checked against the order the SMTP server saw: the sending process checks each
recipient just before composing the message, which is at most LOOKAHEAD messages before the server
receives it (two compose batches, the queue, one message per connection). A message that arrives
more than LOOKAHEAD messages after its recipient's unsubscribe was confirmed was composed after the
confirmation: a broken promise. Times are CLOCK_MONOTONIC, which all processes on the machine share.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reallabor_mail.content.loader import load_site
from reallabor_mail.db import connect
from reallabor_mail.delivery.engine import BATCH
from reallabor_mail.delivery.transport import SmtpSettings, SmtpTransport
from reallabor_mail.recipients import links
from reallabor_mail.recipients import store as recipients
from reallabor_mail.web.public import PublicConfig, public_app
from tests.conftest import ROOT, TEMPLATES, free_port, serving
from tests.reliability.conftest import Row
from tests.reliability.harness import CLI, SECRET, person, populate, send_command, send_env, serving_smtp

COUNT, IMPORTED, LEAVING, CONNECTIONS = 5000, 1000, 100, 2
LOOKAHEAD = 2 * BATCH + 4 * CONNECTIONS + CONNECTIONS

UNSUBSCRIBER = """
import sys, time, httpx
with httpx.Client(timeout=30) as http:
    for line in sys.stdin:
        email, url = line.split()
        time.sleep(0.03)
        reply = http.post(url, data={"List-Unsubscribe": "One-Click"})
        print(email, reply.status_code, time.monotonic(), flush=True)
"""


@dataclass
class Arrivals:
    """aiosmtpd handler keeping only who got a message and when (5,000 bodies would not fit)."""

    order: list[tuple[str, float]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.monotonic()
        self.order.extend((rcpt, now) for rcpt in envelope.rcpt_tos)
        return "250 2.0.0 OK"


def write_csv(path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, delimiter=";")
        out.writerow(["E-Mail", "Anrede", "Vorname", "Nachname", "Sprache"])
        for i in range(COUNT, COUNT + IMPORTED):
            p = person(i)
            out.writerow([p.email, p.salutation, p.first_name, p.last_name, p.language])


def test_send_while_others_import_and_unsubscribe(tmp_path: Path, content_copy: Path, row: Row) -> None:
    state = tmp_path / "state.sqlite3"
    populate(state, range(COUNT))
    write_csv(tmp_path / "more.csv")
    leaving = [person(i).email for i in range(25, COUNT, COUNT // LEAVING)]
    arrivals = Arrivals()
    started = time.monotonic()
    with serving_smtp(arrivals) as smtp_port:
        port = free_port()
        site = load_site(content_copy).model_copy(update={"base_url": f"http://127.0.0.1:{port}"})
        transport = SmtpTransport(SmtpSettings("127.0.0.1", smtp_port, "none"))
        config = PublicConfig(site=site, templates=TEMPLATES, state=state, secret=SECRET.encode(),
                              lists=("newsletter",), transport=transport)  # fmt: skip
        with serving(public_app(config), port) as base:
            env = send_env(state, smtp_port)
            sender = subprocess.Popen(send_command(content_copy, "--connections", str(CONNECTIONS)), env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
            while not arrivals.order and sender.poll() is None:
                time.sleep(0.01)
            importer = subprocess.Popen([*CLI, "recipients", "import", str(tmp_path / "more.csv"), "--list",
                                         "newsletter", "--by", "load test"], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)  # fmt: skip
            key = SECRET.encode()
            paths = {e: urlsplit(links.unsubscribe_url(site, e, "newsletter", key)).path for e in leaving}
            urls = "".join(f"{email} {base}{path}\n" for email, path in paths.items())
            unsubscriber = subprocess.run([sys.executable, "-c", UNSUBSCRIBER], input=urls, capture_output=True,
                                          text=True, timeout=300, cwd=ROOT)  # fmt: skip
            imported = importer.communicate(timeout=300)
            _, send_errors = sender.communicate(timeout=600)
            first_run = len(arrivals.order)
            again = subprocess.run(send_command(content_copy), env=env, capture_output=True, text=True, timeout=600)
    minutes = (time.monotonic() - started) / 60
    assert sender.returncode == 0, send_errors
    assert importer.returncode == 0 and f"{IMPORTED:,} added" in imported[0], imported
    assert unsubscriber.returncode == 0 and again.returncode == 0, (unsubscriber.stderr, again.stderr)

    confirmed = {}
    for line in unsubscriber.stdout.splitlines():
        email, status, at = line.split()
        assert status == "200", line
        confirmed[email] = float(at)
    first = arrivals.order[:first_run]
    position = {email: n for n, (email, _) in enumerate(first)}
    received = Counter(email for email, _ in arrivals.order)
    honoured, before, in_flight, broken = 0, 0, 0, []
    for email, moment in confirmed.items():
        if email not in position:
            honoured += 1
            continue
        n = position[email]
        if first[n][1] <= moment:
            before += 1  # its message went out before the unsubscribe was confirmed
        elif sum(1 for _, t in first[: n + 1] if t > moment) > LOOKAHEAD:
            broken.append(email)  # composed after the confirmation
        else:
            in_flight += 1  # already composed and queued when the confirmation came
    conn = connect(state)
    subscribed = sum(1 for _ in recipients.subscribers(conn, "newsletter"))
    expected_total = COUNT + IMPORTED - honoured  # those who left before their turn get none
    counts_wrong = int(received.total() != expected_total) + int(subscribed != COUNT + IMPORTED - LEAVING)
    duplicates = sum(n - 1 for n in received.values() if n > 1)
    row(
        "Load",
        f"`send` of {COUNT:,} messages ({CONNECTIONS} connections) while `recipients import` adds {IMPORTED:,} "
        f"and a third process unsubscribes {LEAVING} via one-click POST (uvicorn); then `send` again",
        1,
        len(broken) + duplicates + counts_wrong,
        f"{honoured} unsubscribes honoured, {before} came after the message, {in_flight} after it was composed "
        f"(≤ {LOOKAHEAD} messages ahead), {len(broken)} broken; first run {first_run:,} + second run "
        f"{received.total() - first_run:,} = "
        f"{received.total():,} messages (expected {expected_total:,}), {duplicates} duplicates, {subscribed:,} "
        f"still subscribed; {minutes:.1f} min",
    )
    assert broken == [] and duplicates == 0
    assert subscribed == COUNT + IMPORTED - LEAVING
    assert received.total() == expected_total
