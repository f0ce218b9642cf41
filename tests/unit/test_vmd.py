"""VMD through apexctl._core against the NumPy reference in tests/reference/vmd_reference.py, plus parameter errors.

Tolerance: both sides run the same sweeps in the same order with the same stopping rule, so they differ only by
rounding (a different FFT, summation order and complex division), about 1e-15 of the window's magnitude and damped,
not amplified, by the filters. We allow 1e-8 of the window's largest absolute value. Any algorithmic difference is
far above that: a single extra or missing sweep moves the modes by roughly sqrt(tol) = 3e-4 of that scale.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apexctl import _core
from apexctl.errors import ApexError, DataError
from tests.reference.vmd_reference import vmd as reference_vmd
from tests.reference.vmd_reference import vmd_rolling as reference_rolling

RTOL_OF_SCALE = 1e-8


def assert_close(ours: np.ndarray, reference: np.ndarray, scale: float) -> None:
    assert ours.shape == reference.shape
    assert np.array_equal(np.isnan(ours), np.isnan(reference))
    np.testing.assert_allclose(ours, reference, rtol=0, atol=RTOL_OF_SCALE * max(scale, 1e-300))


def tones_and_noise(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (
        50.0
        + 2.0 * np.sin(2 * np.pi * 0.02 * t)
        + np.sin(2 * np.pi * 0.13 * t + 0.4)
        + 0.5 * np.sin(2 * np.pi * 0.31 * t)
        + 0.05 * rng.standard_normal(n)
    )


def random_walk(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 30_000.0 + np.cumsum(rng.standard_normal(n) * 15.0)


@pytest.mark.parametrize("n", [64, 101, 256])
@pytest.mark.parametrize("modes", [1, 2, 3, 5])
def test_whole_signal_matches_reference_on_tones_and_noise(n, modes):
    signal = tones_and_noise(n, seed=n + modes)
    ours = _core.vmd(signal, modes=modes)
    reference, freqs, _ = reference_vmd(signal, modes=modes)
    assert np.all(np.diff(freqs) >= 0)
    assert_close(ours, reference, np.abs(signal).max())


def test_tones_are_separated_like_the_reference_says():
    signal = tones_and_noise(256, seed=3)
    _, freqs, sweeps = reference_vmd(signal, modes=4)
    assert sweeps < 500
    np.testing.assert_allclose(freqs[1:], [0.02, 0.13, 0.31], atol=0.01)


# With dual ascent a random walk rarely converges, so that case is capped at fewer sweeps to stay fast.
@pytest.mark.parametrize(("tau", "max_iter"), [(0.0, 500), (0.5, 60)])
def test_rolling_matches_reference_on_a_random_walk(tau, max_iter):
    series = random_walk(160, seed=1)
    ours = _core.vmd_rolling(series, window=64, tau=tau, max_iter=max_iter)
    reference = reference_rolling(series, window=64, tau=tau, max_iter=max_iter)
    assert ours.shape == (160, 3)
    assert np.isnan(ours[:63]).all()
    assert np.isfinite(ours[63:]).all()
    assert_close(ours, reference, np.abs(series).max())


def test_rolling_row_is_the_last_sample_of_the_window_decomposition():
    series = random_walk(100, seed=2)
    rolling = _core.vmd_rolling(series, modes=2, window=40)
    for end in (39, 70, 99):
        whole = _core.vmd(series[end - 39 : end + 1], modes=2)
        assert np.array_equal(rolling[end], whole[:, -1])


def test_strided_input_is_accepted():
    series = random_walk(200, seed=4)
    np.testing.assert_array_equal(_core.vmd(series[::2]), _core.vmd(series[::2].copy()))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    signal=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=8, max_size=80).map(np.array),
    modes=st.integers(1, 4),
    alpha=st.sampled_from([10.0, 500.0, 2000.0, 1e5]),
    tau=st.sampled_from([0.0, 0.3]),
)
def test_whole_signal_matches_reference_on_arbitrary_input(signal, modes, alpha, tau):
    ours = _core.vmd(signal, modes=modes, alpha=alpha, tau=tau, max_iter=150)
    reference, _, _ = reference_vmd(signal, modes=modes, alpha=alpha, tau=tau, max_iter=150)
    assert_close(ours, reference, np.abs(signal).max())


@settings(max_examples=15, deadline=None, derandomize=True)
@given(
    steps=st.lists(st.floats(-5, 5, allow_nan=False), min_size=0, max_size=40).map(np.array),
    window=st.integers(8, 24),
)
def test_rolling_matches_reference_on_arbitrary_walks(steps, window):
    series = 1_000.0 + np.cumsum(steps)
    ours = _core.vmd_rolling(series, modes=2, window=window, max_iter=150)
    reference = reference_rolling(series, modes=2, window=window, max_iter=150)
    assert_close(ours, reference, np.abs(series).max() if len(series) else 1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"modes": 0}, "modes must be at least 1"),
        ({"window": 5}, "at least 6 samples for 3 modes"),
        ({"alpha": 0.0}, "alpha must be"),
        ({"alpha": float("nan")}, "alpha must be"),
        ({"tau": -0.1}, "tau must be"),
        ({"tol": float("inf")}, "tol must be"),
        ({"max_iter": 0}, "max_iter must be at least 1"),
    ],
)
def test_bad_parameters_raise_data_error(kwargs, match):
    series = random_walk(80, seed=5)
    with pytest.raises(DataError, match=match):
        _core.vmd_rolling(series, **kwargs)
    if "window" not in kwargs:
        with pytest.raises(DataError, match=match):
            _core.vmd(series, **kwargs)


def test_non_finite_input_names_its_index():
    series = random_walk(80, seed=6)
    series[33] = np.nan
    with pytest.raises(DataError, match="index 33"):
        _core.vmd_rolling(series)
    with pytest.raises(ApexError, match="non-finite"):
        _core.vmd(series)


def test_signal_too_short_for_the_modes():
    with pytest.raises(DataError, match="got 5"):
        _core.vmd(np.arange(5.0), modes=3)
