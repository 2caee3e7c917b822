"""uvicorn's HTTP protocol with a deadline on each request head (request line and headers).

uvicorn bounds idle keep-alive connections and open connections, but not the time a request's
head may take to arrive: a client sending its headers a byte at a time (slowloris) holds a
connection, and so one of the `limit_concurrency` slots, for as long as it likes. Here the head of
each request must be complete within `head_timeout` seconds of the connection opening or of the
request's first byte; a head that is late is answered 408 (when no earlier response is still
being written) and the connection is closed. A request's body must then be complete within
`body_timeout` seconds of its head (bodies are also bounded by size, by the request middleware): a
body that trickles is answered 408 if no response has started, and the connection is closed. The
keep-alive timeout still closes idle connections between requests.

A request head is also bounded in size (`max_head_bytes`, 16 KiB): httptools, unlike h11, sets
no limit, and a header sent without end would otherwise grow in the parser's buffer (tens of MB
a connection, with the event loop's CPU) until the deadline. A longer head is answered 431 and
the connection is closed.

One client address may also hold at most `max_per_address` connections: beyond them a new one is
answered 503 and closed. uvicorn's `limit_concurrency` counts every connection together, so a
single caller opening hundreds (an open-loop burst against a busy server does) would otherwise
leave other callers only 503s.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("cobranza.api")

REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
    b"Connection: close\r\n\r\n"
)
TOO_MANY_CONNECTIONS = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\n"
    b"Connection: close\r\n\r\n"
)


class HeadDeadlineProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` that closes a connection whose request head is late, and one beyond
    the connections one client address may hold."""

    head_timeout: float = 10.0
    body_timeout: float = 30.0
    max_head_bytes: int = 16 * 1024
    max_per_address: int = 64
    open_by_address: ClassVar[dict[str, int]] = {}  # of the served process (one event loop)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._address = self.client[0] if self.client else None
        if self._address is not None:
            held = self.open_by_address.get(self._address, 0) + 1
            self.open_by_address[self._address] = held
            if held > self.max_per_address:
                # one caller's flood of connections must not take every slot of
                # `limit_concurrency` from the others
                self.transport.write(TOO_MANY_CONNECTIONS)
                self.transport.close()
                return
        self._arm_head_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        # Bytes of a chunk received while a head was already under way and that leaves it still
        # incomplete are all head bytes; a chunk in which a head begins is not counted, so a
        # head is cut off within one chunk past the limit and a pipelined body never counts.
        head_before = self._head_deadline is not None
        super().data_received(data)
        if head_before and self._head_deadline is not None and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._disarm_head_deadline()
                log.warning(
                    "request head too large: connection closed",
                    extra={"client": self.client[0] if self.client else None},
                )
                self.transport.write(HEAD_TOO_LARGE)
                self.transport.close()

    def on_headers_complete(self) -> None:
        self._disarm_head_deadline()
        self._head_bytes = 0
        super().on_headers_complete()
        if self._body_deadline is None and not self.transport.is_closing():
            self._body_deadline = self.loop.call_later(self.body_timeout, self._body_too_late)

    def on_message_complete(self) -> None:
        self._disarm_body_deadline()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        self._disarm_body_deadline()
        address = getattr(self, "_address", None)
        if address is not None:
            held = self.open_by_address.get(address, 1) - 1
            if held > 0:
                self.open_by_address[address] = held
            else:
                self.open_by_address.pop(address, None)
            self._address = None
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.head_timeout, self._head_too_late)

    def _disarm_head_deadline(self) -> None:
        deadline = getattr(self, "_head_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._head_deadline = None

    def _head_too_late(self) -> None:
        self._head_deadline = None
        # a late head is the next request's: answer unless the last response is still going out
        self._close(
            "request head not complete in time", self.cycle is None or self.cycle.response_complete
        )

    def _disarm_body_deadline(self) -> None:
        deadline = getattr(self, "_body_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._body_deadline = None

    def _body_too_late(self) -> None:
        self._body_deadline = None
        self._close(
            "request body not complete in time",
            self.cycle is None or not self.cycle.response_started,
        )

    def _close(self, why: str, answer: bool) -> None:
        """Close a connection whose request is late, answering 408 first when `answer`."""
        if self.transport.is_closing():
            return
        log.warning(
            f"{why}: connection closed", extra={"client": self.client[0] if self.client else None}
        )
        if answer:
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()


def head_deadline_protocol(
    seconds: float, per_address: int = 64, body_seconds: float = 30.0
) -> type[HeadDeadlineProtocol]:
    """The protocol class for `uvicorn.run(http=...)`: a head deadline of `seconds`, a body
    deadline of `body_seconds` after the head, at most `per_address` open connections from one
    client address (its own count of them)."""
    return type(
        "HeadDeadlineProtocol",
        (HeadDeadlineProtocol,),
        {
            "head_timeout": float(seconds),
            "body_timeout": float(body_seconds),
            "max_per_address": int(per_address),
            "open_by_address": {},
        },
    )
