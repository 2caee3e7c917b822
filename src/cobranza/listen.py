"""Whether `cobranza serve` can listen on an address, checked before the API's imports (FastAPI,
the routers, the layers they read take seconds): a busy port is said at once, in words."""

from __future__ import annotations

import errno
import socket

from cobranza.errors import CobranzaError


def check_address(host: str, port: int) -> None:
    """Refuse at once, in words, an address the service could not listen on (a busy port), which
    uvicorn would only report as a log line before exiting."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise CobranzaError(f"--host {host!r}: cannot be resolved ({exc.strerror})") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CobranzaError(
                    f"port {port} on {host} is already in use (another `cobranza serve` or "
                    "another program); stop it or choose another port with --port"
                ) from None
            raise CobranzaError(
                f"cannot listen on {host} port {port}: {exc.strerror or exc}"
            ) from None
