"""A throw-away PostgreSQL cluster for the tests: initdb into a temp folder, a loopback port, trust auth.

Never the system service: the cluster lives as long as the test session and is removed after it. As root
(CI, containers) the server runs as the ``postgres`` account, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's programs, None if PostgreSQL is not installed."""
    return next((d for d in _BIN_DIRS if (d / "initdb").is_file()), None)


@dataclass
class Cluster:
    port: int
    folder: Path
    _names = itertools.count(1)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def fresh_database(self) -> str:
        """A new empty database's URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.url(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def start_cluster() -> Iterator[Cluster]:
    """initdb + pg_ctl start in a temp folder; stopped and removed when the generator is closed."""
    bin_dir = pg_bin()
    assert bin_dir is not None
    folder = Path(tempfile.mkdtemp(prefix="reallabor-pg-"))
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(folder, account.pw_uid, account.pw_gid)
    data = folder / "data"
    run = _as_server_user()
    subprocess.run([*run, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                    "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"], check=True, capture_output=True)  # fmt: skip
    port = _free_port()
    options = f"-k {folder} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run([*run, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"),
                    "-w", "-t", "60", "start"], check=True, capture_output=True)  # fmt: skip
    try:
        yield Cluster(port, folder)
    finally:
        subprocess.run([*run, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)
