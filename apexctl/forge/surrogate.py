"""Surrogate-assisted evolution (SAE): a LightGBM model predicting a GP tree's fitness from cheap features of the tree.

The features of a tree are its shape (size, height, counts per primitive in the primitive table's order, counts per
feature terminal, constants, windows) and summary statistics of its signal on one short contiguous slice of the
training bars (evaluated by `apex-gp` on that slice with a warm-up, so rolling ops see real history; sampling
scattered rows would be wrong for them). Extra per-tree columns (e.g. backtest metrics when the expensive fitness is
the simulator's) can be appended by the caller.

Every generation the model ranks the new trees; `screen` picks the top fraction plus a random holdout for the true
evaluation, the rest keep the model's estimate. The Spearman rank correlation on the holdout (which the model has not
seen) says whether to trust it: `next_fraction` widens the evaluated share when it falls under the threshold and
narrows it back when it recovers. LightGBM runs seeded, deterministic, with a fixed thread count, so the same seed
gives the same predictions on any machine.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from apexctl import _core

#: Bars of the signal slice, and the warm-up evaluated before it (nested rolling windows need history).
SLICE_ROWS = 256
SLICE_WARMUP = 100
#: Fewest truly evaluated rows before the model is trusted at all (before that every tree is evaluated).
MIN_TRAIN_ROWS = 100
#: With no model yet and more new trees than this, a random sample this large is truly evaluated first and the model
#: fitted on it screens the rest (a first generation of 50,000 simulator runs would take hours).
WARMUP_ROWS = 1_000
#: Most recent truly evaluated rows the model is fitted on (older fitness landscapes matter less, fitting stays cheap).
TRAIN_WINDOW = 20_000
#: Holdout: at least this many trees, or this share of the new ones, whichever is larger.
HOLDOUT_MIN = 50
HOLDOUT_SHARE = 0.005
#: Fixed so predictions do not depend on the machine's core count; one, because LightGBM's OpenMP threads spin and
#: slow down by an order of magnitude on a busy machine, and the model is small (fitting takes about a second).
THREADS = 1
#: Boosting rounds: the features are few and the holdout correlation, not the training loss, says if it is enough.
ROUNDS = 80
#: Signal statistics, in feature order.
SIGNAL_STATS = ("mean", "std", "mean_abs", "active", "long", "short", "turnover", "ret_corr", "ret_edge_bps")

Matrix = npt.NDArray[np.float64]


class Featurizer:
    """Turns GP trees (their JSON) into the surrogate's feature rows."""

    def __init__(self, names: Sequence[str], columns: Sequence[np.ndarray], close: np.ndarray, train_end: int) -> None:
        self.names = list(names)
        end = train_end
        start = max(0, end - SLICE_ROWS)
        self._first = max(0, start - SLICE_WARMUP)
        self._skip = start - self._first
        self._columns = [np.ascontiguousarray(c[self._first : end], dtype=np.float64) for c in columns]
        # Next-bar log return of each slice bar (0 at the end of the training span: no look-ahead past it).
        slice_close = np.asarray(close[start : end + 1], dtype=np.float64)
        ret = np.zeros(end - start)
        moves = np.diff(np.log(slice_close))[: end - start]
        ret[: len(moves)] = moves
        self._ret = np.nan_to_num(ret, nan=0.0, posinf=0.0, neginf=0.0)
        self.columns = _core.gp_shape_columns(self.names) + [f"signal_{s}" for s in SIGNAL_STATS]

    def shape(self, texts: Sequence[str]) -> Matrix:
        """Shape features of the trees (their GP JSON): size, height, constants, windows, primitive and feature-terminal
        counts (one Rust batch call)."""
        return _core.gp_shapes(list(texts), self.names)

    def signal_stats(self, texts: Sequence[str]) -> Matrix:
        """Statistics of each tree's signal on the training slice (one Rust batch call)."""
        if not texts:
            return np.zeros((0, len(SIGNAL_STATS)))
        signals = _core.gp_evaluate(list(texts), self.names, self._columns)[:, self._skip :]
        ret = self._ret
        mean = signals.mean(axis=1)
        std = signals.std(axis=1)
        centered_ret = ret - ret.mean()
        ret_norm = float(np.sqrt((centered_ret**2).sum()))
        with np.errstate(all="ignore"):
            cov = (signals - mean[:, None]) @ centered_ret
            corr = np.where(std > 1e-12, cov / (std * math.sqrt(signals.shape[1]) * max(ret_norm, 1e-300)), 0.0)
        turnover = np.abs(np.diff(signals, axis=1)).mean(axis=1) if signals.shape[1] > 1 else np.zeros(len(texts))
        return np.column_stack(
            [
                mean,
                std,
                np.abs(signals).mean(axis=1),
                (np.abs(signals) > 0.05).mean(axis=1),
                (signals > 0.05).mean(axis=1),
                (signals < -0.05).mean(axis=1),
                turnover,
                np.nan_to_num(corr),
                (signals @ ret) / max(len(ret), 1) * 1e4,
            ]
        )

    def rows(self, texts: Sequence[str]) -> Matrix:
        """The full feature rows of the trees (their GP JSON)."""
        return np.hstack([self.shape(texts), self.signal_stats(texts)])


@contextlib.contextmanager
def _random_untouched() -> Iterator[None]:
    """Restores Python's and NumPy's global generators afterwards: importing LightGBM (sklearn, scipy) the first time
    draws from them, which would make a run depend on whether an earlier run in the process imported them already."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


class Surrogate:
    """A seeded LightGBM regressor over a bounded window of (features, true fitness) rows."""

    def __init__(self, seed: int, window: int = TRAIN_WINDOW, min_rows: int = MIN_TRAIN_ROWS) -> None:
        self.seed = seed
        self.window = window
        self.min_rows = min_rows
        self.x: Matrix | None = None
        self.y: npt.NDArray[np.float64] = np.zeros(0)
        self._model = None

    @property
    def size(self) -> int:
        return len(self.y)

    @property
    def ready(self) -> bool:
        return self._model is not None

    def add(self, x: Matrix, y: Sequence[float]) -> None:
        """Appends truly evaluated rows, keeping the most recent `window`."""
        if len(y) == 0:
            return
        x = np.asarray(x, dtype=np.float64)
        self.x = (x if self.x is None else np.vstack([self.x, x]))[-self.window :]
        self.y = np.concatenate([self.y, np.asarray(y, dtype=np.float64)])[-self.window :]

    def fit(self) -> None:
        """Refits on the current rows (no model until `min_rows` rows, or when the target is constant)."""
        if self.x is None or self.size < self.min_rows or np.ptp(self.y) == 0.0:
            self._model = None
            return
        with _random_untouched():
            import lightgbm

        params = {
            "objective": "regression",
            "learning_rate": 0.1,
            "num_leaves": 15,
            "min_data_in_leaf": 10,
            "max_bin": 63,
            "seed": self.seed,
            "deterministic": True,
            "force_col_wise": True,
            "num_threads": THREADS,
            "verbose": -1,
        }
        with _random_untouched():
            self._model = lightgbm.train(params, lightgbm.Dataset(self.x, self.y), num_boost_round=ROUNDS)

    def predict(self, x: Matrix) -> npt.NDArray[np.float64]:
        if self._model is None:
            raise RuntimeError("Surrogate.predict before a successful fit")
        return np.asarray(self._model.predict(np.asarray(x, dtype=np.float64), num_threads=THREADS), dtype=np.float64)


def spearman(predicted: Sequence[float], true: Sequence[float]) -> float | None:
    """Spearman rank correlation (average ranks for ties); None when undefined (fewer than 3 points or a constant)."""
    if len(predicted) < 3:
        return None
    with _random_untouched():
        from scipy.stats import rankdata

    a = rankdata(np.asarray(predicted, dtype=np.float64))
    b = rankdata(np.asarray(true, dtype=np.float64))
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def next_fraction(fraction: float, corr: float | None, base: float, min_corr: float) -> float:
    """The evaluated share for the next generation: doubled (capped at 1) while the holdout correlation is under
    `min_corr`, halved back towards `base` once it is at or above it, unchanged when it was not measured."""
    if corr is None:
        return fraction
    if corr < min_corr:
        return min(1.0, fraction * 2.0)
    return max(base, fraction / 2.0)


@dataclass(frozen=True)
class Screen:
    """Which of n new trees get the true evaluation: `evaluate` (top by prediction plus holdout), `holdout`."""

    evaluate: list[int]
    holdout: list[int]


def screen(predicted: Sequence[float], fraction: float, rng: random.Random | Any) -> Screen:
    """The top `ceil(fraction * n)` trees by prediction (ties by index) plus a random holdout drawn from all n
    (`rng` is a `random.Random` or the `random` module itself, whose state the evolution checkpoints)."""
    n = len(predicted)
    top = math.ceil(min(1.0, fraction) * n)
    order = sorted(range(n), key=lambda i: (-predicted[i], i))
    holdout = sorted(rng.sample(range(n), min(n, max(HOLDOUT_MIN, math.ceil(HOLDOUT_SHARE * n)))))
    return Screen(sorted(set(order[:top]) | set(holdout)), holdout)
