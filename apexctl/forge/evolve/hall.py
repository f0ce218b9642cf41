"""The hall of fame: distinct behaviours, rescored on the held-out span, and their Pareto front."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from apexctl import _core
from apexctl.forge.evolve.config import FINGERPRINT_CHUNK
from apexctl.forge.evolve.market import Market


@dataclass
class Entry:
    """A truly evaluated tree: its backtest fitness and, with --dsg, its simulator PnL (mean over seeds)."""

    text: str
    fitness: float
    size: int
    height: int
    adversarial: float | None = None

    @property
    def objectives(self) -> tuple[float, ...]:
        return (self.fitness,) if self.adversarial is None else (self.fitness, self.adversarial)


def pareto_front(entries: Iterable[Entry]) -> list[Entry]:
    """The non-dominated entries on (fitness, adversarial), one per objective pair (the smallest tree), ordered by
    fitness: a sweep over entries sorted by fitness keeps each one whose adversarial value beats all before it."""
    ordered = sorted(entries, key=lambda e: (-e.fitness, -(e.adversarial or 0.0), e.size, e.text))
    front: list[Entry] = []
    best = float("-inf")
    for entry in ordered:
        value = entry.adversarial if entry.adversarial is not None else float("-inf")
        if value > best:
            front.append(entry)
            best = value
    return front


class Hall:
    """The best truly evaluated behaviours: trees whose training-span signals are bit-equal count once (the
    smallest kept), since they trade identically; ordered by fitness, then size, then text (deterministic). With
    two objectives, by Pareto rank first (the pool's fronts peeled), then the same keys."""

    def __init__(self, size: int, market: Market, terminals: Sequence[str]) -> None:
        self.size = size
        self.entries: list[Entry] = []
        self._names = list(terminals)
        index = {n: i for i, n in enumerate(market.names)}
        self._columns = [np.ascontiguousarray(market.columns[index[n]][: market.train_end]) for n in self._names]
        self._fingerprints: dict[str, bytes] = {}

    def _fingerprint(self, texts: Sequence[str]) -> None:
        todo = [t for t in dict.fromkeys(texts) if t not in self._fingerprints]
        if todo:
            signals = _core.gp_evaluate(todo, self._names, self._columns)
            for text, row in zip(todo, signals, strict=True):
                self._fingerprints[text] = hashlib.sha256(np.ascontiguousarray(row).tobytes()).digest()

    def update(self, candidates: Iterable[Entry]) -> None:
        pool = list({e.text: e for e in [*self.entries, *candidates]}.values())
        if any(e.adversarial is not None for e in pool):
            # Peel fronts (one sort each) until there are enough candidates; the rest cannot rank before them.
            ranks: dict[str, int] = {}
            left, rank = pool, 0
            while left and len(ranks) < 4 * self.size:
                for entry in pareto_front(left):
                    ranks[entry.text] = rank
                left = [e for e in left if e.text not in ranks]
                rank += 1
            pool = [e for e in pool if e.text in ranks]
        else:
            ranks = dict.fromkeys((e.text for e in pool), 0)
        ordered = sorted(pool, key=lambda e: (ranks[e.text], -e.fitness, -(e.adversarial or 0.0), e.size, e.text))
        kept: list[Entry] = []
        seen: set[bytes] = set()
        for first in range(0, len(ordered), FINGERPRINT_CHUNK):
            chunk = ordered[first : first + FINGERPRINT_CHUNK]
            self._fingerprint([e.text for e in chunk])
            for entry in chunk:
                mark = self._fingerprints[entry.text]
                if mark not in seen:
                    seen.add(mark)
                    kept.append(entry)
                    if len(kept) == self.size:
                        break
            if len(kept) == self.size:
                break
        self.entries = kept
