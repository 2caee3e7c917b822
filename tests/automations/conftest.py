"""Session fixture of the consumption tests: a scored lake served by a real `cobranza serve`.

Built once (about a minute: an ingest, a training, three scorings, impact and monitoring) and
shared by the n8n and Power BI tests; the n8n tests add scoring runs through the API, the Power BI
tests only read.
"""

from __future__ import annotations

import pytest

from cobranza.api.keys import create_key
from tests.api.conftest import LiveServer, free_port
from tests.automations.lake import build_scored_lake
from tests.automations.n8n import Sink


@pytest.fixture(scope="session")
def served(tmp_path_factory, sim_extract):
    root = tmp_path_factory.mktemp("consume")
    scored = build_scored_lake(root, sim_extract)
    settings = scored["settings"]
    keys = {
        role: create_key(settings, role, f"consume-{role}")["key"]
        for role in ("viewer", "operator", "admin")
    }
    # n8n, the internal receiver of webhooks, listens on loopback: listed like a bank's n8n host
    hosts = {"COBRANZA_API_WEBHOOK_HOSTS": "127.0.0.1"}
    server = LiveServer(scored["lake"].root, free_port(), env=hosts).start()
    sink = Sink().start()
    try:
        yield {"root": root, "server": server, "keys": keys, "sink": sink, **scored}
    finally:
        sink.stop()
        server.stop()
