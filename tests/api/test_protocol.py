"""The request head deadline, against a real `cobranza serve` on loopback: a client that sends its
headers a byte at a time, or nothing at all, loses its connection, while others are served.

Bounds are generous (the machine is shared): the deadline is 2 s and a connection still open after
60 s fails the test; nothing here measures how fast the server closes it.
"""

from __future__ import annotations

import select
import socket
import time

import pytest

from cobranza.api.keys import create_key
from cobranza.config import load_settings
from tests.api.conftest import LiveServer, free_port
from tests.http import live_client

HEAD_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0
BOUND = 60.0  # a connection held this long was not closed by the deadline


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    lake = tmp_path_factory.mktemp("protocol") / "lake"
    key = create_key(load_settings(lake=lake), "operator", "protocol")["key"]
    env = {
        "COBRANZA_API_HEAD_TIMEOUT_SECONDS": str(HEAD_TIMEOUT),
        "COBRANZA_API_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
    }
    live = LiveServer(lake, free_port(), env=env).start()
    live.key = key
    yield live
    live.stop()


def _closed(sock: socket.socket) -> tuple[bool, bytes]:
    """Whether the server closed the connection (EOF or reset), and what it sent meanwhile."""
    got = b""
    while select.select([sock], [], [], 0)[0]:
        try:
            chunk = sock.recv(4096)
        except ConnectionError:
            return True, got
        if not chunk:
            return True, got
        got += chunk
    return False, got


def _trickle(port: int, head: bytes, every: float = 1.0) -> tuple[int, bytes, float]:
    """Send `head` one byte per `every` seconds (then keep sending header bytes) until the server
    closes the connection or BOUND passes: bytes sent, what the server answered, seconds."""
    start = time.monotonic()
    sent, answer = 0, b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        payload = iter(head + b"x" * 10_000)
        while time.monotonic() - start < BOUND:
            closed, got = _closed(sock)
            answer += got
            if closed:
                return sent, answer, time.monotonic() - start
            try:
                sock.sendall(bytes([next(payload)]))
            except ConnectionError:
                return sent, answer + _closed(sock)[1], time.monotonic() - start
            sent += 1
            time.sleep(every)
    return sent, answer, time.monotonic() - start


def test_a_head_sent_a_byte_at_a_time_is_cut_off_while_others_are_served(server):
    sent, answer, seconds = _trickle(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    assert seconds < BOUND, "the trickling connection was never closed"
    assert sent >= 1
    # 408, unless a byte sent as the server closed reset the connection before it was read
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408")
    with live_client(base_url=server.url, timeout=60) as http:
        assert http.get("/healthz").status_code == 200


def test_a_body_sent_a_byte_at_a_time_is_cut_off_while_a_whole_body_is_served(server):
    """An authorized head arrives whole and promises 1,000 bytes of body; they trickle one a
    second, so no response can start before the deadline."""
    head = (
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + server.key.encode() + b"\r\nContent-Length: 1000\r\n\r\n"
    )
    start = time.monotonic()
    answer, closed = b"", False
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        for byte in b"{" + b" " * 998 + b"}":
            closed, got = _closed(sock)
            answer += got
            if closed or time.monotonic() - start > BOUND:
                break
            try:
                sock.sendall(bytes([byte]))
            except ConnectionError:
                closed = True
                break
            time.sleep(1.0)
    assert closed, "the trickling body's connection was never closed"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408")
    with live_client(base_url=server.url, timeout=60) as http:
        whole = http.post(
            "/v1/predict",
            content=b"{" + b" " * 998 + b"}",
            headers={"Authorization": f"Bearer {server.key}", "Content-Type": "application/json"},
        )
    assert whole.status_code == 422  # read whole, then refused as an empty request


def test_a_connection_that_sends_nothing_is_answered_408_and_closed(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=BOUND) as sock:
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except TimeoutError:
            pytest.fail("a silent connection was never closed")
    assert answer.startswith(b"HTTP/1.1 408")


def test_the_next_request_on_a_kept_alive_connection_has_its_own_deadline(server):
    """A first request served normally; the second's head trickles and is cut off."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while b'"ok"' not in first:
            chunk = sock.recv(4096)
            assert chunk, first
            first += chunk
        assert first.startswith(b"HTTP/1.1 200")
        closed = False
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 1000:
            closed, _ = _closed(sock)
            if closed or time.monotonic() - start > BOUND:
                break
            try:
                sock.sendall(bytes([byte]))
            except ConnectionError:
                closed = True
                break
            time.sleep(0.5)
    assert closed, "the second request's trickling head was never cut off"


def _get_healthz(port: int, source: str) -> bytes:
    """One GET /healthz from the loopback address `source`: the server's whole answer."""
    with socket.create_connection(
        ("127.0.0.1", port), timeout=BOUND, source_address=(source, 0)
    ) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return _read_all(sock)


def _read_all(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(4096):
        answer += chunk
    return answer


def _refused(port: int, source: str) -> bytes:
    """What the server says, unasked, to a new connection from `source` (b"" if nothing before
    the head deadline): a connection beyond the address's share is answered at once."""
    with socket.create_connection(
        ("127.0.0.1", port), timeout=BOUND, source_address=(source, 0)
    ) as sock:
        return _read_all(sock)


def test_one_address_holds_at_most_its_connections_while_others_are_served(tmp_path):
    env = {
        "COBRANZA_API_MAX_CONNECTIONS_PER_ADDRESS": "4",
        "COBRANZA_API_HEAD_TIMEOUT_SECONDS": "600",  # the held connections stay open
    }
    live = LiveServer(tmp_path / "lake", free_port(), env=env).start()
    held = []
    try:
        for _ in range(4):
            held.append(
                socket.create_connection(
                    ("127.0.0.1", live.port), timeout=BOUND, source_address=("127.0.0.2", 0)
                )
            )
        assert _refused(live.port, "127.0.0.2").startswith(b"HTTP/1.1 503")
        assert _get_healthz(live.port, "127.0.0.3").startswith(b"HTTP/1.1 200")
        held.pop().close()
        start = time.monotonic()
        answer = b""
        while time.monotonic() - start < BOUND:  # once the server has seen the close
            answer = _get_healthz(live.port, "127.0.0.2")
            if answer.startswith(b"HTTP/1.1 200"):
                break
            time.sleep(0.2)
        assert answer.startswith(b"HTTP/1.1 200")
    finally:
        for sock in held:
            sock.close()
        live.stop()


def test_a_head_past_16_kib_is_refused_431_while_a_12_kib_head_is_served(tmp_path):
    """A header sent without end is cut off by its size, long before the head's deadline."""
    env = {"COBRANZA_API_HEAD_TIMEOUT_SECONDS": "600"}  # only the size can end the endless head
    live = LiveServer(tmp_path / "lake", free_port(), env=env).start()
    try:
        with live_client(base_url=live.url, timeout=60) as http:
            assert http.get("/healthz", headers={"X-Pad": "p" * 12 * 1024}).status_code == 200
        start = time.monotonic()
        answer, closed, sent = b"", False, 0
        with socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: ")
            while time.monotonic() - start < BOUND:
                closed, got = _closed(sock)
                answer += got
                if closed:
                    break
                try:
                    sock.sendall(b"a" * 4096)
                except ConnectionError:
                    closed = True
                    answer += _closed(sock)[1]
                    break
                sent += 4096
                time.sleep(0.01)
        assert closed, f"an endless head was still open after {sent:,} bytes"
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431")
    finally:
        live.stop()
