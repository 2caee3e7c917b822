"""An HTTP client for tests against a live `cobranza serve`.

uvicorn closes an idle keep-alive connection after 5 s; a pooled connection kept longer than that
(a test that trains a model between two requests) can be reused at the moment the server closes
it, and the request fails with "Server disconnected". The pool here drops idle connections well
before the server does.
"""

from __future__ import annotations

import httpx

SERVER_KEEP_ALIVE_SECONDS = 5  # uvicorn's default timeout_keep_alive


def live_client(**kwargs) -> httpx.Client:
    limits = httpx.Limits(keepalive_expiry=SERVER_KEEP_ALIVE_SECONDS / 5)
    return httpx.Client(limits=limits, **kwargs)
