"""Monitoring of the model in operation (seed §8): data drift, score drift and realized performance."""

from cobranza.monitoring.monitor import monitor

__all__ = ["monitor"]
