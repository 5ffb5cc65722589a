"""Benchmark of speed at the limit (issues 4 and 16): one command, a table, and the same table in BENCHMARKS.md.

    python bench/run.py            # full run (about 10 minutes; the 100,000-recipient memory run is most of it)
    python bench/run.py --quick    # smaller numbers, no BENCHMARKS.md update
    python bench/run.py --only startup,preview   # only those rows, printed (no BENCHMARKS.md update)

Every target is a ratio against a ceiling or a peer measured in the same run, with the sample content:

1. the ceiling: Postfix's own load generator ``smtp-source`` → ``smtp-sink``, 62 KB messages, 4 sessions;
2. ``reallabor-mail send`` (the command, end to end) of a newsletter and of an invitation to 10,000 people
   through the same sink, as a share of the ceiling; messages assembled per second in process, and the
   reference path (``build_message`` + ``as_bytes`` per recipient) for the ratio;
3. the same 1,000 recipients and content sent by the peer tool ``mailmerge`` and by ``reallabor-mail send``;
4. peak memory of ``reallabor-mail send`` for 100,000 recipients;
5. ``reallabor-mail --help`` against a bare ``python -c "import click"``; the imports of ``check`` (``-X importtime``);
6. ``build`` of the sample and of a generated ten-year archive (40 issues × 2 languages, 200 events and their
   reports): time per output file, and the archive less its report PDFs against a bare pass of mjml-python plus
   the CSS inliner over the same emails; the PDFs against bare WeasyPrint over the same pages; premailer against
   css-inline on those emails;
7. the preview's reload after saving one file of the archive (the following snapshot, the item and its checks).

Needs ``smtp-sink``/``smtp-source`` (apt-get install postfix; the daemon is never started) and
``pip install -e '.[bench]'`` (mailmerge, css-inline).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import gc
import itertools
import logging
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reallabor_mail.content.loader import load_content  # noqa: E402
from reallabor_mail.db import connect, transaction  # noqa: E402
from reallabor_mail.delivery.campaign import SendRequest, prepare  # noqa: E402
from reallabor_mail.delivery.ledger import Entry  # noqa: E402
from reallabor_mail.i18n.greetings import greeting  # noqa: E402
from reallabor_mail.mail.message import Campaign, as_bytes, build_message  # noqa: E402
from reallabor_mail.publish.build import build, default_templates  # noqa: E402
from reallabor_mail.recipients import links  # noqa: E402
from reallabor_mail.recipients import store as recipients  # noqa: E402
from reallabor_mail.recipients.person import Recipient  # noqa: E402
from reallabor_mail.render import engine  # noqa: E402
from reallabor_mail.settings import Settings  # noqa: E402

NEWSLETTER = ROOT / "content" / "newsletters" / "2023-3.md"
EVENT = ROOT / "content" / "events" / "2024-06-19-abschlussveranstaltung.md"
SECRET = "benchmark-secret-0123456789abcdef"
CLI = [sys.executable, "-c", "from reallabor_mail.cli.main import run; run()"]
NOW = dt.datetime(2023, 10, 1, 9, 0, tzinfo=dt.UTC)
TODAY = dt.date(2023, 10, 1)
CEILING_SIZE = 62 * 1024
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
            state = workdir / f"assembly-{name}.db"
            make_state(state, 1, "newsletter" if file == NEWSLETTER else "reallabor")
            request = SendRequest(file, outbox=workdir / "outbox", state=state)
            prepared = prepare(request, settings=Settings.from_environ())
            entries = [Entry(i, "newsletter", person(i), 0) for i in range(count)]
            started = time.perf_counter()
            size = sum(len(prepared.composer(entry)[1]) for entry in entries)
            rates[name] = count / (time.perf_counter() - started)
            rates[f"{name} bytes"] = size / count
        reference = SendRequest(NEWSLETTER, outbox=workdir / "outbox", state=workdir / "assembly-newsletter.db")
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


# --- 2. sending to smtp-sink, against its ceiling -------------------------------------------------------


def ceiling_rate(sink: Sink, count: int, sessions: int = 4) -> float:
    """Messages per second Postfix's ``smtp-source`` gets into ``smtp-sink``: 62 KB messages, 4 sessions."""
    binary = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    before = sink.count()
    started = time.perf_counter()
    subprocess.run(
        [binary, "-c", "-l", str(CEILING_SIZE), "-m", str(count), "-s", str(sessions),
         "-f", "bench@example.org", "-t", "sink@example.org", f"127.0.0.1:{sink.port}"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    time.sleep(0.3)
    if sink.count() - before != count:
        raise SystemExit(f"smtp-source: smtp-sink counted {sink.count() - before} of {count}")
    return count / elapsed


def send_command(workdir: Path, sink: Sink, count: int, connections: int, file: Path = NEWSLETTER) -> float:
    """Seconds of ``reallabor-mail send`` (start-up, plan, ledger, composing, SMTP), counted at the sink."""
    list_name = "newsletter" if file == NEWSLETTER else "reallabor"
    state = workdir / f"command-{count}-{connections}-{file.stem}.db"
    make_state(state, count, list_name)
    before = sink.count()
    started = time.perf_counter()
    subprocess.run(
        [*CLI, "send", str(file), "--yes", "--connections", str(connections)],
        env=smtp_env(sink.port, state),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - started
    time.sleep(0.3)
    if sink.count() - before != count:
        raise SystemExit(f"reallabor-mail send {file.name}: smtp-sink counted {sink.count() - before} of {count}")
    return elapsed


def fixed_cost(workdir: Path, sink: Sink, count: int, runs: int = 5) -> float:
    """Median seconds of ``reallabor-mail send --limit 1`` to ``count`` subscribers: what a send costs before
    its messages (the ledger gets a row for everyone; one message goes out), each run on a fresh state."""
    state = workdir / f"fixed-{count}.db"
    make_state(state, count)
    times = []
    for run in range(runs):
        copy = workdir / f"fixed-{count}-{run}.db"
        shutil.copy(state, copy)
        before = sink.count()
        started = time.perf_counter()
        subprocess.run([*CLI, "send", str(NEWSLETTER), "--yes", "--limit", "1"], env=smtp_env(sink.port, copy),
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        times.append(time.perf_counter() - started)
        time.sleep(0.3)
        if sink.count() - before != 1:
            raise SystemExit(f"send --limit 1: smtp-sink counted {sink.count() - before} of 1")
    return statistics.median(times)


# --- 3. mailmerge on the same work -------------------------------------------------------------------------


def mailmerge_files(workdir: Path, count: int, port: int) -> Path:
    """Template, database and server config for mailmerge: our rendered email, our greetings and links."""
    folder = workdir / "mailmerge"
    folder.mkdir()
    with environment({"REALLABOR_SECRET": SECRET}):
        state = workdir / "mm.db"
        make_state(state, 1)
        request = SendRequest(NEWSLETTER, outbox=workdir / "outbox", state=state)
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
    ours = {connections: send_command(workdir, sink, count, connections) for connections in (1, 4)}
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


# --- 5. start-up of the command line ------------------------------------------------------------------


def median_seconds(command: list[str], runs: int = 7, **kwargs: object) -> float:
    """The median wall time of a command (a few runs: the machine is shared)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# what the design card's rendering chain imports before any module of ours: the floor under `check`
LIBRARY_FLOOR = (
    "import pydantic, jinja2, premailer, icalendar, markdown_it, babel.dates, yaml, PIL.Image, email_validator"
)


def import_seconds(arguments: list[str]) -> float:
    """Seconds a command spends importing (``-X importtime``: the sum of the top-level imports), median of 5.

    ``arguments`` follow ``python -X importtime``: ``CLI[1:] + ["check"]``, or ``["-c", LIBRARY_FLOOR]``.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    sums = []
    for _ in range(5):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", *arguments],
            env=env, cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        rows = re.findall(r"^import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", result.stderr, flags=re.M)
        sums.append(sum(int(cumulative) for cumulative, _ in rows) / 1e6)
    return statistics.median(sums)


# --- 6. build: the sample and a ten-year archive --------------------------------------------------------


def shifted(text: str, days: int) -> str:
    """A content file with every date and time in it moved by ``days``."""

    def move(match: re.Match[str]) -> str:
        return (dt.date.fromisoformat(match.group(0)) + dt.timedelta(days=days)).isoformat()

    return re.sub(r"\b\d{4}-\d{2}-\d{2}\b", move, text)


def ten_year_archive(target: Path, issues: int = 40, events: int = 200) -> Path:
    """The sample content grown to ten years: ``issues`` newsletters (each German and Ukrainian), ``events`` events."""
    shutil.copytree(ROOT / "content", target)
    for folder in ("newsletters", "events", "reports"):
        for old in (target / folder).glob("*.md"):
            old.unlink()
    source = ROOT / "content" / "newsletters"
    german, ukrainian = (source / "2023-3.md").read_text("utf-8"), (source / "2023-3.uk.md").read_text("utf-8")
    first = dt.date(2014, 1, 5)
    per_year: dict[int, int] = {}
    for n in range(issues):
        date = first + dt.timedelta(days=n * 91)
        days = (date - dt.date(2023, 10, 5)).days
        number = per_year[date.year] = per_year.get(date.year, 0) + 1
        stem = f"{date.year}-{number}"
        for text, suffix in ((german, ".md"), (ukrainian, ".uk.md")):
            text = shifted(text, days).replace("3/2023", f"{number}/{date.year}")
            (target / "newsletters" / f"{stem}{suffix}").write_text(text, encoding="utf-8")
    templates = sorted((ROOT / "content" / "events").glob("*.md"))
    for n in range(events):
        template = templates[n % len(templates)]
        date = first + dt.timedelta(days=n * 18 + 3)
        original = dt.date.fromisoformat(template.name[:10])
        name = f"{date.isoformat()}{template.name[10:]}"
        if not name.endswith(".md") or "." in name[:-3]:
            continue
        (target / "events" / name).write_text(shifted(template.read_text("utf-8"), (date - original).days), "utf-8")
        report = ROOT / "content" / "reports" / template.name
        if report.exists():  # the events the sample reports on get a report in the archive too
            (target / "reports" / name).write_text(shifted(report.read_text("utf-8"), (date - original).days), "utf-8")
    return target


@dataclass
class BuildFigures:
    seconds: float
    files: int
    emails: int
    pdfs: int
    pdf_seconds: float  # the part of ``seconds`` spent printing the report pages (publish/reports.py)
    bare_premailer: float  # mjml-python + premailer over the same emails
    bare_css_inline: float  # mjml-python + css-inline over the same emails
    inliner_premailer: float  # the inliners alone
    inliner_css_inline: float
    bare_weasyprint: float  # WeasyPrint alone over the same report pages


def best_of_three(run: Callable[[], object]) -> float:
    """The fastest of three runs, each after a full garbage collection: the bare passes at their best.

    A single pass varied by a third from run to run (when the collector's full passes fell depends on
    what the build before left), which made the build's ratio to it swing both ways.
    """
    times = []
    for _ in range(3):
        gc.collect()
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def build_figures(content_dir: Path, out: Path) -> BuildFigures:
    """``build`` in process (the email sources and report pages recorded on the way), then bare passes over them.

    The bare passes run after the build, so they find cssutils, lxml and WeasyPrint warmed up by it.
    """
    import css_inline
    import weasyprint
    from premailer import Premailer

    from reallabor_mail.publish import reports

    sources: list[str] = []
    pages: list[str] = []
    pdf_seconds = 0.0
    original, original_pdf = engine.mjml2html, reports.pdf

    def recording(source: str, **options: object) -> str:
        sources.append(source)
        return original(source, **options)  # type: ignore[arg-type]

    def printing(html: str, content: object, *, created: dt.date) -> bytes:
        nonlocal pdf_seconds
        pages.append(html)
        started = time.perf_counter()
        try:
            return original_pdf(html, content, created=created)  # type: ignore[arg-type]
        finally:
            pdf_seconds += time.perf_counter() - started

    engine.mjml2html = recording  # type: ignore[assignment]
    reports.pdf = printing  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        result = build(content_dir, default_templates(), out, today=TODAY)
        seconds = time.perf_counter() - started
    finally:
        engine.mjml2html, reports.pdf = original, original_pdf
    raws = [original(source, fonts={}, disable_comments=True) for source in sources]
    mjml_seconds = best_of_three(lambda: [original(source, fonts={}, disable_comments=True) for source in sources])

    def premailer_pass() -> None:
        for raw in raws:
            Premailer(
                raw, keep_style_tags=True, allow_network=False, remove_classes=False, strip_important=False,
                disable_validation=True, disable_basic_attributes=["height"], cssutils_logging_level=logging.CRITICAL,
            ).transform(pretty_print=False)  # fmt: skip

    premailer_seconds = best_of_three(premailer_pass)
    inliner = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)
    css_inline_seconds = best_of_three(lambda: [inliner.inline(raw) for raw in raws])
    content = load_content(content_dir)
    images = reports.content_images(content)  # the pages' photos, handed to WeasyPrint from memory

    class FromMemory(weasyprint.URLFetcher):  # type: ignore[misc]  # the library is untyped
        def fetch(self, url: str, headers: object = None) -> object:
            data, mime = images[url]
            return weasyprint.urls.URLFetcherResponse(url, data, {"Content-Type": mime})

    started = time.perf_counter()
    for page in pages:
        document = weasyprint.HTML(string=page, url_fetcher=FromMemory(), base_url=content.site.public_url)
        document.write_pdf(pdf_variant=None)
    weasyprint_seconds = time.perf_counter() - started
    return BuildFigures(
        seconds, result.written, len(sources), len(pages), pdf_seconds, mjml_seconds + premailer_seconds,
        mjml_seconds + css_inline_seconds, premailer_seconds, css_inline_seconds, weasyprint_seconds,
    )  # fmt: skip


# --- 7. the preview's reload ------------------------------------------------------------------------------


def preview_reload(content_dir: Path) -> float:
    """Seconds from saving one newsletter of ``content_dir`` to its page's content ready (median of 3).

    As the preview does it: the snapshot after the change follows the one before (changed files read
    again, templates kept compiled); the first snapshot has rendered the item once, as an open page has.
    """
    from reallabor_mail.web.preview import Snapshot

    snap = Snapshot("before", content_dir, default_templates(), TODAY)
    kind, item = next(pair for pair in snap.items() if pair[0] == "newsletters")
    snap.rendered(kind, item.stem)
    times = []
    for n in range(3):
        path = item.path
        path.write_text(path.read_text("utf-8") + f"\nNoch ein Satz ({n}).\n", encoding="utf-8")
        started = time.perf_counter()
        snap = snap.following(f"after-{n}", TODAY)
        snap.rendered(kind, item.stem)
        for language in item.versions:
            snap.checks(kind, item.stem, language)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# --- report ---------------------------------------------------------------------------------------------------


def machine() -> str:
    cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    memory = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    return (
        f"{cpu.group(1) if cpu else platform.processor()}, {os.cpu_count()} cores, "
        f"{int(memory.group(1)) // 1024 // 1024 if memory else '?'} GiB RAM; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; SQLite state file on local disk (synchronous=FULL, WAL)"
    )


def share(value: float, target: float, better: str = "higher") -> str:
    """'met' or 'missed by N %' of a target (higher or lower is better)."""
    met = value >= target if better == "higher" else value <= target
    if met:
        return "met"
    return f"missed by {1 - value / target:.0%}" if better == "higher" else f"missed by {value / target - 1:.0%}"


SECTIONS = ("sending", "startup", "build", "preview")  # sending: assembly, ceiling, sends, mailmerge, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small numbers, do not update BENCHMARKS.md")
    parser.add_argument(
        "--only", type=lambda text: set(text.split(",")), default=set(SECTIONS),
        help=f"comma-separated sections of {','.join(SECTIONS)}; printed only, BENCHMARKS.md is not updated",
    )  # fmt: skip
    args = parser.parse_args()
    if args.only - set(SECTIONS):
        parser.error(f"--only: unknown section {', '.join(sorted(args.only - set(SECTIONS)))}")
    sends, versus, memory = (1000, 300, 5000) if args.quick else (10_000, 1000, 100_000)
    console = Console()
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="rlm-bench-") as tmp, smtp_sink(Path(tmp)) as sink:
        work = Path(tmp)
        if "sending" in args.only:
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
                ("assembled/s, invitation (de+uk, stamped ATTENDEE)", f"{rates['invitation']:,.0f}", "", ""),
            ]
            console.print(f"ceiling: smtp-source → smtp-sink, {sends:,} messages of 62 KB, 4 sessions …")
            ceiling = ceiling_rate(sink, sends)
            rows.append(
                (f"ceiling: smtp-source → smtp-sink, {sends:,} × 62 KB, 4 sessions", f"{ceiling:,.0f}/s", "", "")
            )
            for (label, file, target), connections in itertools.product(
                (("newsletter", NEWSLETTER, 0.75), ("invitation", EVENT, 0.50)), (4, 8)
            ):
                console.print(f"reallabor-mail send, {label}, {sends:,} recipients, {connections} connections …")
                rate = sends / send_command(work, sink, sends, connections, file)
                rows.append(
                    (
                        f"reallabor-mail send, {label}, {sends:,} recipients, {connections} conn. (command)",
                        f"{rate:,.0f}/s",
                        f"≥ {target:.0%} of ceiling",
                        f"{rate / ceiling:.0%} ({share(rate / ceiling, target)})",
                    )
                )
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
                        "≥ 15× mailmerge",
                        f"{ratio:.1f}× ({share(ratio, 15)})",
                    )
                )
            console.print(f"peak memory, {memory:,} recipients (takes a while) …")
            main_mib, tree_mib, seconds = peak_memory(work, sink, memory)
            rows += [
                (
                    f"peak RSS, sending process, {memory:,} recipients",
                    f"{main_mib:,.0f} MiB",
                    "< 150 MB",
                    share(main_mib * 1.048576, 150, "lower"),
                ),
                (
                    "  … with its compose process (sum of RSS)",
                    f"{tree_mib:,.0f} MiB",
                    "",
                    f"{memory / seconds:,.0f}/s end to end",
                ),
            ]
        if "startup" in args.only:
            console.print("start-up of the command line …")
            click_seconds = median_seconds([sys.executable, "-c", "import click"])
            help_seconds = median_seconds([*CLI, "--help"], env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
            check_imports, floor = import_seconds([*CLI[1:], "check"]), import_seconds(["-c", LIBRARY_FLOOR])
            console.print(f"send --limit 1 to {versus:,} recipients (the fixed cost) …")
            fixed = fixed_cost(work, sink, versus)
            rows += [
                ('python -c "import click"', f"{click_seconds:.3f} s", "", ""),
                (
                    "reallabor-mail --help",
                    f"{help_seconds:.3f} s",
                    "≤ 2× import click",
                    f"{help_seconds / click_seconds:.1f}× ({share(help_seconds / click_seconds, 2, 'lower')})",
                ),
                ("reallabor-mail check (sample): imports", f"{check_imports:.3f} s", "≤ 0.15 s",
                 share(check_imports, 0.15, "lower")),
                ("  the libraries' floor: " + LIBRARY_FLOOR.removeprefix("import "), f"{floor:.3f} s", "",
                 f"check imports {check_imports - floor:+.3f} s over it ({check_imports / floor:.2f}×)"),
                (f"reallabor-mail send --limit 1, {versus:,} recipients: the fixed cost", f"{fixed:.2f} s", "",
                 "start-up, content, rendering de+uk, plan, ledger rows, one message"),
            ]  # fmt: skip
        if args.only & {"build", "preview"}:
            archive_dir = ten_year_archive(work / "archive")
        if "build" in args.only:
            console.print("build: the sample and a ten-year archive …")
            sample = build_figures(ROOT / "content", work / "out-sample")
            archive = build_figures(archive_dir, work / "out-archive")
            per_sample, per_archive = sample.seconds / sample.files * 1000, archive.seconds / archive.files * 1000
            archive_content = load_content(archive_dir)
            without_pdfs = archive.seconds - archive.pdf_seconds  # emails, pages, ICS, feeds, writing
            rows += [
                (
                    f"build, sample ({sample.files} files, {sample.emails} emails, {sample.pdfs} PDFs)",
                    f"{sample.seconds:.2f} s ({per_sample:.1f} ms/file)",
                    "",
                    "",
                ),
                (
                    f"build, ten-year archive ({len(archive_content.newsletters)} issues × 2 languages, "
                    f"{len(archive_content.events)} events, {len(archive_content.reports)} reports: "
                    f"{archive.files} files, {archive.emails} emails, {archive.pdfs} PDFs)",
                    f"{archive.seconds:.2f} s ({per_archive:.1f} ms/file)",
                    "ms/file flat (≤ 1.25× sample)",
                    f"{per_archive / per_sample:.2f}× the sample ({share(per_archive / per_sample, 1.25, 'lower')})",
                ),
                (
                    f"  of which printing the {archive.pdfs} report PDFs / bare WeasyPrint over the same pages",
                    f"{archive.pdf_seconds:.2f} s / {archive.bare_weasyprint:.2f} s",
                    "",
                    f"{archive.pdf_seconds / archive.bare_weasyprint:.2f}× bare WeasyPrint",
                ),
                (
                    "  bare mjml-python + premailer over the archive's emails",
                    f"{archive.bare_premailer:.2f} s",
                    "build less its PDFs ≤ 4× this",
                    f"{without_pdfs / archive.bare_premailer:.1f}× "
                    f"({share(without_pdfs / archive.bare_premailer, 4, 'lower')}; "
                    f"{without_pdfs:.2f} s without PDFs)",
                ),
                (
                    "  CSS inliner alone over the archive's emails: premailer / css-inline",
                    f"{archive.inliner_premailer:.2f} s / {archive.inliner_css_inline:.2f} s",
                    "",
                    f"css-inline {archive.inliner_premailer / archive.inliner_css_inline:.0f}× faster "
                    f"(bare pass with it: {archive.bare_css_inline:.2f} s)",
                ),
            ]
        if "preview" in args.only:
            console.print("preview reload on the archive …")
            reload = preview_reload(archive_dir)
            rows.append(
                ("preview: reload after saving one newsletter (archive)", f"{reload:.2f} s", "≤ 0.3 s",
                 share(reload, 0.3, "lower"))
            )  # fmt: skip
    table = ["| measurement | result | target | ratio / status |", "|---|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    text = "\n".join(table)
    print(text)
    if not args.quick and args.only == set(SECTIONS):
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
