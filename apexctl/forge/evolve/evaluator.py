"""True fitness: GP trees evaluated as signals by apex-gp and backtested by apex-backtest, cached by tree text."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict

import numpy as np

from apexctl import _core
from apexctl.forge.backtest import BacktestParams, bar_arrays
from apexctl.forge.cluster import Cluster
from apexctl.forge.evolve.config import BATCH, METRICS, SIGNAL_CELLS
from apexctl.forge.evolve.market import Market


class Evaluator:
    """Scores GP JSON trees on a span of the market through the Rust batch calls, caching by tree text; each call
    evaluates the subtrees its trees share once (after crossover, most of a generation's).

    `score(trees, span)` (GP JSON texts and a row range -> one metric dict per tree, same order) is the whole
    interface the evolution loop uses, so another evaluator (e.g. one spreading batches over Ray) can replace it."""

    def __init__(self, market: Market, params: BacktestParams, ray: str | None = None) -> None:
        self.market = market
        self.params = asdict(params)
        frame = market.frame
        self.bars = bar_arrays(frame)
        self.cache: dict[tuple[str, int, int], dict[str, float]] = {}
        self.evaluations = 0
        self.ray = ray
        self.cluster: Cluster | None = None
        # Signals are written into one reused buffer (no fresh, zero-filled strategies x bars array per chunk).
        self.signals = np.empty((0, market.rows))

    def score(self, trees: Sequence[str], span: tuple[int, int]) -> list[dict[str, float]]:
        todo = list(dict.fromkeys(t for t in trees if (t, *span) not in self.cache))
        if self.ray is not None and todo:
            # The market goes into the object store once; each task scores BATCH trees (same chunks as locally).
            if self.cluster is None:
                self.cluster = Cluster(self.ray)
                self.shared = self.cluster.put((self.market.names, self.market.columns, self.bars, self.params))
            rows = self.cluster.map(_score_chunk, self.shared, [(t, span) for t in todo], batch_size=BATCH)
            for tree, row in zip(todo, rows, strict=True):
                self.cache[(tree, *span)] = row
            self.evaluations += len(todo)
            todo = []
        step = max(BATCH, SIGNAL_CELLS // max(self.market.rows, 1))
        for first in range(0, len(todo), step):
            chunk = todo[first : first + step]
            if self.signals.shape[0] < len(chunk):
                self.signals = np.empty((len(chunk), self.market.rows))
            signals = self.signals[: len(chunk)]
            _core.gp_evaluate_into(chunk, self.market.names, self.market.columns, signals)
            metrics = _core.backtest_run(signals, self.bars, start=span[0], end=span[1], **self.params)
            for i, tree in enumerate(chunk):
                self.cache[(tree, *span)] = {m: float(metrics[m][i]) for m in METRICS}
            self.evaluations += len(chunk)
        return [self.cache[(t, *span)] for t in trees]

    def close(self) -> None:
        """Leaves the Ray cluster this evaluator joined or started (nothing to do for a local one)."""
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None


def _score_chunk(shared: tuple, batch: Sequence[tuple[str, tuple[int, int]]]) -> list[dict[str, float]]:
    """Scores one batch of (tree, span) on a Ray worker, exactly as `Evaluator.score` does locally."""
    names, columns, bars, params = shared
    chunk = [tree for tree, _ in batch]
    start, end = batch[0][1]
    signals = _core.gp_evaluate(chunk, names, columns)
    metrics = _core.backtest_run(signals, bars, start=start, end=end, **params)
    return [{m: float(metrics[m][i]) for m in METRICS} for i in range(len(chunk))]


EvaluatorFactory = Callable[[Market, BacktestParams], Evaluator]
