"""TLS and credentials: the real ``send`` command against servers that cannot be trusted, with a
distinctive password in its environment; then every output, file and the repository is searched for it.

Refused: a self-signed certificate (TLS on connect and STARTTLS), a trusted certificate for another
host, a server without STARTTLS, STARTTLS stripped from the EHLO reply (as a man in the middle does),
and a login the server refuses with 535. Each time the command ends with one clear ``error:`` line,
nothing was sent, the password never reached an untrusted server, and nobody is left in flight.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import AuthResult

from tests.conftest import ROOT, RecordingHandler
from tests.reliability.conftest import Row
from tests.reliability.harness import CLI, ledger_states, populate, send_command, send_env, serving_smtp
from tests.smtp_faults import self_signed, server_tls_context

PASSWORD = "Pw-" + secrets.token_hex(12) + "-Zwoelf"  # made at run time: only this run can have written it
USER = "becker"


@dataclass
class Gatekeeper(RecordingHandler):
    """Records messages and every password offered; STARTTLS can be hidden from EHLO."""

    strip_starttls: bool = False
    offered: list[str] = field(default_factory=list)

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:  # fmt: skip
        session.host_name = hostname
        return [line for line in responses if not (self.strip_starttls and "STARTTLS" in line)]

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        self.offered.append(getattr(data, "password", b"").decode("utf-8", "replace"))
        return AuthResult(success=False, handled=False)  # every login is refused (535)


@dataclass(frozen=True)
class Case:
    name: str
    security: str
    expect: str  # in the error message
    server: str = "plain"  # plain, tls (TLS on connect), starttls
    cert_host: str = "127.0.0.1"
    trust: bool = False  # the certificate's issuer is in SSL_CERT_FILE
    strip_starttls: bool = False


CASES = [
    Case("self-signed certificate, TLS on connect", "tls", "certificate is not trusted", "tls"),
    Case("self-signed certificate, STARTTLS", "starttls", "certificate is not trusted", "starttls"),
    Case("trusted certificate for another host (127.0.0.2)", "tls", "certificate is not trusted", "tls",
         cert_host="127.0.0.2", trust=True),
    Case("server without STARTTLS", "starttls", "does not offer STARTTLS"),
    Case("STARTTLS stripped from the EHLO reply", "starttls", "does not offer STARTTLS", "starttls",
         strip_starttls=True),
    Case("login refused (535)", "none", f"login as {USER} refused: 535"),
]  # fmt: skip


def run_case(case: Case, tmp_path: Path, content: Path) -> tuple[str, list[str], int, dict[str, str]]:
    """``send`` against the case's server: (its output, passwords offered, messages received, ledger)."""
    where = tmp_path / case.name.replace(" ", "-").replace("/", "")
    where.mkdir()
    state = where / "state.sqlite3"
    populate(state, range(3))
    cert, key = self_signed(where, case.cert_host)
    handler = Gatekeeper(strip_starttls=case.strip_starttls)
    options: dict[str, Any] = {"authenticator": handler.authenticate, "auth_require_tls": False}
    if case.server == "tls":
        options["ssl_context"] = server_tls_context(cert, key)
    elif case.server == "starttls":
        options.update(tls_context=server_tls_context(cert, key), require_starttls=True)
    with serving_smtp(handler, **options) as port:
        env = send_env(state, port, REALLABOR_SMTP_SECURITY=case.security, REALLABOR_SMTP_USER=USER,
                       REALLABOR_SMTP_PASSWORD=PASSWORD)  # fmt: skip
        env.pop("SSL_CERT_FILE", None)
        if case.trust:
            env["SSL_CERT_FILE"] = str(cert)
        done = subprocess.run(send_command(content), env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert case.expect in done.stderr and "Traceback" not in output, output
    return output, handler.offered, len(handler.messages), ledger_states(state)


def secret_in(path: Path) -> list[str]:
    """Files under ``path`` that contain the password (as UTF-8 bytes)."""
    needle = PASSWORD.encode()
    return [str(p) for p in path.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_untrusted_servers_are_refused_and_the_password_shows_nowhere(
    tmp_path: Path, content_copy: Path, row: Row
) -> None:
    outputs: list[str] = []
    for case in CASES:
        output, offered, received, states = run_case(case, tmp_path, content_copy)
        outputs.append(output)
        assert set(offered) == ({PASSWORD} if case.security == "none" else set())  # it was really in use
        leaked = PASSWORD in output
        wrong = received != 0 or set(states.values()) - {"pending"} != set()
        row("TLS and credentials", f"`send` to a server with: {case.name}", 1, int(leaked or wrong),
            f"refused with “{case.expect}”; 0 sent, {len(states)} left owed"
            + ("; the password was offered only to this loopback server" if offered else ""))  # fmt: skip
        assert not leaked and not wrong, (case, output, states)

    env = send_env(tmp_path / "build-state.sqlite3", 25, REALLABOR_SMTP_USER=USER, REALLABOR_SMTP_PASSWORD=PASSWORD)
    build = subprocess.run([*CLI, "build", "--content", str(content_copy), "--out", str(tmp_path / "build")],
                           env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert build.returncode == 0, build.stderr
    outputs.append(build.stdout + build.stderr)
    in_files = secret_in(tmp_path) + secret_in(ROOT / "test-artifacts")
    grep = subprocess.run(["git", "grep", "--untracked", "-l", "-F", PASSWORD], cwd=ROOT, capture_output=True,
                          text=True)  # fmt: skip
    in_repo = grep.stdout.split()
    in_output = [text for text in outputs if PASSWORD in text]
    files = sum(1 for p in tmp_path.rglob("*") if p.is_file())
    row(
        "TLS and credentials",
        "search for the distinctive SMTP password in the output of 6 `send` runs and a `build`, "
        "every file they wrote (state files, build/), test-artifacts/ and the git repository (git grep --untracked)",
        1,
        len(in_files) + len(in_repo) + len(in_output),
        f"{files} files and {len(outputs)} outputs searched; found in: {', '.join(in_files + in_repo) or 'none'}",
    )
    assert grep.returncode == 1, grep.stderr  # 1: no match
    assert in_files == [] and in_repo == [] and in_output == []
