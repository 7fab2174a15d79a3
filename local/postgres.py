"""A throwaway PostgreSQL server on a free loopback port, for tests, benchmarks and the demo.

Finds the server binaries on PATH or under /usr/lib/postgresql/*/bin; when there are none it installs
Debian's ``postgresql`` package (as root) or falls back to ``pgserver`` (a PyPI package bundling a server,
unix socket only). PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user.
Durability is switched off: this server holds nothing worth keeping.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=200")


class EmbeddedPostgresError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_bin_dir() -> Path | None:
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version_key, reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _version_key(path: str) -> int:
    try:
        return int(Path(path).parts[-3])
    except ValueError:
        return 0


def install_server_binaries() -> Path | None:
    """Install Debian's server package when we may (root with apt-get); returns the bin dir or None."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=False, env=env, capture_output=True)
    return find_bin_dir()


class EmbeddedPostgres:
    """``with EmbeddedPostgres() as pg: pg.dsn`` - started on enter, stopped and deleted on exit."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.user = "postgres"
        # Password logins over TCP, as on a real server: tests can check what a wrong password does.
        self.password = secrets.token_hex(12)
        self._data_dir: Path | None = None
        self._bin_dir: Path | None = None
        self._pgserver: object | None = None
        self._run_as: str | None = "postgres" if os.geteuid() == 0 else None

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        if self._pgserver is not None:
            return str(self._pgserver.get_uri(database))  # type: ignore[attr-defined]
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def start(self) -> EmbeddedPostgres:
        self._bin_dir = find_bin_dir() or install_server_binaries()
        if self._bin_dir is None:
            return self._start_pgserver()
        self._data_dir = Path(tempfile.mkdtemp(prefix="invoice-pg-"))
        if self._run_as:
            entry = pwd.getpwnam(self._run_as)
            os.chown(self._data_dir, entry.pw_uid, entry.pw_gid)
        password_file = self._data_dir / "pwfile"
        password_file.write_text(self.password + "\n")
        if self._run_as:
            os.chown(password_file, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self._data_dir / "data"),
            "-U",
            self.user,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--pwfile={password_file}",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        password_file.unlink()
        options = f"-p {self.port} -k {self._data_dir / 'data'} -c listen_addresses={self.host} " + " ".join(
            f"-c {setting}" for setting in FAST_SETTINGS
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self._data_dir / "data"),
            "-o",
            options,
            "-l",
            str(self._data_dir / "server.log"),
            "-w",
            "-t",
            "30",
            "start",
        )
        return self

    def _start_pgserver(self) -> EmbeddedPostgres:
        try:
            import pgserver  # type: ignore[import-not-found]
        except ImportError as error:
            raise EmbeddedPostgresError(
                "no PostgreSQL server binaries found (PATH, /usr/lib/postgresql/*/bin), apt-get not usable, "
                "and pgserver is not installed: install the 'postgresql' package or 'pip install pgserver'"
            ) from error
        self._data_dir = Path(tempfile.mkdtemp(prefix="invoice-pgserver-"))
        self._pgserver = pgserver.get_server(str(self._data_dir), cleanup_mode="stop")
        return self

    def restart(self) -> None:
        """Stop and start the same cluster (fault-injection tests)."""
        assert self._data_dir is not None
        # -l: without a log file the new postmaster inherits pg_ctl's output pipes and the call never returns.
        data, log = str(self._data_dir / "data"), str(self._data_dir / "server.log")
        self._run("pg_ctl", "-D", data, "-l", log, "-m", "fast", "-w", "-t", "30", "restart")

    def stop(self) -> None:
        if self._pgserver is not None:
            self._pgserver.cleanup()  # type: ignore[attr-defined]
            self._pgserver = None
        elif self._data_dir is not None and (self._data_dir / "data" / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self._data_dir / "data"), "-m", "immediate", "-w", "stop", check=False)
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        assert self._bin_dir is not None
        command = [str(self._bin_dir / program), *args]
        if self._run_as:
            command = ["runuser", "-u", self._run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd="/")
        if check and result.returncode != 0:
            log = ""
            if self._data_dir is not None and (self._data_dir / "server.log").exists():
                log = (self._data_dir / "server.log").read_text(errors="replace")[-2000:]
            raise EmbeddedPostgresError(f"{program} failed ({result.returncode}): {result.stderr.strip()} {log}")

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def wait_until_accepting(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise EmbeddedPostgresError(f"PostgreSQL at {host}:{port} did not accept connections in {timeout} s")


def main() -> int:
    """``python -m local.postgres``: make sure server binaries exist (make install calls this)."""
    bin_dir = find_bin_dir() or install_server_binaries()
    if bin_dir is not None:
        print(f"PostgreSQL server binaries: {bin_dir}")
        return 0
    try:
        import pgserver  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        print("no PostgreSQL server binaries and no pgserver: install 'postgresql' or 'pip install pgserver'")
        return 1
    print("PostgreSQL server binaries: none; using pgserver")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
