"""Worker pools: which queues each group of workers takes, as delayed_job's ``--pool``.

``"zenodo:1"`` is one worker on queue zenodo, ``"mail,sms:2"`` two workers on
mail and sms, ``"*:2"`` two workers on every queue. Without pools, the
config's ``workers`` take the config's ``queues``.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import Config
from .errors import ConfigError


@dataclass(frozen=True)
class Pool:
    """``size`` workers taking ``queues`` (empty: the config's queues)."""

    queues: tuple[str, ...]
    size: int

    def label(self) -> str:
        return ",".join(self.queues) or "*"


def parse_pool(spec: str) -> Pool:
    """One ``queues:count`` spec; a missing count means one worker."""
    names, _, count = spec.strip().rpartition(":") if ":" in spec else (spec.strip(), "", "1")
    try:
        size = int(count)
    except ValueError:
        raise ConfigError(f"pool {spec!r}: worker count {count!r} is not a number") from None
    if size < 1:
        raise ConfigError(f"pool {spec!r}: worker count must be at least 1")
    queues = tuple(q.strip() for q in names.split(",") if q.strip() and q.strip() != "*")
    if not names.strip():
        raise ConfigError(f"pool {spec!r}: name the queues, or * for all")
    return Pool(queues, size)


def pools_of(config: Config) -> list[Pool]:
    """The pools to run: the config's ``pools``, else ``workers`` on the config's queues."""
    if config.pools:
        return [parse_pool(spec) for spec in config.pools]
    return [Pool(config.queues, config.workers)]
