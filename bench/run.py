"""Benchmark of the send path (issue 4): one command, a table, and the same table in BENCHMARKS.md.

    python bench/run.py            # full run (about 5 minutes; the 100,000-recipient memory run is most of it)
    python bench/run.py --quick    # smaller numbers, no BENCHMARKS.md update

Measures, with the sample content of this repository:

1. messages assembled per second (newsletter and invitation, German and Ukrainian recipients), and the
   same through the reference path (``build_message`` + ``as_bytes`` per recipient) for the ratio;
2. messages per second sent to Postfix's ``smtp-sink`` on 127.0.0.1 with 1, 4 and 8 connections
   (the send phase after the plan: ledger rows, composing, SMTP, ledger commits);
3. the same 1,000 recipients and content sent by the peer tool ``mailmerge`` (``--no-dry-run
   --no-limit``) and by ``reallabor-mail send`` (both end to end, as commands);
4. peak memory of ``reallabor-mail send`` for 100,000 recipients (to smtp-sink, 4 connections).

Needs ``smtp-sink`` (apt-get install postfix; the daemon is never started) and ``pip install mailmerge``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reallabor_mail.db import connect, transaction  # noqa: E402
from reallabor_mail.delivery.campaign import SendRequest, execute, prepare  # noqa: E402
from reallabor_mail.delivery.ledger import Entry  # noqa: E402
from reallabor_mail.i18n.greetings import greeting  # noqa: E402
from reallabor_mail.mail.message import Campaign, as_bytes, build_message  # noqa: E402
from reallabor_mail.recipients import links  # noqa: E402
from reallabor_mail.recipients import store as recipients  # noqa: E402
from reallabor_mail.recipients.person import Recipient  # noqa: E402
from reallabor_mail.settings import Settings  # noqa: E402

NEWSLETTER = ROOT / "content" / "newsletters" / "2023-3.md"
EVENT = ROOT / "content" / "events" / "2024-06-19-abschlussveranstaltung.md"
SECRET = "benchmark-secret-0123456789abcdef"
CLI = [sys.executable, "-c", "from reallabor_mail.cli.main import run; run()"]
NOW = dt.datetime(2023, 10, 1, 9, 0, tzinfo=dt.UTC)
GERMAN = ["Müller", "Schmidt", "Schäfer", "Brockmann", "Pfundheller", "Özdemir", "Weiß", "Kowalski"]
UKRAINIAN = ["Коваль", "Шевченко", "Бойко", "Ткаченко", "Кравченко", "Олійник"]
FIRST_DE = ["Anke", "Jörg", "Kim", "Sabine", "Ülrich", "Petra"]
FIRST_UK = ["Олена", "Іван", "Андрій", "Марія", "Тетяна", "Юрій"]


def person(i: int) -> Recipient:
    """A plausible list: two thirds German, one third Ukrainian, some without salutation or name."""
    if i % 3 == 2:
        return Recipient(
            f"p{i:06d}@gromada-{i % 97}.example.ua",
            "Frau" if i % 2 else "Herr",
            None,
            FIRST_UK[i % 6],
            UKRAINIAN[i % 6],
            "Громада",
            "uk",
        )
    if i % 11 == 0:
        return Recipient(f"info{i:06d}@stadt-{i % 89}.example.de", language="de")
    return Recipient(
        f"p{i:06d}@stadt-{i % 89}.example.de",
        "Frau" if i % 2 else "Herr",
        "Dr." if i % 5 == 0 else None,
        FIRST_DE[i % 6],
        GERMAN[i % 8],
        "Stadt",
        "de",
    )


def make_state(path: Path, count: int, list_name: str = "newsletter") -> None:
    conn = connect(path)
    with transaction(conn):
        for i in range(count):
            recipients.add_recipient(conn, person(i), list_name, status="subscribed", source="bench", now=NOW)
    conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sink:
    port: int
    out: Path

    def count(self) -> int:
        found = re.findall(r"mesg=(\d+)", self.out.read_text(errors="replace").replace("\r", "\n"))
        return int(found[-1]) if found else 0


@contextmanager
def smtp_sink(workdir: Path) -> Iterator[Sink]:
    """Postfix's smtp-sink on 127.0.0.1: accepts and counts (-c), never delivers."""
    binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    port, out = free_port(), workdir / "sink.out"
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    with out.open("wb") as log:
        process = subprocess.Popen([binary, *user, "-c", f"127.0.0.1:{port}", "256"], stdout=log, stderr=log)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    try:
        yield Sink(port, out)
    finally:
        process.terminate()
        process.wait()


def smtp_env(port: int, state: Path) -> dict[str, str]:
    return {
        **os.environ,
        "REALLABOR_SECRET": SECRET,
        "REALLABOR_STATE": str(state),
        "REALLABOR_SMTP_HOST": "127.0.0.1",
        "REALLABOR_SMTP_PORT": str(port),
        "REALLABOR_SMTP_SECURITY": "none",
        "PYTHONPATH": str(ROOT),
    }


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --- 1. assembly ---------------------------------------------------------------------------------------


def assembly_rates(workdir: Path, count: int) -> dict[str, float]:
    """Messages per second from the prepared composer (render once, stamp per person) and from the reference."""
    rates: dict[str, float] = {}
    with environment({"REALLABOR_SECRET": SECRET}):
        for name, file in (("newsletter", NEWSLETTER), ("invitation", EVENT)):
            request = SendRequest(file, outbox=workdir / "outbox", state=workdir / f"assembly-{name}.db")
            prepared = prepare(request, settings=Settings.from_environ())
            entries = [Entry(i, "newsletter", person(i), 0) for i in range(count)]
            started = time.perf_counter()
            size = sum(len(prepared.composer(entry)[1]) for entry in entries)
            rates[name] = count / (time.perf_counter() - started)
            rates[f"{name} bytes"] = size / count
        reference = SendRequest(NEWSLETTER, outbox=workdir / "outbox", state=workdir / "ref.db")
        composer = prepare(reference, settings=Settings.from_environ()).composer
        site, campaign = composer.site, Campaign("newsletter:2023-3", "newsletter", NOW)
        sample = [person(i) for i in range(max(100, count // 20))]
        started = time.perf_counter()
        for p in sample:
            as_bytes(
                build_message(
                    site,
                    composer.email(composer.language(p)),
                    p,
                    campaign,
                    secret=b"s",
                    unsubscribe_url=links.unsubscribe_url(site, p.email, "newsletter", b"s"),
                )
            )
        rates["reference"] = len(sample) / (time.perf_counter() - started)
    return rates


# --- 2. sending to smtp-sink ------------------------------------------------------------------------------


def send_rate(workdir: Path, sink: Sink, count: int, connections: int, file: Path = NEWSLETTER) -> float:
    """The send phase (after the plan) in-process: ledger rows, composing, SMTP and commits."""
    state = workdir / f"send-{connections}-{file.stem}.db"
    make_state(state, count, "newsletter" if file == NEWSLETTER else "reallabor")
    before = sink.count()
    with environment(smtp_env(sink.port, state)):
        prepared = prepare(SendRequest(file, connections=connections, state=state), settings=Settings.from_environ())
        started = time.perf_counter()
        report = execute(prepared)
        elapsed = time.perf_counter() - started
    time.sleep(0.3)
    accepted = sink.count() - before
    if report.sent != count or accepted != count:
        raise SystemExit(f"send with {connections} connections: {report.sent} sent, smtp-sink counted {accepted}")
    return count / elapsed


# --- 3. mailmerge on the same work -------------------------------------------------------------------------


def mailmerge_files(workdir: Path, count: int, port: int) -> Path:
    """Template, database and server config for mailmerge: our rendered email, our greetings and links."""
    folder = workdir / "mailmerge"
    folder.mkdir()
    with environment({"REALLABOR_SECRET": SECRET}):
        request = SendRequest(NEWSLETTER, outbox=workdir / "outbox", state=workdir / "mm.db")
        composer = prepare(request, settings=Settings.from_environ()).composer
    email = composer.email("de")
    site = composer.site

    def jinja(body: str) -> str:
        raw = body.replace("__RLM_GREETING__", "\x00greeting\x00").replace("__RLM_UNSUBSCRIBE__", "\x00unsubscribe\x00")
        parts = raw.split("\x00")
        return "".join("{{ " + p + " }}" if i % 2 else "{% raw %}" + p + "{% endraw %}" for i, p in enumerate(parts))

    template = (
        f"TO: {{{{email}}}}\nSUBJECT: {email.subject}\nFROM: {site.sender.name} <{site.sender.email}>\n"
        f"Reply-To: {site.reply_to}\nList-Unsubscribe: <{{{{unsubscribe}}}}>\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\nMIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="bench-boundary"\n\n'
        '--bench-boundary\nContent-Type: text/plain; charset="utf-8"\n\n'
        f"{jinja(email.text)}\n"
        '--bench-boundary\nContent-Type: text/html; charset="utf-8"\n\n'
        f"{jinja(email.html)}\n"
        "--bench-boundary--\n"
    )
    (folder / "template.txt").write_text(template, encoding="utf-8")
    with (folder / "database.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "greeting", "unsubscribe"])
        for i in range(count):
            p = person(i)
            p = Recipient(p.email, p.salutation, p.title, p.first_name, p.last_name, p.organisation, "de")
            writer.writerow([p.email, greeting(p, "de"), links.unsubscribe_url(site, p.email, "newsletter", b"s")])
    (folder / "server.conf").write_text(f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\nsecurity = Never\n")
    return folder


def versus_mailmerge(workdir: Path, sink: Sink, count: int) -> tuple[float, dict[int, float]]:
    """Seconds for mailmerge and for ``reallabor-mail send`` (1 and 4 connections), all as commands."""
    folder = mailmerge_files(workdir, count, sink.port)
    mailmerge = shutil.which("mailmerge") or str(Path(sys.executable).parent / "mailmerge")
    before = sink.count()
    started = time.perf_counter()
    subprocess.run(
        [
            mailmerge,
            "--no-dry-run",
            "--no-limit",
            "--template",
            "template.txt",
            "--database",
            "database.csv",
            "--config",
            "server.conf",
            "--output-format",
            "raw",
        ],
        cwd=folder,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    theirs = time.perf_counter() - started
    time.sleep(0.3)
    if sink.count() - before != count:
        raise SystemExit(f"mailmerge: smtp-sink counted {sink.count() - before} of {count}")
    ours: dict[int, float] = {}
    for connections in (1, 4):
        state = workdir / f"ours-{connections}.db"
        make_state(state, count)
        before = sink.count()
        started = time.perf_counter()
        subprocess.run(
            [*CLI, "send", str(NEWSLETTER), "--yes", "--connections", str(connections)],
            env=smtp_env(sink.port, state),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        ours[connections] = time.perf_counter() - started
        time.sleep(0.3)
        if sink.count() - before != count:
            raise SystemExit(f"reallabor-mail: smtp-sink counted {sink.count() - before} of {count}")
    return theirs, ours


# --- 4. memory at 100,000 recipients ------------------------------------------------------------------------


def tree_rss(pid: int) -> int:
    """Resident memory (KiB) of a process and its children, from /proc."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
            for task in Path(f"/proc/{current}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, AttributeError):
            continue
    return total


def peak_memory(workdir: Path, sink: Sink, count: int) -> tuple[float, float, float]:
    """Peak RSS (MiB) of the sending process, of its compose process, and seconds, for ``count`` recipients."""
    state = workdir / "memory.db"
    make_state(state, count)
    before = sink.count()
    started = time.perf_counter()
    process = subprocess.Popen(
        [*CLI, "send", str(NEWSLETTER), "--yes", "--connections", "4"],
        env=smtp_env(sink.port, state),
        stdout=subprocess.DEVNULL,
    )
    main_peak = tree_peak = 0
    while process.poll() is None:
        with contextlib.suppress(OSError, AttributeError):
            status = Path(f"/proc/{process.pid}/status").read_text()
            main_peak = max(main_peak, int(re.search(r"VmHWM:\s+(\d+)", status).group(1)))  # type: ignore[union-attr]
        tree_peak = max(tree_peak, tree_rss(process.pid))
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    time.sleep(0.3)
    if process.returncode != 0 or sink.count() - before != count:
        raise SystemExit(f"memory run: exit {process.returncode}, smtp-sink counted {sink.count() - before}")
    return main_peak / 1024, tree_peak / 1024, elapsed


# --- report ---------------------------------------------------------------------------------------------------


def machine() -> str:
    cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    memory = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    return (
        f"{cpu.group(1) if cpu else platform.processor()}, {os.cpu_count()} cores, "
        f"{int(memory.group(1)) // 1024 // 1024 if memory else '?'} GiB RAM; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; SQLite state file on local disk (synchronous=FULL, WAL)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small numbers, do not update BENCHMARKS.md")
    args = parser.parse_args()
    sends, versus, memory = (1000, 300, 5000) if args.quick else (10_000, 1000, 100_000)
    console = Console()
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="rlm-bench-") as tmp, smtp_sink(Path(tmp)) as sink:
        work = Path(tmp)
        console.print("assembling …")
        rates = assembly_rates(work, 2000 if args.quick else 5000)
        rows += [
            (
                "assembled/s, newsletter (de+uk)",
                f"{rates['newsletter']:,.0f}",
                "",
                f"{rates['newsletter'] / rates['reference']:.0f}× build_message per person "
                f"({rates['reference']:,.0f}/s)",
            ),
            ("assembled/s, invitation (de+uk, own ICS each)", f"{rates['invitation']:,.0f}", "", ""),
        ]
        for connections in (1, 4, 8):
            console.print(f"sending {sends:,} to smtp-sink over {connections} connection(s) …")
            rate = send_rate(work, sink, sends, connections)
            target = "≥ 1,000/s" if connections == 4 else ""
            status = ("met" if rate >= 1000 else f"missed by {1 - rate / 1000:.0%}") if target else ""
            rows.append((f"sent/s to smtp-sink, newsletter, {connections} conn.", f"{rate:,.0f}", target, status))
        console.print(f"sending {sends // 5:,} invitations over 4 connections …")
        rate = send_rate(work, sink, sends // 5, 4, EVENT)
        rows.append(("sent/s to smtp-sink, invitation, 4 conn.", f"{rate:,.0f}", "", ""))
        console.print(f"mailmerge and reallabor-mail send, {versus:,} recipients each …")
        theirs, ours = versus_mailmerge(work, sink, versus)
        rows.append(
            (f"mailmerge, {versus:,} recipients (command)", f"{theirs:.1f} s ({versus / theirs:,.0f}/s)", "", "")
        )
        for connections, seconds in ours.items():
            ratio = theirs / seconds
            rows.append(
                (
                    f"reallabor-mail send, same (command, {connections} conn.)",
                    f"{seconds:.1f} s ({versus / seconds:,.0f}/s)",
                    "≥ 10× mailmerge",
                    f"{ratio:.1f}× ({'met' if ratio >= 10 else f'missed by {1 - ratio / 10:.0%}'})",
                )
            )
        console.print(f"peak memory, {memory:,} recipients (takes a while) …")
        main_mib, tree_mib, seconds = peak_memory(work, sink, memory)
        rows += [
            (
                f"peak RSS, sending process, {memory:,} recipients",
                f"{main_mib:,.0f} MiB",
                "< 200 MB",
                "met" if main_mib * 1.048576 < 200 else f"missed by {main_mib * 1.048576 / 200 - 1:.0%}",
            ),
            (
                "  … with its compose process (sum of RSS)",
                f"{tree_mib:,.0f} MiB",
                "",
                f"{memory / seconds:,.0f}/s end to end",
            ),
        ]
    table = ["| measurement | result | target | ratio / status |", "|---|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    text = "\n".join(table)
    console.print(text, highlight=False)
    if not args.quick:
        write_benchmarks(text, machine())


def write_benchmarks(table: str, where: str) -> None:
    """Replace the generated section of BENCHMARKS.md (the prose around it is kept)."""
    path = ROOT / "BENCHMARKS.md"
    section = (
        f"<!-- bench:start (written by bench/run.py) -->\nMachine: {where}. "
        f"Run: {dt.date.today().isoformat()}.\n\n{table}\n<!-- bench:end -->"
    )
    old = (
        path.read_text(encoding="utf-8")
        if path.exists()
        else "# Benchmarks\n\n<!-- bench:start --><!-- bench:end -->\n"
    )
    new = re.sub(r"<!-- bench:start.*?<!-- bench:end -->", lambda _: section, old, flags=re.S)
    path.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    main()
