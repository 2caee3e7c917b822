"""Online scoring: the champion model cached in the service, reloaded when the champion changes.

With a challenger registered (and `experiment.challenger_share > 0`) it is loaded beside the
champion and decides the experiment's CHALLENGER arm, as batch scoring does; a change of either
alias reloads both. A request then needs the features of both models.

Predict scores with the same models and policy as the batch (the champion's self-cure and roll models,
today's costs and capacity): small requests through `cobranza.decision.online.OnlineScorer` (prepared once per loaded
model), others through `cobranza.decision.scoring.score_frame`, the very path of batch scoring. The champion alias is
re-checked in a background thread at most every `check_seconds`, so a request never waits for the
registry unless no model has been loaded yet.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cobranza.config import Settings
from cobranza.decision.experiment import ArmDesign
from cobranza.decision.online import OnlineScorer
from cobranza.decision.policy import champion_policy
from cobranza.decision.reasons import feature_templates

log = logging.getLogger("cobranza.api.champion")


class NoChampion(Exception):
    """No model holds the champion alias (or it cannot be loaded)."""


@dataclass
class Loaded:
    champion: Any
    policy: Any
    version: str
    features: list[str]
    categorical: set[str]
    templates: dict[str, str]
    loaded_at: float
    online: Any = None  # OnlineScorer for this model and policy
    language: str = "en"  # of the reason texts
    design: ArmDesign | None = None  # the experiment's arms, as batch scoring draws them
    challenger: Any = None  # the registered challenger deciding the CHALLENGER arm, or None
    challenger_version: str | None = None  # the challenger alias's version when it was loaded


def champion_version(settings: Settings) -> str | None:
    """The version behind the champion alias, asked of the registry (cheap: one metadata query)."""
    # the registry brings MLflow, loaded with the first model: the service answers /healthz and
    # /docs at once, also on a lake that has no model yet
    from cobranza.ml.registry import champion_version as registry_champion_version

    return registry_champion_version(settings)


def challenger_version(settings: Settings) -> str | None:
    """The version behind the challenger alias when it is not the champion's (one query)."""
    from cobranza.ml.registry import challenger_version as registry_challenger_version

    return registry_challenger_version(settings)


def _categorical(model: Any) -> set[str]:
    encoder = getattr(model, "encoder_", None)
    if encoder is not None and hasattr(encoder, "categories_"):
        return set(encoder.categories_)
    return set(getattr(model, "categorical", None) or [])


class ChampionCache:
    def __init__(
        self,
        settings: Settings,
        check_seconds: float = 5.0,
        after_load: Callable[[], None] | None = None,
    ):
        self.settings = settings
        self.check_seconds = check_seconds
        self.after_load = after_load  # e.g. freeze the GC's view of the model's objects
        self._loaded: Loaded | None = None
        self._checked_at = 0.0
        self._load_lock = threading.Lock()
        self._refreshing = False
        # The last failed load and when: until `check_seconds` pass, callers get it again instead
        # of each asking the registry (readiness probes and predict calls before the first model).
        self._failure: tuple[float, NoChampion] | None = None

    def _load(self) -> Loaded:
        # MLflow, with the first model (see above)
        from cobranza.decision.scoring import challenger_for
        from cobranza.ml.registry import load_champion

        try:
            asked = challenger_version(self.settings)
            champion = load_champion(self.settings)
            model = champion.model
            policy = champion_policy(
                champion, self.settings.costs.daily_capacity, self.settings.costs
            )
            language = self.settings.reason_language
            templates = feature_templates(language)
            design = ArmDesign.from_settings(self.settings.experiment)
            challenger, skipped = challenger_for(self.settings, design)
            if skipped:
                log.warning(skipped)
            features = list(model.feature_names_)
            categorical = _categorical(model)
            other = None
            if challenger is not None:
                features += [f for f in challenger.features if f not in features]
                categorical |= _categorical(challenger.model)
                other = OnlineScorer(
                    challenger.model,
                    policy,
                    templates,
                    str(challenger.version),
                    language,
                    challenger.roll,
                    design,
                )
            loaded = Loaded(
                champion=champion,
                policy=policy,
                version=str(champion.version),
                features=features,
                categorical=categorical,
                templates=templates,
                loaded_at=time.time(),
                online=OnlineScorer(
                    model,
                    policy,
                    templates,
                    str(champion.version),
                    language,
                    champion.roll,
                    design,
                    challenger=other,
                ),
                language=language,
                design=design,
                challenger=challenger,
                challenger_version=asked,
            )
        except Exception as exc:
            raise NoChampion(f"no champion model can be loaded: {exc}") from exc
        log.info(
            "champion loaded",
            extra={"model_version": loaded.version, "challenger_version": asked},
        )
        if self.after_load is not None:
            self.after_load()
        return loaded

    def current(self) -> Loaded | None:
        """The loaded model without waiting (None before the first load); schedules the re-check."""
        loaded = self._loaded
        if loaded is not None:
            self._maybe_refresh()
        return loaded

    def _maybe_refresh(self) -> None:
        if time.monotonic() - self._checked_at > self.check_seconds and not self._refreshing:
            self._refreshing = True
            threading.Thread(target=self._refresh, name="champion-refresh", daemon=True).start()

    def get(self) -> Loaded:
        loaded = self._loaded
        if loaded is None:
            with self._load_lock:
                if self._loaded is None:
                    failure = self._failure
                    if failure is not None and time.monotonic() - failure[0] < self.check_seconds:
                        raise failure[1]
                    try:
                        self._loaded = self._load()
                    except NoChampion as exc:
                        self._failure = (time.monotonic(), exc)
                        raise
                    self._failure = None
                    self._checked_at = time.monotonic()
                return self._loaded
        self._maybe_refresh()
        return loaded

    def _refresh(self) -> None:
        try:
            version = champion_version(self.settings)
            other = challenger_version(self.settings) if version is not None else None
            current = self._loaded
            if version is not None and (
                current is None or version != current.version or other != current.challenger_version
            ):
                fresh = self._load()
                with self._load_lock:
                    self._loaded = fresh
        except Exception:
            log.exception("champion refresh failed; keeping the loaded model")
        finally:
            self._checked_at = time.monotonic()
            self._refreshing = False

    def refresh_now(self) -> None:
        """Check the alias synchronously (after a promotion through this service); never raises."""
        self._failure = None
        self._refresh()

    @property
    def loaded_version(self) -> str | None:
        return self._loaded.version if self._loaded else None
