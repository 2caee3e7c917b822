"""Jobs: the request of each job type (from `cobranza.stages`) and the worker processes that run them.

Each job is a subprocess `python -m cobranza.cli --lake <lake> --json <command> <args>` in its own
process group (never through a shell): its stdout JSON is the result summary, its stderr the log
tail. Cancel sends SIGTERM to the group, then SIGKILL after a grace period. Two jobs that write the
same zone never run at once: the conflict check and the insert share one write transaction. On
startup, jobs left queued or running by a previous service process are marked `interrupted` (and
their orphaned process group, if still alive, is stopped).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import psutil
from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model

from cobranza.api.control import ACTIVE, ControlDB, now_iso
from cobranza.api.paths import PathMasker
from cobranza.api.redaction import parse_result, redact, redact_json, redact_value, scrub_job_files
from cobranza.config import Settings
from cobranza.lake import ZONES, Lake
from cobranza.stages import CheckedFolder, Stage, StageParams, conflicts, job_stages, stage

log = logging.getLogger("cobranza.api.jobs")
LOG_TAIL_LINES = 40


# ---- requests ------------------------------------------------------------------------------------
def _job_model(s: Stage) -> type[BaseModel]:
    """`{"type": <name>, "params": {...}}` of one stage; `params` may be left out when every
    parameter has a default."""
    required = any(f.is_required() for f in s.params.model_fields.values())
    params = Field(...) if required else Field(default_factory=s.params)
    return create_model(
        f"{s.name.capitalize()}Job",
        __config__=ConfigDict(extra="forbid"),
        type=(Literal[s.name], ...),
        params=(s.params, params),
    )


JOB_MODELS = tuple(_job_model(s) for s in job_stages())
JobRequest = Annotated[Union[JOB_MODELS], Field(discriminator="type")]  # noqa: UP007


def writes(job_type: str) -> tuple[str, ...]:
    """The zones and resources a job of this type writes (its stage's)."""
    return stage(job_type).writes


# ---- the manager ---------------------------------------------------------------------------------
class JobLimit(Exception):
    """Too many jobs active, in all or for this key (`max_jobs`, `max_jobs_per_key`)."""


class JobConflict(Exception):
    def __init__(self, running: dict[str, Any]):
        super().__init__(f"job {running['job_id']} ({running['type']}) writes the same zone")
        self.running = running


def settings_env(settings: Settings) -> dict[str, str]:
    """The service's settings as COBRANZA_* variables, so a job sees exactly the same configuration."""
    env = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        key = f"COBRANZA_{name.upper()}"
        if isinstance(value, SecretStr):
            env[key] = value.get_secret_value()
        elif isinstance(value, BaseModel):
            env[key] = value.model_dump_json()
        else:
            env[key] = str(value)
    return env


def _tail(path: Path, lines: int = LOG_TAIL_LINES, max_bytes: int = 64_000) -> list[str]:
    if not path.exists():
        return []
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - max_bytes))
        data = fh.read().decode("utf-8", errors="replace")
    return [redact(line) for line in data.splitlines()[-lines:]]


class JobManager:
    """Starts, watches and cancels job processes; every state change goes to the control DB."""

    def __init__(
        self,
        settings: Settings,
        db: ControlDB,
        on_finished: Callable[[dict[str, Any]], None] | None = None,
        kill_grace_seconds: float = 5.0,
        extract_roots: tuple[Path, ...] | None = None,
        max_jobs: int = 2,
        max_jobs_per_key: int = 2,
    ):
        self.settings = settings
        self.max_jobs, self.max_jobs_per_key = max_jobs, max_jobs_per_key
        # folders job extracts must lie in (resolved); None = any folder the service can read
        self.extract_roots = extract_roots
        # what responses show of server paths: relative to the lake or an extract root
        self.paths = PathMasker(settings.lake, extract_roots)
        self.db = db
        self.lake = Lake(settings.lake)
        self.jobs_dir = Path(settings.lake).resolve() / "control" / "jobs"
        self.on_finished = on_finished
        self.kill_grace_seconds = kill_grace_seconds
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    # -- lifecycle --
    def recover(self) -> list[str]:
        """Settle the jobs a previous service left queued/running; returns the interrupted ones.

        A worker still alive is stopped and its job is `interrupted`. A worker that had already
        ended is judged by its own output: the CLI prints its JSON summary only once the command
        has finished (and published), and `{"error": ...}` when it failed; so a job whose
        stdout holds a whole summary is `succeeded`, one with an error `failed`, and one with
        nothing (killed mid-way) `interrupted`.
        """
        rows = self.db.all("SELECT job_id, pid FROM jobs WHERE status IN ('queued', 'running')")
        interrupted = []
        for row in rows:
            alive = bool(row["pid"]) and self._kill_orphan(row["pid"])
            outcome = None if alive or not row["pid"] else self._outcome(row["job_id"])
            if outcome is not None:
                status, result, error = outcome
                log.info("job finished while the service was down", extra={"job_id": row["job_id"]})
                self._finish(row["job_id"], status, None, result, error)
                continue
            interrupted.append(row["job_id"])
            self.db.execute(
                "UPDATE jobs SET status = 'interrupted', finished_at = ?, "
                "error = COALESCE(error, 'the service stopped while the job was active') "
                "WHERE job_id = ? AND status IN ('queued', 'running')",
                (now_iso(), row["job_id"]),
            )
            if self.on_finished is not None:
                self.on_finished(self.get(row["job_id"]))
        self._redact_stored()
        return interrupted

    def _outcome(self, job_id: str) -> tuple[str, dict[str, Any] | None, str | None] | None:
        """(status, result, error) read from a dead worker's stdout, or None if it never ended."""
        path = self.jobs_dir / job_id / "stdout.json"
        try:
            result = parse_result(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            return None
        if not result or "unparsed_output" in result:
            return None
        note = "finished while the service was down; read from the job's own output"
        if "error" in result:
            error = str(result.pop("error"))
            return "failed", {**result, "recovered": note}, error
        return "succeeded", {**result, "recovered": note}, None

    def _redact_stored(self) -> None:
        """At startup no job runs: mask what earlier service versions (or a stop before a job's
        end) left unmasked, in the job folders and in the jobs table."""
        if self.jobs_dir.is_dir():
            for jdir in self.jobs_dir.iterdir():
                try:
                    scrub_job_files(jdir)
                except OSError:
                    log.exception("could not mask the stored output of job %s", jdir.name)
        for row in self.db.all(
            "SELECT job_id, error, result FROM jobs WHERE error IS NOT NULL OR result IS NOT NULL"
        ):
            error = redact(row["error"]) if row["error"] is not None else None
            result = redact_json(row["result"])
            if error != row["error"] or result is not row["result"]:
                self.db.execute(
                    "UPDATE jobs SET error = ?, result = ? WHERE job_id = ?",
                    (error, result, row["job_id"]),
                )

    def _kill_orphan(self, pid: int) -> bool:
        """Stop a process group still running our CLI (pids get reused); True if there was one."""
        try:
            proc = psutil.Process(pid)
            cmd = " ".join(proc.cmdline())
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
        except Exception:
            return False
        if "cobranza.cli" not in cmd:
            return False
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                return True
            try:
                proc.wait(self.kill_grace_seconds)
                return True
            except Exception:
                continue
        return True

    def shutdown(self) -> None:
        """Service stopping cleanly: stop running jobs and record them as interrupted."""
        with self._lock:
            procs = dict(self._procs)
        for job_id, proc in procs.items():
            self.db.execute(
                "UPDATE jobs SET status = 'interrupted', finished_at = ?, "
                "error = 'the service stopped while the job was running' "
                "WHERE job_id = ? AND status IN ('queued', 'running')",
                (now_iso(), job_id),
            )
            self._signal_group(proc, wait=True)
            try:
                scrub_job_files(self.jobs_dir / job_id)
            except OSError:
                log.exception("could not mask the stored output of job %s", job_id)

    # -- submit --
    def submit(self, job_type: str, params: StageParams, created_by: str | None) -> dict[str, Any]:
        zones = writes(job_type)
        job_id = uuid.uuid4().hex[:16]
        with self.db.transaction() as con:
            active = con.execute(
                "SELECT job_id, type, status, zones, created_at, created_by FROM jobs "
                "WHERE status IN ('queued', 'running') ORDER BY created_at"
            ).fetchall()
            for row in active:
                if conflicts(set(json.loads(row["zones"])), set(zones)):
                    raise JobConflict(dict(row))
            if len(active) >= self.max_jobs:
                raise JobLimit(f"{len(active)} jobs are active, the most the service runs at once")
            mine = sum(1 for row in active if row["created_by"] == created_by)
            if created_by is not None and mine >= self.max_jobs_per_key:
                raise JobLimit(f"this key has {mine} active jobs, the most one key may run")
            con.execute(
                "INSERT INTO jobs (job_id, type, params, zones, status, created_at, created_by, "
                "versions_at_start) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)",
                (
                    job_id,
                    job_type,
                    params.model_dump_json(),
                    json.dumps(list(zones)),
                    now_iso(),
                    created_by,
                    json.dumps({z: self.lake.current_version(z) for z in ZONES}),
                ),
            )
        thread = threading.Thread(
            target=self._run,
            args=(job_id, params.cli_args(), params.checked_folder),
            name=f"job-{job_id}",
            daemon=True,
        )
        thread.start()
        return self.get(job_id)

    def command(self, cli_args: list[str]) -> list[str]:
        lake = str(Path(self.settings.lake).resolve())
        return [sys.executable, "-m", "cobranza.cli", "--lake", lake, "--json", *cli_args]

    def _run(self, job_id: str, cli_args: list[str], checked: CheckedFolder | None) -> None:
        jdir = self.jobs_dir / job_id
        jdir.mkdir(parents=True, exist_ok=True)
        # a wide console: the CLI's messages stay on one line in stderr.log, so that a number or
        # an e-mail is never split by wrapping (redaction masks shapes line by line)
        env = {
            **os.environ,
            **settings_env(self.settings),
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "4000",
        }
        # the extract folder as the API checked it: the worker refuses it if it changed since
        env.pop(CheckedFolder.ENV, None)
        if checked is not None:
            env[CheckedFolder.ENV] = checked.to_env()
        try:
            with (
                open(jdir / "stdout.json", "wb") as out,
                open(jdir / "stderr.log", "wb") as err,
                self._lock,
            ):
                row = self.db.one("SELECT status FROM jobs WHERE job_id = ?", (job_id,))
                if row is None or row["status"] != "queued":
                    return  # cancelled before it started
                proc = subprocess.Popen(
                    self.command(cli_args),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=env,
                    start_new_session=True,
                    cwd=os.getcwd(),
                )
                self._procs[job_id] = proc
                self.db.execute(
                    "UPDATE jobs SET status = 'running', started_at = ?, pid = ? WHERE job_id = ?",
                    (now_iso(), proc.pid, job_id),
                )
            returncode = proc.wait()
        except Exception as exc:  # the process could not even start
            log.exception("job %s could not start", job_id)
            self._finish(job_id, "failed", None, None, f"could not start: {exc}")
            return
        finally:
            with self._lock:
                self._procs.pop(job_id, None)
        stdout = (jdir / "stdout.json").read_text(encoding="utf-8", errors="replace")
        result = parse_result(stdout)
        error = None
        if returncode == 0:
            status = "succeeded"
        else:
            status = "failed"
            if result and "error" in result:
                error = str(result.pop("error"))
                result = result or None
            else:
                tail = _tail(jdir / "stderr.log", 3)
                error = tail[-1] if tail else f"exit code {returncode}"
        try:
            scrub_job_files(jdir)  # the process has ended: nothing unmasked stays on disk
        except OSError:
            log.exception("could not mask the stored output of job %s", job_id)
        row = self.db.one("SELECT status FROM jobs WHERE job_id = ?", (job_id,))
        if row and row["status"] in ("cancelled", "interrupted"):
            status = row["status"]
        self._finish(job_id, status, returncode, result, error)

    def _finish(
        self,
        job_id: str,
        status: str,
        returncode: int | None,
        result: dict[str, Any] | None,
        error: str | None,
    ) -> None:
        # masked before the record is stored: the webhook payload and every reader see only this
        result = redact_value(result) if result is not None else None
        error = redact(error) if error is not None else None
        self.db.execute(
            "UPDATE jobs SET status = ?, finished_at = COALESCE(finished_at, ?), returncode = ?, "
            "result = ?, error = COALESCE(error, ?) WHERE job_id = ?",
            (
                status,
                now_iso(),
                returncode,
                json.dumps(result, default=str) if result is not None else None,
                error,
                job_id,
            ),
        )
        log.info("job finished", extra={"job_id": job_id, "status": status})
        if self.on_finished is not None:
            try:
                self.on_finished(self.get(job_id))
            except Exception:
                log.exception("job %s: completion hook failed", job_id)

    # -- cancel --
    def cancel(self, job_id: str) -> dict[str, Any] | None:
        """Returns the job after the request; None if unknown. Finished jobs are left as they are."""
        with self._lock:
            row = self.db.one("SELECT status FROM jobs WHERE job_id = ?", (job_id,))
            if row is None:
                return None
            if row["status"] not in ACTIVE:
                return self.get(job_id)
            self.db.execute(
                "UPDATE jobs SET status = 'cancelled', finished_at = ?, error = 'cancelled on request' "
                "WHERE job_id = ?",
                (now_iso(), job_id),
            )
            proc = self._procs.get(job_id)
        if proc is not None:
            self._signal_group(proc, wait=True)
        elif row["status"] == "queued" and self.on_finished is not None:
            self.on_finished(self.get(job_id))
        return self.get(job_id)

    def _signal_group(self, proc: subprocess.Popen, wait: bool) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                return
            if not wait:
                return
            try:
                proc.wait(self.kill_grace_seconds)
                return
            except subprocess.TimeoutExpired:
                continue

    # -- read --
    def get(self, job_id: str) -> dict[str, Any] | None:
        row = self.db.one("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
        return self._view(row) if row else None

    def list(
        self, status: str | None = None, job_type: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM jobs WHERE 1=1", []
        if status:
            sql += " AND status = ?"
            args.append(status)
        if job_type:
            sql += " AND type = ?"
            args.append(job_type)
        sql += " ORDER BY created_at DESC, job_id LIMIT ?"
        args.append(limit)
        return [self._view(r, tail=False) for r in self.db.all(sql, tuple(args))]

    def counts(self) -> dict[str, int]:
        return {
            r["status"]: r["n"]
            for r in self.db.all("SELECT status, count(*) AS n FROM jobs GROUP BY status")
        }

    def _view(self, row: dict[str, Any], tail: bool = True) -> dict[str, Any]:
        started, finished = row["started_at"], row["finished_at"]
        seconds = None
        if started:
            end = datetime.fromisoformat(finished) if finished else None
            start = datetime.fromisoformat(started)
            seconds = round(((end or datetime.now(UTC)) - start).total_seconds(), 3)
        show = self.paths
        return {
            "job_id": row["job_id"],
            "type": row["type"],
            "params": show.value(json.loads(row["params"])),
            "status": row["status"],
            "progress": self._progress(row),
            "created_at": row["created_at"],
            "started_at": started,
            "finished_at": finished,
            "seconds": seconds,
            "created_by": row["created_by"],
            "returncode": row["returncode"],
            # masked again on read: cheap, and safe for a record written before masking existed
            "error": show.text(redact(row["error"])) if row["error"] else row["error"],
            "result": show.value(redact_value(json.loads(row["result"])))
            if row["result"]
            else None,
            "log_tail": [
                show.text(line) for line in _tail(self.jobs_dir / row["job_id"] / "stderr.log")
            ]
            if tail
            else None,
        }

    def _progress(self, row: dict[str, Any]) -> dict[str, Any]:
        """Stages done = lake zones this job was to write that got a new version since it started."""
        zones = [z for z in json.loads(row["zones"]) if z in ZONES]
        if row["status"] == "succeeded":
            return {"fraction": 1.0, "zones_published": zones, "zones": zones}
        if row["status"] == "queued":
            return {"fraction": 0.0, "zones_published": [], "zones": zones}
        before = json.loads(row["versions_at_start"] or "{}")
        done = [z for z in zones if self.lake.current_version(z) != before.get(z)]
        fraction = round(len(done) / len(zones), 3) if zones else None
        if row["status"] == "running" and fraction == 1.0:
            fraction = 0.99
        return {"fraction": fraction, "zones_published": done, "zones": zones}
