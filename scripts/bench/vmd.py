"""Benchmark: rolling VMD of a close series (window 64, K = 3), apex-features through apexctl._core vs plain NumPy."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from common import arguments, best_of, report

from apexctl import _core

# The NumPy peer is the test suite's reference implementation, so the two sides are known to agree.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "reference"))
from vmd_reference import vmd_rolling as numpy_rolling


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--rows", type=int, default=2_000, help="length of the close series (default 2000)")
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--modes", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    close = 30_000.0 + np.cumsum(rng.standard_normal(args.rows) * 15.0)
    ours_rows = _core.vmd_rolling(close, modes=args.modes, window=args.window)
    peer_rows = numpy_rolling(close, modes=args.modes, window=args.window)
    np.testing.assert_allclose(ours_rows, peer_rows, rtol=0, atol=1e-8 * np.abs(close).max())
    windows = args.rows - args.window + 1
    ours = best_of(lambda: _core.vmd_rolling(close, modes=args.modes, window=args.window))
    peer = best_of(lambda: numpy_rolling(close, modes=args.modes, window=args.window), repeats=1)
    title = f"vmd: rolling over {args.rows:,} closes (window {args.window}, K={args.modes}), {windows:,} windows"
    report(title, "rows", windows, ours, peer, "numpy")


if __name__ == "__main__":
    main()
