"""Webhooks: registered URLs called when a job finishes, signed, retried, every attempt recorded.

The body is JSON. Each attempt carries `X-Cobranza-Delivery` (the delivery id, the same on every
retry), `X-Cobranza-Timestamp` (Unix seconds of this attempt) and `X-Cobranza-Signature:
sha256=<hex>`, the HMAC-SHA256 with the webhook's secret (returned once at registration) of
`<timestamp>.<delivery id>.<raw body>` (the Stripe / Standard Webhooks scheme): a receiver such as
the n8n router verifies it, refuses a timestamp older than its tolerance and an id it has seen, so
a captured delivery can be replayed neither later nor under another id.

Targets are checked by `egress.EgressPolicy`: by default only public addresses, the resolved
address checked at every attempt and connected to directly (no second DNS lookup), redirects never
followed; an internal receiver (n8n usually is) must be listed in `COBRANZA_API_WEBHOOK_HOSTS`. A
URL's `user:password@` is kept only in the control DB (to call it) and shown as `***@` elsewhere.

Every delivery is first written to the `outbox` table (body, attempts made, done or not), so a
service that stops or dies between retries loses none: at the next start `resume` picks up each
unfinished delivery where it stopped, with the same delivery id and the same body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
import uuid
from typing import Any

import httpx

from cobranza.api.control import ControlDB, now_iso
from cobranza.api.egress import EgressPolicy, Target, TargetRefused
from cobranza.api.redaction import redact, redact_value

log = logging.getLogger("cobranza.api.webhooks")

EVENTS = ("job.succeeded", "job.failed", "job.cancelled", "job.interrupted")
SIGNATURE_HEADER = "X-Cobranza-Signature"
TIMESTAMP_HEADER = "X-Cobranza-Timestamp"
DELIVERY_HEADER = "X-Cobranza-Delivery"


def sign(secret: str, timestamp: int, delivery_id: str, body: bytes) -> str:
    """`sha256=` and the hex HMAC-SHA256 of `<timestamp>.<delivery id>.<body>`."""
    message = f"{timestamp}.{delivery_id}.".encode() + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


_USERINFO = re.compile(r"(?<=//)[^/?#@\s]+@")


def mask_url(url: str) -> str:
    """The URL with any `user:password@` shown as `***@`: the clear URL is only in the control DB,
    to be called; listings, responses and logs get this."""
    return _USERINFO.sub("***@", url)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "webhook_id": row["webhook_id"],
        "url": mask_url(row["url"]),
        "events": json.loads(row["events"]),
        "description": row["description"],
        "created_at": row["created_at"],
        "created_by": row["created_by"],
        "active": bool(row["active"]),
    }


class Webhooks:
    def __init__(
        self,
        db: ControlDB,
        max_attempts: int = 5,
        backoff_seconds: float = 1.0,
        timeout_seconds: float = 10.0,
        allowed_hosts: Any = None,
    ):
        self.db = db
        # None: public addresses only; else only the listed names, addresses and networks
        self.egress = EgressPolicy(allowed_hosts)
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.timeout_seconds = timeout_seconds
        self._threads: list[threading.Thread] = []

    def refusal(self, url: str) -> str | None:
        """Why a URL may not be registered (None: it may); checked again at each delivery."""
        try:
            self.egress.check_registration(url)
        except TargetRefused as exc:
            return str(exc)
        return None

    # -- registry --
    def register(
        self, url: str, events: list[str], description: str | None, created_by: str | None
    ) -> dict[str, Any]:
        webhook_id = uuid.uuid4().hex[:12]
        secret = secrets.token_hex(32)
        self.db.execute(
            "INSERT INTO webhooks (webhook_id, url, secret, events, description, created_at, "
            "created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (webhook_id, url, secret, json.dumps(events), description, now_iso(), created_by),
        )
        return {**self.get(webhook_id), "secret": secret}

    def get(self, webhook_id: str) -> dict[str, Any] | None:
        row = self.db.one("SELECT * FROM webhooks WHERE webhook_id = ?", (webhook_id,))
        return _public(row) if row else None

    def list(self) -> list[dict[str, Any]]:
        return [_public(r) for r in self.db.all("SELECT * FROM webhooks ORDER BY created_at")]

    def deactivate(self, webhook_id: str) -> dict[str, Any] | None:
        if self.get(webhook_id) is None:
            return None
        self.db.execute("UPDATE webhooks SET active = 0 WHERE webhook_id = ?", (webhook_id,))
        return self.get(webhook_id)

    def deliveries(self, webhook_id: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.db.all(
            "SELECT * FROM deliveries WHERE webhook_id = ? ORDER BY at DESC, attempt DESC LIMIT ?",
            (webhook_id, limit),
        )
        for r in rows:
            r["ok"] = bool(r["ok"])
        return rows

    # -- delivery --
    def job_finished(self, job: dict[str, Any]) -> None:
        """Fan a finished job out to every active webhook subscribed to its status."""
        event = f"job.{job['status']}"
        # the free-text fields are masked by the job manager already; masked here again because
        # the body leaves the service and is stored in the outbox
        fields = _masked_job({k: job.get(k) for k in _JOB_FIELDS})
        payload = {"event": event, "sent_at": now_iso(), "job": fields}
        body = json.dumps(payload, default=str, separators=(",", ":")).encode("utf-8")
        for row in self.db.all("SELECT * FROM webhooks WHERE active = 1"):
            if event not in json.loads(row["events"]):
                continue
            delivery_id = uuid.uuid4().hex[:16]
            self.db.execute(
                "INSERT INTO outbox (delivery_id, webhook_id, job_id, event, body, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (delivery_id, row["webhook_id"], job["job_id"], event, body, now_iso()),
            )
            self._start(delivery_id, row, event, job["job_id"], body, first_attempt=1)

    def resume(self) -> int:
        """Restart the deliveries a previous service left unfinished; returns how many."""
        pending = self.db.all(
            "SELECT o.delivery_id, o.job_id, o.event, o.body, o.attempts, w.webhook_id, w.url, "
            "w.secret, w.active FROM outbox o JOIN webhooks w USING (webhook_id) "
            "WHERE o.done_at IS NULL ORDER BY o.created_at"
        )
        resumed = 0
        for row in pending:
            if not row["active"] or row["attempts"] >= self.max_attempts:
                outcome = "webhook deactivated" if not row["active"] else "gave up"
                self._finish(row["delivery_id"], outcome)
                continue
            self._start(
                row["delivery_id"],
                row,
                row["event"],
                row["job_id"],
                bytes(row["body"]),
                first_attempt=row["attempts"] + 1,
                wait_first=row["attempts"] > 0,
            )
            resumed += 1
        if resumed:
            log.info("webhook deliveries resumed", extra={"deliveries": resumed})
        return resumed

    def _start(
        self,
        delivery_id: str,
        hook: dict[str, Any],
        event: str,
        job_id: str,
        body: bytes,
        first_attempt: int,
        wait_first: bool = False,
    ) -> None:
        thread = threading.Thread(
            target=self._deliver,
            args=(
                delivery_id,
                hook["webhook_id"],
                hook["url"],
                hook["secret"],
                event,
                job_id,
                body,
            ),
            kwargs={"first_attempt": first_attempt, "wait_first": wait_first},
            name=f"webhook-{hook['webhook_id']}",
            daemon=True,
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _finish(self, delivery_id: str, outcome: str) -> None:
        self.db.execute(
            "UPDATE outbox SET done_at = ?, outcome = ? WHERE delivery_id = ?",
            (now_iso(), outcome, delivery_id),
        )

    def _deliver(
        self,
        delivery_id: str,
        webhook_id: str,
        url: str,
        secret: str,
        event: str,
        job_id: str,
        body: bytes,
        first_attempt: int = 1,
        wait_first: bool = False,
    ) -> None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "cobranza-webhooks/1",
            "X-Cobranza-Event": event,
            DELIVERY_HEADER: delivery_id,
        }
        if wait_first:  # a resumed delivery keeps its backoff before the next attempt
            time.sleep(self.backoff_seconds * 2 ** (first_attempt - 2))
        for attempt in range(first_attempt, self.max_attempts + 1):
            t0 = time.perf_counter()
            try:
                target = self.egress.target(url)
            except TargetRefused as exc:  # the policy, not the network: no retry
                self._record(
                    delivery_id,
                    webhook_id,
                    job_id,
                    event,
                    attempt,
                    None,
                    False,
                    f"refused: {exc}",
                    0.0,
                )
                self._finish(delivery_id, "refused")
                log.warning("webhook target refused", extra={"webhook_id": webhook_id})
                return
            except OSError:
                target = None
            status_code, error, ok = None, "the host name does not resolve", False
            if target is not None:
                status_code, error = self._post(target, secret, delivery_id, body, headers, attempt)
                ok = error is None
            elapsed_ms = round((time.perf_counter() - t0) * 1000, 2)
            self._record(
                delivery_id, webhook_id, job_id, event, attempt, status_code, ok, error, elapsed_ms
            )
            if ok:
                self._finish(delivery_id, "delivered")
                return
            if attempt < self.max_attempts:
                time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        self._finish(delivery_id, "gave up")
        log.warning(
            "webhook delivery gave up",
            extra={"webhook_id": webhook_id, "job_id": job_id, "attempts": self.max_attempts},
        )

    def _post(
        self,
        target: Target,
        secret: str,
        delivery_id: str,
        body: bytes,
        headers: dict[str, str],
        attempt: int,
    ) -> tuple[int | None, str | None]:
        """One signed attempt to the checked address: (status code, error or None)."""
        timestamp = int(time.time())
        extra = target.request_kwargs()
        signed = {
            **headers,
            **extra["headers"],
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, delivery_id, body),
            "X-Cobranza-Attempt": str(attempt),
        }
        try:
            with httpx.Client(timeout=self.timeout_seconds, follow_redirects=False) as client:
                resp = client.post(
                    target.url, content=body, headers=signed, extensions=extra["extensions"]
                )
        except httpx.HTTPError as exc:  # the text may quote the URL: never its password
            return None, mask_url(f"{type(exc).__name__}: {exc}")[:500]
        if 200 <= resp.status_code < 300:
            return resp.status_code, None
        return resp.status_code, f"HTTP {resp.status_code}"

    def _record(
        self,
        delivery_id: str,
        webhook_id: str,
        job_id: str,
        event: str,
        attempt: int,
        status_code: int | None,
        ok: bool,
        error: str | None,
        duration_ms: float,
    ) -> None:
        self.db.execute(
            "INSERT INTO deliveries (delivery_id, webhook_id, job_id, event, attempt, at, "
            "status_code, ok, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                delivery_id,
                webhook_id,
                job_id,
                event,
                attempt,
                now_iso(),
                status_code,
                int(ok),
                error,
                duration_ms,
            ),
        )
        self.db.execute(
            "UPDATE outbox SET attempts = ? WHERE delivery_id = ?", (attempt, delivery_id)
        )

    def redact_stored(self) -> int:
        """Mask the job text of bodies stored before masking existed (startup); returns how many.

        A resumed delivery then carries the masked body, signed as usual.
        """
        changed = 0
        for row in self.db.all("SELECT delivery_id, body FROM outbox"):
            try:
                payload = json.loads(bytes(row["body"]))
                job = payload["job"]
                masked = _masked_job(job)
            except (ValueError, KeyError, TypeError):
                continue
            if masked != job:
                payload["job"] = masked
                body = json.dumps(payload, default=str, separators=(",", ":")).encode("utf-8")
                self.db.execute(
                    "UPDATE outbox SET body = ? WHERE delivery_id = ?", (body, row["delivery_id"])
                )
                changed += 1
        return changed

    def join(self, timeout: float = 5.0) -> None:
        for thread in list(self._threads):
            thread.join(timeout)


_JOB_FIELDS = (
    "job_id",
    "type",
    "status",
    "created_at",
    "started_at",
    "finished_at",
    "seconds",
    "error",
    "result",
)


def _masked_job(job: dict[str, Any]) -> dict[str, Any]:
    """A copy of a job's fields with its free text (error, result) masked."""
    masked = dict(job)
    if masked.get("error") is not None:
        masked["error"] = redact(str(masked["error"]))
    if masked.get("result") is not None:
        masked["result"] = redact_value(masked["result"])
    return masked
