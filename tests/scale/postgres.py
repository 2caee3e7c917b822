"""A throw-away PostgreSQL server on loopback from Debian's binaries, for tests and benchmarks.

`initdb` a cluster in a temporary folder, `pg_ctl start` it on a free port bound to 127.0.0.1 with
its socket in the same folder, password (SCRAM) authentication over TCP, `pg_ctl stop` and remove
the folder on `stop`. PostgreSQL refuses to run as root: under root the server runs as the
`postgres` account that Debian's package creates (else `nobody`), in a folder it owns, created in
the system's temporary directory (pytest's own folders are closed to other accounts).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.scale.spark_cluster import free_port

START_TIMEOUT = 180  # seconds, pg_ctl's own wait
BINARIES = ("initdb", "pg_ctl", "postgres")


def bin_dir() -> Path | None:
    """The newest `/usr/lib/postgresql/<ver>/bin` holding the server binaries, else PATH's."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
    )
    for d in reversed(found):
        if all((Path(d) / b).exists() for b in BINARIES):
            return Path(d)
    initdb = shutil.which("initdb")
    if initdb and all(shutil.which(b) for b in BINARIES):
        return Path(initdb).resolve().parent
    return None


def missing_binaries() -> str | None:
    if bin_dir() is None:
        return (
            "PostgreSQL's server binaries (initdb, pg_ctl, postgres) are not under "
            "/usr/lib/postgresql/<version>/bin nor on PATH; `tools/install-test-deps.sh` installs "
            "Debian's postgresql"
        )
    return None


def _server_account() -> str | None:
    """The account the server runs as: None (this one) unless this process is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and neither a postgres nor a nobody account exists")


@dataclass
class PostgresServer:
    user: str = "cobranza"
    password: str = "cobranza-test-password"
    database: str = "mlflow"
    port: int = 0
    root: Path | None = None

    @property
    def data(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def url(self) -> str:
        """SQLAlchemy URL for MLflow; the password is not in it (libpq reads PGPASSWORD)."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def conninfo(self) -> str:
        return (
            f"host=127.0.0.1 port={self.port} user={self.user} password={self.password} "
            f"dbname={self.database}"
        )

    def _run(self, *args: str, timeout: float = START_TIMEOUT) -> None:
        account = _server_account()
        out = subprocess.run(
            [str(bin_dir() / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.root,
            user=account,
            group=pwd.getpwnam(account).pw_gid if account else None,
            extra_groups=[] if account else None,
        )
        if out.returncode != 0:
            log = self.root / "server.log" if self.root else None
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(
                f"{args[0]} failed ({out.returncode}): {out.stderr.strip()[-2000:]}\n{tail}"
            )

    def start(self) -> PostgresServer:
        account = _server_account()
        self.root = Path(tempfile.mkdtemp(prefix="cobranza-pg-"))
        os.chmod(self.root, 0o700)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if account:
            entry = pwd.getpwnam(account)
            for path in (self.root, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb",
            *("-D", str(self.data), "-U", self.user, "--pwfile", str(pwfile)),
            *("--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8"),
            "--no-sync",
        )
        pwfile.unlink()
        self.port = free_port()
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            # a throw-away test database: no fsync per commit
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl",
            *("-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options),
            *("-w", "-t", str(START_TIMEOUT), "start"),
        )
        self._create_database()
        return self

    def _create_database(self) -> None:
        import psycopg

        admin = self.conninfo.replace(f"dbname={self.database}", "dbname=postgres")
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{self.database}"')

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """`pg_ctl stop -m fast`; the postmaster's pid killed if that fails; the folder removed."""
        if self.root is None:
            return
        pid = self.postmaster_pid()
        try:
            if pid is not None:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
        except (RuntimeError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PostgresServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
