"""A real n8n for the template tests: the shared harness (`n8n-harness run`), an n8n server, a sink.

`n8n-harness install` (run by `make setup`) puts n8n 1.123 in `$N8N_HARNESS_DIR` (default
`~/.cache/n8n-harness`). Without it the tests FAIL with a message saying so: never a silent skip.
The templates take the API key from an n8n credential (Header Auth, `cobranza API key`):
`import_api_key` creates it in a user folder through n8n's own CLI, as an operator would.
`Sink` is a loopback HTTP server standing for the collections endpoint and the notification
channel (Slack/Teams-style incoming webhooks): it records every POST it gets, and can answer 503
to the first requests of a path (to see the nodes retry).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "automations" / "n8n"
HARNESS = Path(os.environ.get("N8N_HARNESS", REPO / "tools" / "n8n-harness"))
HARNESS_DIR = Path(os.environ.get("N8N_HARNESS_DIR", Path.home() / ".cache" / "n8n-harness"))
N8N_BIN = HARNESS_DIR / "node_modules" / ".bin" / "n8n"
# The harness's own settings, for the n8n server the router test starts beside it.
N8N_ENV = {
    "N8N_EXPRESSION_ENGINE": "legacy",
    "N8N_RUNNERS_ENABLED": "false",
    "N8N_DIAGNOSTICS_ENABLED": "false",
    "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
    "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "false",
    "N8N_SECURE_COOKIE": "false",
}


def require_n8n() -> None:
    if not HARNESS.is_file():
        pytest.fail(f"the n8n harness is missing ({HARNESS}); it is part of the repository")
    if not N8N_BIN.exists():
        pytest.fail(
            f"n8n is not installed ({N8N_BIN} is missing): `make setup-test` (run by `make test`) installs it "
            f"(`{HARNESS} install`)"
        )


def private_harness(folder: Path) -> Path:
    """A harness folder of this test session: the installed n8n, a user folder (database) of its own.

    The harness keeps n8n's database in `<dir>/home`; a private one keeps parallel test workers and
    a developer's own harness state apart.
    """
    require_n8n()
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "node_modules"
    if not link.exists():
        link.symlink_to(HARNESS_DIR / "node_modules", target_is_directory=True)
    return folder


API_KEY_CREDENTIAL = {
    "id": "cbzApiKeyCred001",
    "name": "cobranza API key",
    "type": "httpHeaderAuth",
}


def import_api_key(user_folder: Path, key: str) -> None:
    """The templates' credential, holding `key`, in the n8n of `user_folder` (replaced if there)."""
    require_n8n()
    user_folder.mkdir(parents=True, exist_ok=True)
    path = user_folder / "credential.json"
    credential = {**API_KEY_CREDENTIAL, "data": {"name": "Authorization", "value": f"Bearer {key}"}}
    path.write_text(json.dumps([credential]), encoding="utf-8")
    try:
        proc = subprocess.run(
            [str(N8N_BIN), "import:credentials", f"--input={path}"],
            env={**os.environ, **N8N_ENV, "N8N_USER_FOLDER": str(user_folder)},
            cwd=HARNESS_DIR,
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        path.unlink()  # the key does not stay on disk outside n8n's encrypted store
    if proc.returncode != 0 or "Successfully imported 1 credential" not in proc.stdout:
        raise RuntimeError(
            f"n8n import:credentials failed: {proc.stdout[-1000:]} {proc.stderr[-1000:]}"
        )


def load_template(name: str) -> dict[str, Any]:
    return json.loads((TEMPLATES / name).read_text(encoding="utf-8"))


def manual_variant(workflow: dict[str, Any], workflow_id: str) -> dict[str, Any]:
    """The same workflow started by a Manual Trigger (the harness executes from the start node)."""
    wf = json.loads(json.dumps(workflow))
    wf["id"] = workflow_id
    for node in wf["nodes"]:
        if node["type"] == "n8n-nodes-base.scheduleTrigger":
            node.update(type="n8n-nodes-base.manualTrigger", typeVersion=1, parameters={})
    return wf


def run_workflow(
    workflow: dict[str, Any],
    folder: Path,
    env: dict[str, str],
    harness_dir: Path | None = None,
    timeout: float = 400,
) -> tuple[int, dict[str, Any]]:
    """`n8n-harness run`: exit code and n8n's JSON result (the whole run data)."""
    require_n8n()
    path = folder / f"{workflow['id']}.json"
    path.write_text(json.dumps(workflow), encoding="utf-8")
    run_env = {**os.environ, **env}
    if harness_dir is not None:
        run_env["N8N_HARNESS_DIR"] = str(harness_dir)
    proc = subprocess.run(
        [str(HARNESS), "run", str(path)],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    out = proc.stdout
    start = out.find("{")
    if start < 0:
        raise AssertionError(f"n8n printed no result: {out[-2000:]} {proc.stderr[-2000:]}")
    result, _ = json.JSONDecoder().raw_decode(out[start:])
    return proc.returncode, result


def node_runs(result: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return result["data"]["resultData"]["runData"].get(name, [])


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Sink:
    """A loopback HTTP endpoint that answers 200 and records each POST."""

    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    fail_first: dict[str, int] = field(default_factory=dict)  # path -> requests answered 503

    def start(self) -> Sink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                sink.received.append(Received(self.path, headers, body))
                if sink.fail_first.get(self.path, 0) > 0:
                    sink.fail_first[self.path] -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 120.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.at(path)
            if len(got) >= count:
                return got
            time.sleep(0.2)
        raise AssertionError(f"{path}: {len(self.at(path))} requests after {timeout}s, not {count}")

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@dataclass
class N8nServer:
    """`n8n start` with one workflow imported and active (and `others` imported beside it, e.g.
    the error workflow), the API key credential created, in a user folder of its own."""

    folder: Path
    port: int
    workflow: dict[str, Any]
    env: dict[str, str]
    api_key: str | None = None
    others: list[dict[str, Any]] = field(default_factory=list)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            **N8N_ENV,
            **self.env,
            "N8N_USER_FOLDER": str(self.folder),
            "N8N_PORT": str(self.port),
            "N8N_LISTEN_ADDRESS": "127.0.0.1",
        }

    def start(self, timeout: float = 180.0) -> N8nServer:
        require_n8n()
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.api_key is not None:
            import_api_key(self.folder, self.api_key)
        commands = []
        for n, workflow in enumerate([*self.others, self.workflow]):
            path = self.folder / f"workflow-{n}.json"
            path.write_text(json.dumps(workflow), encoding="utf-8")
            commands.append(["import:workflow", f"--input={path}"])
        commands.append(["update:workflow", f"--id={self.workflow['id']}", "--active=true"])
        for args in commands:
            subprocess.run(
                [str(N8N_BIN), *args],
                env=self._env(),
                cwd=HARNESS_DIR,
                check=True,
                capture_output=True,
                timeout=timeout,
            )
        log = open(self.folder / "n8n.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [str(N8N_BIN), "start"],
            env=self._env(),
            cwd=HARNESS_DIR,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"n8n exited: {self.log()[-2000:]}")
            if "Activated workflow" in self.log():
                try:
                    if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            time.sleep(0.5)
        raise RuntimeError(f"n8n did not start in time: {self.log()[-2000:]}")

    def log(self) -> str:
        path = self.folder / "n8n.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
