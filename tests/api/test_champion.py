"""The champion cache: a failed load is remembered for `check_seconds`, not retried per call."""

from __future__ import annotations

import pytest

from cobranza.api.champion import ChampionCache, NoChampion


class CountingCache(ChampionCache):
    """The real cache over a real (empty) MLflow store, counting how often it asks the registry."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loads = 0

    def _load(self):
        self.loads += 1
        return super()._load()


def test_a_failed_load_is_not_retried_until_the_check_interval_passes(settings):
    cache = CountingCache(settings, check_seconds=3600)
    for _ in range(5):  # e.g. readiness probes or predict calls before the first model
        with pytest.raises(NoChampion, match="no champion model can be loaded"):
            cache.get()
    assert cache.loads == 1
    cache.refresh_now()  # a promotion through the service forgets the failure
    with pytest.raises(NoChampion):
        cache.get()
    assert cache.loads == 2


def test_with_no_interval_every_call_asks_again(settings):
    cache = CountingCache(settings, check_seconds=0)
    for _ in range(3):
        with pytest.raises(NoChampion):
            cache.get()
    assert cache.loads == 3
