"""The command line end to end, as a user runs it."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import ROOT, SAMPLE_CONTENT


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "reallabor-mail"
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_build_in_project_folder(tmp_path: Path) -> None:
    out = tmp_path / "site"
    result = run("build", "--out", str(out), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "files written" in result.stdout
    assert (out / "newsletters" / "2023-3" / "email.html").is_file()


def test_check_reports_every_problem_with_path_and_line(content_copy: Path) -> None:
    event = content_copy / "events" / "2023-09-19-kollegialer-austausch.md"
    event.write_text(event.read_text(encoding="utf-8").replace("format: online", "format: webinar"))
    site = content_copy / "site.yaml"
    site.write_text(site.read_text(encoding="utf-8") + "farbe: blau\n")
    result = run("check", "--content", "content", cwd=content_copy.parent)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any(
        line.startswith("content/events/2023-09-19-kollegialer-austausch.md:") and "'format'" in line for line in lines
    )
    assert any(line.startswith("content/site.yaml:") and "unknown key 'farbe'" in line for line in lines)
    assert "Traceback" not in result.stderr
    assert "nothing was written" in result.stderr


def test_check_passes_on_sample_content() -> None:
    result = run("check", "--content", str(SAMPLE_CONTENT), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_missing_content_folder(tmp_path: Path) -> None:
    result = run("check", "--content", "nirgends", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("nirgends: content folder not found")


# --- no tracebacks: every error a user can cause is one line that starts with the path ----------------


def first_token(result: subprocess.CompletedProcess[str]) -> str:
    """The path a failing command's message starts with, after checking it failed without a traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.split(maxsplit=1)[0].rstrip(":") if result.stderr else ""


def test_site_yaml_in_windows_1252_is_one_line_with_the_path(content_copy: Path) -> None:
    site = content_copy / "site.yaml"
    site.write_bytes(site.read_text(encoding="utf-8").encode("cp1252", "replace"))  # "Western European"
    result = run("check", cwd=content_copy.parent)
    assert first_token(result) == "content/site.yaml"
    assert "not UTF-8" in result.stderr


def test_site_yaml_with_a_byte_order_mark_is_read(content_copy: Path) -> None:
    site = content_copy / "site.yaml"
    site.write_bytes(b"\xef\xbb\xbf" + site.read_bytes())  # what Windows Notepad writes
    result = run("check", cwd=content_copy.parent)
    assert result.returncode == 0, result.stderr


def test_out_below_a_file_is_one_line(content_copy: Path) -> None:
    (content_copy.parent / "notes.txt").write_text("keep me")
    below = run("build", "--out", "notes.txt/site", cwd=content_copy.parent)
    assert first_token(below) == "notes.txt/site"
    assert below.stderr == "notes.txt/site: notes.txt is a file, not a folder; choose another --out folder\n"
    onto = run("build", "--out", "notes.txt", cwd=content_copy.parent)
    assert first_token(onto) == "notes.txt"
    assert (content_copy.parent / "notes.txt").read_text() == "keep me"


def test_unwritable_out_is_one_line(content_copy: Path) -> None:
    if os.geteuid() == 0:  # root writes everywhere chmod forbids; /sys refuses even root
        out = "/sys/reallabor-build"
    else:
        locked = content_copy.parent / "locked"
        locked.mkdir(mode=0o555)
        out = "locked/site"
    result = run("build", "--out", out, cwd=content_copy.parent)
    assert first_token(result) == out
    assert len(result.stderr.splitlines()) == 1


def test_missing_templates_folder_is_one_line(content_copy: Path) -> None:
    for command in ("build", "check"):
        result = run(command, "--templates", "meine-vorlagen", cwd=content_copy.parent)
        assert first_token(result) == "meine-vorlagen"
        assert len(result.stderr.splitlines()) == 1


def test_template_syntax_error_names_template_and_line(content_copy: Path) -> None:
    folder = content_copy.parent / "vorlagen" / "email"
    folder.mkdir(parents=True)
    (folder / "newsletter.mjml.j2").write_text("<mjml>\n{% if %}\n</mjml>\n")
    result = run("check", "--templates", "vorlagen", cwd=content_copy.parent)
    assert first_token(result) == "vorlagen/email/newsletter.mjml.j2:2"
    assert result.stderr.count("vorlagen/email/newsletter.mjml.j2:2") == 1  # once, not once per newsletter


def test_template_not_in_utf8_names_the_template(content_copy: Path) -> None:
    folder = content_copy.parent / "vorlagen" / "web"
    folder.mkdir(parents=True)
    (folder / "index.html.j2").write_bytes("<p>Städte</p>\n".encode("cp1252"))
    result = run("check", "--templates", "vorlagen", cwd=content_copy.parent)
    assert first_token(result) == "vorlagen/web/index.html.j2"


def test_state_file_that_is_not_a_database_is_one_line(content_copy: Path) -> None:
    (content_copy.parent / "state.sqlite3").write_text("Einkaufsliste: Milch, Brot\n")
    for command in (["recipients", "list"], ["send", "content/newsletters/2023-3.md", "--status"]):
        result = run(*command, "--state", "state.sqlite3", cwd=content_copy.parent)
        assert first_token(result) == "state.sqlite3"
        assert len(result.stderr.splitlines()) == 1


# --- templates: a --templates folder overrides the shipped ones file by file; no cwd magic ------------


def test_templates_folder_overrides_one_file_and_keeps_the_rest(content_copy: Path, tmp_path: Path) -> None:
    folder = tmp_path / "vorlagen" / "web"
    folder.mkdir(parents=True)
    shipped = (ROOT / "reallabor_mail" / "templates" / "web" / "base.html.j2").read_text(encoding="utf-8")
    (folder / "base.html.j2").write_text(shipped.replace("</footer>", "<p>Eigene Vorlage</p></footer>"))
    out = tmp_path / "site"
    result = run("build", "--content", str(content_copy), "--templates", str(folder.parent), "--out", str(out),
                 cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Eigene Vorlage" in (out / "index.html").read_text(encoding="utf-8")
    assert (out / "newsletters" / "2023-3" / "email.html").is_file()  # from the shipped templates


def test_a_templates_folder_in_the_working_directory_is_not_picked_up(content_copy: Path) -> None:
    broken = content_copy.parent / "templates" / "web"
    broken.mkdir(parents=True)
    (broken / "index.html.j2").write_text("{% if %}")
    result = run("check", cwd=content_copy.parent)
    assert result.returncode == 0, result.stderr


# --- a thin porch: --help and check load only what they use ---------------------------------------------

HEAVY = ("uvicorn", "starlette", "premailer", "requests", "icalendar", "aiosmtplib", "mjml", "weasyprint")


def imported_by(*args: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules a real ``reallabor-mail ARGS`` process had imported when it ended: top-level and dotted names."""
    probe = (
        "import atexit, sys\n"
        "loaded = lambda: set(sys.modules) | {name.split('.')[0] for name in sys.modules}\n"
        "atexit.register(lambda: print('MODULES', ' '.join(sorted(loaded()))))\n"
        "from reallabor_mail.cli.main import run\n"
        f"sys.argv = ['reallabor-mail', *{list(args)!r}]\n"
        "run()\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env=env)  # fmt: skip
    line = next((line for line in result.stdout.splitlines() if line.startswith("MODULES ")), None)
    assert line is not None, result.stdout + result.stderr
    return set(line.split()[1:])


def test_help_imports_no_web_server_smtp_or_email_toolchain() -> None:
    for args in (["--help"], ["send", "--help"], ["serve", "--help"], ["recipients", "--help"], ["document", "--help"]):
        assert imported_by(*args) & set(HEAVY) == set(), args


def test_help_does_not_load_the_content_model() -> None:
    """--help only needs site.yaml's language: not pydantic, Markdown, Pillow (issue 16: within 2× ``import click``)."""
    content_model = {"pydantic", "markdown_it", "PIL", "email_validator", "babel", "jinja2"}
    for args in (["--help"], ["recipients", "--help"], ["send", "--help"]):
        assert imported_by(*args) & content_model == set(), args


# what neither ``check`` nor ``send`` uses: web server, PostgreSQL, PDF, IMAP, bounce parsing, DKIM and DNS
# (no key configured), the spreadsheet reader, the other command modules (issue 16: start-up). Not listed:
# requests, which premailer imports at its top (BENCHMARKS.md, Start-up).
NOT_FOR_CHECK_OR_SEND = {
    "uvicorn", "starlette", "watchfiles", "psycopg", "weasyprint", "imapclient", "flufl", "dkim", "dns",
    "openpyxl", "aiosmtpd", "reallabor_mail.web", "reallabor_mail.mailbox",
    "reallabor_mail.recipients.spreadsheet", "reallabor_mail.cli.recipients", "reallabor_mail.cli.worker",
    "reallabor_mail.cli.inbox", "reallabor_mail.cli.registrations", "reallabor_mail.cli.document",
    "reallabor_mail.cli.state",
}  # fmt: skip


def test_check_imports_only_what_it_uses() -> None:
    modules = imported_by("check", "--content", str(SAMPLE_CONTENT))
    assert {"jinja2", "mjml", "premailer"} <= modules  # it did render
    assert modules & (NOT_FOR_CHECK_OR_SEND | {"aiosmtplib", "rich", "reallabor_mail.cli.send", "sqlite3"}) == set()


def test_a_dry_run_send_imports_only_what_it_uses(content_copy: Path, tmp_path: Path) -> None:
    from reallabor_mail.db import connect, transaction
    from reallabor_mail.recipients.person import Recipient
    from reallabor_mail.recipients.store import add_recipient

    state = tmp_path / "state.sqlite3"
    conn = connect(state)
    with transaction(conn):
        add_recipient(conn, Recipient("anna@example.org", language="uk"), "newsletter", status="subscribed",
                      source="test", now=dt.datetime(2023, 10, 1, tzinfo=dt.UTC))  # fmt: skip
    conn.close()
    env = {**os.environ, "REALLABOR_SECRET": "s" * 32, "REALLABOR_STATE": str(state)}
    newsletter = content_copy / "newsletters" / "2023-3.md"
    modules = imported_by("send", str(newsletter), "--dry-run", "--yes", "--outbox", str(tmp_path / "out"), env=env)
    assert len(list((tmp_path / "out" / "new").iterdir())) == 1  # it did send, into the folder
    assert modules & NOT_FOR_CHECK_OR_SEND == set()


def test_a_german_yes_answers_the_send_question(content_copy: Path, tmp_path: Path) -> None:
    """The plan asks in German and says [j/N]; "j" sends (it was "Error: invalid input", then nothing)."""
    exe = Path(sys.executable).parent / "reallabor-mail"
    env = {**os.environ, "REALLABOR_LANG": "de", "REALLABOR_SECRET": "s" * 32,
           "REALLABOR_STATE": str(tmp_path / "state.sqlite3")}  # fmt: skip
    outbox = tmp_path / "outbox"
    newsletter = content_copy / "newsletters" / "2023-3.md"
    result = subprocess.run([str(exe), "send", str(newsletter), "--to", "anna@example.org", "--outbox", str(outbox)],
                            input="j\n", env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[j/N]" in result.stdout and "invalid input" not in result.stdout + result.stderr
    assert len(list((outbox / "new").iterdir())) == 1


@pytest.mark.parametrize(
    ("language", "args", "expected"),
    [
        ("de", ["build", "--uot", "x"], "Fehler: Eine Option '--uot' gibt es nicht. Meinten Sie '--out'?"),
        ("de", ["registrations", "/nicht/da.md"],
         "Fehler: Ungültige Angabe für 'FILE': Die Datei '/nicht/da.md' gibt es nicht."),
        ("de", ["recipients", "import"], "Fehler: Die Angabe 'FILE' fehlt."),
        ("de", ["build", "--out"], "Fehler: Die Option '--out' braucht einen Wert."),
        ("uk", ["build", "zu", "viel"], "Помилка: Неочікуване додаткове введення: zu viel"),
        ("uk", ["sendn"], "Помилка: Команди 'sendn' не існує. Можливо, ви мали на увазі 'send'?"),
    ],
)
def test_a_wrong_command_line_is_explained_in_the_staff_language(
    language: str, args: list[str], expected: str, tmp_path: Path
) -> None:
    exe = Path(sys.executable).with_name("reallabor-mail")
    env = {**os.environ, "REALLABOR_LANG": language}
    result = subprocess.run([str(exe), *args], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2
    assert expected in result.stderr.splitlines()
    assert "Try '" not in result.stderr and "Error" not in result.stderr  # nothing left in click's English


def test_a_click_message_nobody_translated_stays_as_click_wrote_it() -> None:
    from reallabor_mail.cli.translated import translate_click_message

    assert translate_click_message("Something click may say one day.") == "Something click may say one day."


def test_every_command_and_option_help_has_a_german_and_ukrainian_translation() -> None:
    import click

    from reallabor_mail.cli.main import main
    from reallabor_mail.cli.translated import TranslatedCommand
    from reallabor_mail.i18n.messages import translations

    def commands(group: click.Group) -> list[click.Command]:
        found: list[click.Command] = []
        context = click.Context(group)
        for name in group.list_commands(context):
            command = group.get_command(context, name)
            assert command is not None, name
            found.append(command)
            if isinstance(command, click.Group):
                found.extend(commands(command))
        return found

    untranslated = []
    for command in commands(main):
        assert isinstance(command, TranslatedCommand), f"{command.name}: its help page would stay English"
        texts = [command.help or ""] + [p.help or "" for p in command.params if isinstance(p, click.Option)]
        for language in ("de", "uk"):
            words = translations(language)
            untranslated += [(command.name, language, t) for t in texts if t and words.gettext(t) == t]
    assert untranslated == []


def test_a_warning_is_tagged_in_the_staff_language(content_copy: Path) -> None:
    newsletter = content_copy / "newsletters" / "2024-1.md"
    text = newsletter.read_text(encoding="utf-8")
    newsletter.write_text(re.sub(r"!\[[^\]]*\]\(", "![](", text, count=1), encoding="utf-8")
    exe = Path(sys.executable).with_name("reallabor-mail")
    result = subprocess.run([str(exe), "check", "--content", str(content_copy)], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "REALLABOR_LANG": "de"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert re.search(r"2024-1\.md:\d+: Warnung: ", result.stderr), result.stderr
