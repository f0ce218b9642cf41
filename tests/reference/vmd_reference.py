"""Plain NumPy VMD (Dragomiretskiy & Zosso 2014), written from the paper and vmdpy's layout: the test-only reference.

It deliberately takes a different route from the Rust code where the maths allows: the full complex FFT, the
fftshift-ed spectrum with the negative half zeroed (as in the authors' MATLAB code and vmdpy), and a full Hermitian
rebuild followed by the real part of a complex inverse FFT. The algorithmic choices are the same ones the Rust
module documents: centre frequencies start at 0.5/K * k, no DC mode, zero start for modes and duals, the paper's
2*alpha filter and the paper's relative stopping rule, modes returned by ascending centre frequency.
"""

from __future__ import annotations

import numpy as np


def vmd(
    signal: np.ndarray,
    modes: int = 3,
    alpha: float = 2000.0,
    tau: float = 0.0,
    tol: float = 1e-7,
    max_iter: int = 500,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Returns (modes K x N, centre frequencies in cycles per sample, sweeps) of a finite 1-D signal."""
    f = np.asarray(signal, dtype=np.float64)
    n = len(f)
    left = n // 2
    right = n - left
    mirrored = np.concatenate([f[:left][::-1], f, f[n - right :][::-1]])
    big_t = len(mirrored)

    # Shifted spectrum: index j holds frequency j/T - 1/2; the non-negative half starts at T/2.
    freqs = np.arange(big_t) / big_t - 0.5
    f_hat = np.fft.fftshift(np.fft.fft(mirrored))
    f_hat_plus = f_hat.copy()
    f_hat_plus[: big_t // 2] = 0
    half = slice(big_t // 2, big_t)

    u_hat = np.zeros((modes, big_t), dtype=complex)
    lam = np.zeros(big_t, dtype=complex)
    omega = np.array([0.5 / modes * k for k in range(modes)])

    sweeps = max_iter
    for sweep in range(1, max_iter + 1):
        change = 0.0
        for k in range(modes):
            others = np.zeros(big_t, dtype=complex)
            for i in range(modes):
                if i != k:
                    others = others + u_hat[i]
            new = (f_hat_plus - others + lam / 2) / (1 + 2 * alpha * (freqs - omega[k]) ** 2)
            # The negative half stays zero: f_hat_plus, the other modes and the dual are all zero there.
            new[: big_t // 2] = 0
            power = np.abs(new[half]) ** 2
            if power.sum() > 0:
                omega[k] = np.sum(freqs[half] * power) / power.sum()
            step = np.sum(np.abs(new - u_hat[k]) ** 2)
            previous = np.sum(np.abs(u_hat[k]) ** 2)
            if previous > 0:
                change += step / previous
            elif step > 0:
                change = np.inf
            u_hat[k] = new
        if tau > 0:
            lam = lam + tau * (f_hat_plus - u_hat.sum(axis=0))
        if change < tol:
            sweeps = sweep
            break

    # Hermitian rebuild of each mode's full spectrum (shifted indexing), then back to time and off the mirror.
    out = np.empty((modes, n))
    for k in range(modes):
        full = np.zeros(big_t, dtype=complex)
        full[half] = u_hat[k, half]
        for m in range(1, big_t // 2):
            full[big_t // 2 - m] = np.conj(u_hat[k, big_t // 2 + m])
        time = np.real(np.fft.ifft(np.fft.ifftshift(full)))
        out[k] = time[left : left + n]
    order = np.argsort(omega, kind="stable")
    return out[order], omega[order], sweeps


def vmd_rolling(series: np.ndarray, modes: int = 3, window: int = 64, **params: float) -> np.ndarray:
    """N x K: row i is the last value of each mode of the window ending at i; NaN before the first full window.
    `params` are [vmd]'s (alpha, tau, tol, max_iter)."""
    x = np.asarray(series, dtype=np.float64)
    out = np.full((len(x), modes), np.nan)
    for end in range(window - 1, len(x)):
        decomposition, _, _ = vmd(x[end + 1 - window : end + 1], modes, **params)
        out[end] = decomposition[:, -1]
    return out
