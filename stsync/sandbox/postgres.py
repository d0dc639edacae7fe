"""A throwaway PostgreSQL server for `stsync demo` and the test suite.

``initdb`` into a temporary directory, start on 127.0.0.1 with a free port and trust auth, and remove
everything on stop. Durability settings are off: nothing here is meant to survive a crash. A process
killed before it could stop its server (kill -9, the OOM killer) leaves it running with nobody to stop it;
the next one to start sweeps such clusters away (see ``EmbeddedPostgres.start``).

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` system user
(created if missing) through ``runuser``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from psycopg import sql

from stsync.db.connect import connect_sync, db_errors
from stsync.errors import DatabaseUnavailable, StsyncError

SERVER_USER = "postgres"  # the OS user the server runs as when we are root
TEMP_PREFIX = "stsync-pg-"
OWNER_LOCK = "owner.lock"  # in a temporary cluster's directory: locked by its process for as long as it runs
START_TIMEOUT = 60.0

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found; install them "
    "(Debian/Ubuntu: apt-get install -y postgresql; macOS: brew install postgresql@16) "
    "or set STSYNC_PG_BINDIR to the directory holding initdb"
)


def _has_server(bindir: Path) -> bool:
    return (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file()


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", str(path))) or (0,)


def find_bindir() -> Path:
    """Directory with initdb and pg_ctl: $STSYNC_PG_BINDIR, pg_config, PATH, then well-known places."""
    candidates: list[Path] = []
    if env_dir := os.environ.get("STSYNC_PG_BINDIR"):
        candidates.append(Path(env_dir))
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10)
            candidates.append(Path(out.stdout.strip()))
    if initdb := shutil.which("initdb"):
        candidates += [Path(initdb).parent, Path(initdb).resolve().parent]
    for pattern in (
        "/usr/lib/postgresql/*/bin",  # Debian/Ubuntu
        "/usr/pgsql-*/bin",  # RHEL/PGDG
        "/opt/homebrew/opt/postgresql@*/bin",
        "/usr/local/opt/postgresql@*/bin",
    ):
        candidates += [Path(p) for p in sorted(Path("/").glob(pattern.lstrip("/")), key=_version_key, reverse=True)]
    candidates += [Path("/usr/local/pgsql/bin"), Path("/opt/homebrew/bin"), Path("/usr/local/bin")]
    for bindir in candidates:
        if _has_server(bindir):
            return bindir
    raise DatabaseUnavailable(INSTALL_HINT)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ensure_server_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVER_USER,
            ],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SERVER_USER)


def _check_traversable(path: Path) -> None:
    """As root, every parent of the data directory must be searchable by the server user."""
    for parent in path.resolve().parents:
        if not parent.stat().st_mode & 0o001:
            raise DatabaseUnavailable(
                f"the PostgreSQL server user '{SERVER_USER}' cannot reach {path}: {parent} is not "
                "world-searchable; choose a base directory under /tmp"
            )


class EmbeddedPostgres:
    """A private PostgreSQL cluster on 127.0.0.1; a context manager, or call start() and stop()."""

    user = "postgres"
    host = "127.0.0.1"

    def __init__(self, base_dir: Path | None = None, port: int | None = None, keep: bool = False) -> None:
        self.requested_base_dir = Path(base_dir) if base_dir is not None else None
        self.requested_port = port
        self.keep = keep
        self.port = port or 0
        self.base_dir: Path = self.requested_base_dir or Path()
        self._created_base = False
        self._bindir: Path | None = None
        self._as_root = hasattr(os, "geteuid") and os.geteuid() == 0
        self._owner_lock: int | None = None
        self.running = False

    # --- paths and commands -------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "postgresql.log"

    @property
    def dsn(self) -> str:
        """libpq URL of the ``postgres`` database (no password: trust auth on loopback only)."""
        return self.dsn_for("postgres")

    def dsn_for(self, dbname: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def _argv(self, tool: str, *args: str) -> list[str]:
        assert self._bindir is not None
        argv = [str(self._bindir / tool), *args]
        return ["runuser", "-u", SERVER_USER, "--", *argv] if self._as_root else argv

    def stop_command(self) -> str:
        """Shell command that stops a server left running with ``keep``."""
        return shlex.join(self._argv("pg_ctl", "-D", str(self.data_dir), "stop", "-m", "fast"))

    def _run(self, argv: list[str], what: str, cwd: Path | None = None) -> None:
        # PG* variables from the caller's environment (PGPORT, PGDATA…) must not steer our cluster.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        proc = subprocess.run(
            argv,
            cwd=cwd or self.base_dir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=START_TIMEOUT + 30,
        )
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            log = self._log_tail()
            raise DatabaseUnavailable(
                f"{what} failed (exit {proc.returncode}): {detail[-1] if detail else 'no output'}"
                + (f"; server log: {log}" if log else "")
            )

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(lines[-3:])

    # --- lifecycle --------------------------------------------------------------------------

    def _sweep_abandoned(self) -> None:
        """Stop and remove the temporary clusters whose process died without stopping them: their owner lock
        is free. One made with ``keep``, or still being made, has no lock and is left alone."""
        for base in Path(tempfile.gettempdir()).glob(TEMP_PREFIX + "*"):
            try:
                fd = os.open(base / OWNER_LOCK, os.O_RDONLY)
            except OSError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # its process is alive
                if (base / "data" / "postmaster.pid").exists():
                    with contextlib.suppress(DatabaseUnavailable, subprocess.SubprocessError):
                        argv = self._argv("pg_ctl", "-D", str(base / "data"), "stop", "-m", "immediate", "-w")
                        self._run(argv, "pg_ctl stop", cwd=base)
                shutil.rmtree(base, ignore_errors=True)
            finally:
                os.close(fd)

    def _claim(self) -> None:
        """Lock the owner file of this process's temporary cluster until ``stop`` (or the process's end). The
        file is locked before it gets its name, so a sweeping process never finds it unlocked."""
        fd, path = tempfile.mkstemp(dir=self.base_dir, prefix=".owner-")
        fcntl.flock(fd, fcntl.LOCK_EX)
        Path(path).rename(self.base_dir / OWNER_LOCK)
        self._owner_lock = fd

    def _prepare_dirs(self) -> None:
        if self.requested_base_dir is None:
            self._sweep_abandoned()
            self.base_dir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
            self._created_base = True
            if not self.keep:
                self._claim()
        else:
            self.base_dir = self.requested_base_dir.resolve()
            self._created_base = not self.base_dir.exists()
            self.base_dir.mkdir(parents=True, exist_ok=True)
            if self.data_dir.exists():
                raise DatabaseUnavailable(f"{self.data_dir} already exists; choose an empty base directory")
        if self._as_root:
            user = _ensure_server_user()
            self.base_dir.chmod(0o755)
            _check_traversable(self.base_dir)
            os.chown(self.base_dir, user.pw_uid, user.pw_gid)

    def start(self) -> Self:
        """initdb, start, and wait until the server accepts connections."""
        self._bindir = find_bindir()
        self._prepare_dirs()
        try:
            self._run(
                self._argv(
                    "initdb",
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.user,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ),
                "initdb",
            )
            # A free port can be taken between probing and binding; try a few when we chose it.
            attempts = 1 if self.requested_port else 3
            for attempt in range(attempts):
                self.port = self.requested_port or free_port()
                try:
                    self._start_server()
                    break
                except DatabaseUnavailable:
                    if attempt == attempts - 1:
                        raise
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_server(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.data_dir}",
                "-c max_connections=100",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
            ]
        )
        self._run(
            self._argv(
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                options,
                "-w",
                "-t",
                str(int(START_TIMEOUT)),
                "start",
            ),
            "pg_ctl start",
        )
        self.running = True

    def _wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with connect_sync(self.dsn, connect_timeout=5) as conn:
                    conn.execute("SELECT 1")
                return
            except StsyncError as exc:
                if time.monotonic() > deadline:
                    raise DatabaseUnavailable(
                        f"embedded PostgreSQL on {self.host}:{self.port} not ready after {timeout:.0f}s: "
                        f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else exc!r}"
                    ) from None
                time.sleep(0.1)

    def restart(self) -> None:
        """Stop (fast: open sessions are terminated) and start again on the same port and data."""
        if self._bindir is None:
            raise RuntimeError("the server was never started")
        self._run(self._argv("pg_ctl", "-D", str(self.data_dir), "stop", "-m", "fast", "-w"), "pg_ctl stop")
        self.running = False
        self._start_server()
        self._wait_ready()

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its files, unless ``keep`` was set."""
        if self.running and self._bindir is not None:
            with contextlib.suppress(DatabaseUnavailable, subprocess.SubprocessError):
                self._run(self._argv("pg_ctl", "-D", str(self.data_dir), "stop", "-m", "fast", "-w"), "pg_ctl stop")
            self.running = False
        if self.keep or self.base_dir == Path():
            return
        if self._created_base:
            shutil.rmtree(self.base_dir, ignore_errors=True)
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.log_file.unlink(missing_ok=True)
        if self._owner_lock is not None:
            os.close(self._owner_lock)
            self._owner_lock = None

    def create_database(self, name: str) -> str:
        """Create an empty database and return its DSN."""
        with connect_sync(self.dsn) as conn, db_errors(f"creating database {name}"):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn_for(name)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
