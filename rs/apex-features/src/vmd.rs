//! Variational mode decomposition (Dragomiretskiy & Zosso 2014) of a real series, applied causally over rolling windows.
//!
//! The algorithm is the published ADMM form used by the authors' MATLAB code and `vmdpy`: the window is mirror-extended
//! by half its length on each side, transformed once, and the modes are solved on the non-negative half spectrum
//! (frequencies `m / T` cycles per sample for `m < T / 2`, `T` the mirrored length):
//!
//! ```text
//! u_k  <- (f - sum_{i != k} u_i + lambda / 2) / (1 + 2 alpha (w - w_k)^2)      (Gauss-Seidel over k)
//! w_k  <- sum w |u_k|^2 / sum |u_k|^2
//! lambda <- lambda + tau (f - sum_k u_k)
//! stop when sum_k ||u_k^{n+1} - u_k^n||^2 / ||u_k^n||^2 < tol, or after max_iter sweeps
//! ```
//!
//! Centre frequencies start uniformly spaced (`0.5 / K * k`, `vmdpy`'s `init=1`), no mode is held at DC, and every
//! window starts from zero modes and zero duals: no state carries over between windows, so a rolling row equals the
//! whole-signal decomposition of its window. Two choices differ from `vmdpy` on purpose and are followed by the
//! reference implementation in `tests/vmd_reference.py`: the stopping rule is the paper's relative one (so it does not
//! depend on the price level), and the filter uses the paper's `2 alpha` (`vmdpy`'s alpha is twice ours).

use std::collections::VecDeque;
use std::sync::Arc;

use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

/// Shortest window the decomposition accepts, whatever the number of modes: below it the half spectrum has too few
/// bins for a centre frequency to mean anything.
pub const MIN_WINDOW: usize = 4;

/// Why a decomposition cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VmdError {
    #[error("VMD modes must be at least 1, got 0")]
    NoModes,
    #[error(
        "VMD needs at least {min} samples for {modes} modes (two per mode, at least {MIN_WINDOW}), got {len}; \
         use a longer window or fewer modes"
    )]
    TooShort { len: usize, modes: usize, min: usize },
    #[error("VMD alpha must be a finite number > 0, got {0}")]
    BadAlpha(f64),
    #[error("VMD tau must be a finite number >= 0, got {0}")]
    BadTau(f64),
    #[error("VMD tol must be a finite number >= 0, got {0}")]
    BadTol(f64),
    #[error("VMD max_iter must be at least 1, got 0")]
    NoIterations,
    #[error("VMD input has a non-finite value ({value}) at index {index}; fill or drop missing values first")]
    NonFinite { index: usize, value: f64 },
}

/// Parameters of the decomposition; `window` is used by the rolling forms only.
#[derive(Debug, Clone, PartialEq)]
pub struct VmdParams {
    /// Number of modes K.
    pub modes: usize,
    /// Samples per rolling window (the rolling forms only).
    pub window: usize,
    /// Bandwidth penalty: larger gives narrower modes.
    pub alpha: f64,
    /// Dual ascent step; 0 (the default) lets the modes leave noise unexplained instead of forcing exact reconstruction.
    pub tau: f64,
    /// Convergence tolerance on the summed relative change of the mode spectra between sweeps.
    pub tol: f64,
    /// Most ADMM sweeps per window.
    pub max_iter: usize,
}

impl Default for VmdParams {
    fn default() -> Self {
        Self { modes: 3, window: 64, alpha: 2000.0, tau: 0.0, tol: 1e-7, max_iter: 500 }
    }
}

impl VmdParams {
    /// Checks every parameter except `window` against a signal of `len` samples.
    ///
    /// # Errors
    /// The first parameter out of range, as a [`VmdError`].
    pub fn validate(&self, len: usize) -> Result<(), VmdError> {
        if self.modes == 0 {
            return Err(VmdError::NoModes);
        }
        let min = (2 * self.modes).max(MIN_WINDOW);
        if len < min {
            return Err(VmdError::TooShort { len, modes: self.modes, min });
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(VmdError::BadAlpha(self.alpha));
        }
        if !(self.tau.is_finite() && self.tau >= 0.0) {
            return Err(VmdError::BadTau(self.tau));
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return Err(VmdError::BadTol(self.tol));
        }
        if self.max_iter == 0 {
            return Err(VmdError::NoIterations);
        }
        Ok(())
    }
}

/// The modes of one signal.
#[derive(Debug, Clone, PartialEq)]
pub struct Decomposition {
    /// K modes of the signal's length, ordered by centre frequency ascending.
    pub modes: Vec<Vec<f64>>,
    /// Centre frequency of each mode in cycles per sample, in `[0, 0.5)`, ascending.
    pub centre_freqs: Vec<f64>,
    /// ADMM sweeps performed (`max_iter` when the tolerance was not reached).
    pub iterations: usize,
}

/// Decomposes the whole `signal` into `params.modes` modes (`params.window` is ignored).
///
/// # Errors
/// [`VmdError`] for parameters out of range, a signal shorter than `max(2 * modes, 4)`, or a non-finite sample.
pub fn vmd(signal: &[f64], params: &VmdParams) -> Result<Decomposition, VmdError> {
    params.validate(signal.len())?;
    check_finite(signal, 0)?;
    let mut solver = Solver::new(signal.len(), params.modes);
    let iterations = solver.solve(signal, params);
    let order = solver.order_by_frequency();
    let modes = order.iter().map(|&k| solver.mode_in_time(k).to_vec()).collect();
    let centre_freqs = order.iter().map(|&k| solver.omega[k]).collect();
    Ok(Decomposition { modes, centre_freqs, iterations })
}

/// Rolling VMD: K columns of `series.len()` values where row `i` holds the last value of each mode of
/// `vmd(&series[i + 1 - window..=i])`, and NaN for rows before the first full window. Rows run in parallel; each is
/// computed independently, so the result does not depend on the thread count.
///
/// # Errors
/// [`VmdError`] for parameters out of range (the window must hold at least `max(2 * modes, 4)` samples) or a
/// non-finite value anywhere in `series`.
pub fn rolling_vmd(series: &[f64], params: &VmdParams) -> Result<Vec<Vec<f64>>, VmdError> {
    params.validate(params.window)?;
    check_finite(series, 0)?;
    let window = params.window;
    let mut rows = vec![f64::NAN; series.len() * params.modes];
    if series.len() >= window {
        // Chunks of rows per task amortise the plan and buffer set-up; the chunk size does not affect the values.
        const ROWS_PER_TASK: usize = 32;
        let first = window - 1;
        rows[first * params.modes..].par_chunks_mut(ROWS_PER_TASK * params.modes).enumerate().for_each_init(
            || Solver::new(window, params.modes),
            |solver, (chunk, out)| {
                apex_cancel::checkpoint(); // an interrupted caller stops between chunks of windows
                for (j, row) in out.chunks_exact_mut(params.modes).enumerate() {
                    let end = first + chunk * ROWS_PER_TASK + j;
                    solver.last_values(&series[end + 1 - window..=end], params, row);
                }
            },
        );
    }
    Ok((0..params.modes).map(|k| rows.iter().skip(k).step_by(params.modes).copied().collect()).collect())
}

/// Streaming rolling VMD: push one value at a time and get the row [`rolling_vmd`] gives at that position.
#[derive(Clone)]
pub struct RollingVmd {
    params: VmdParams,
    solver: Solver,
    recent: VecDeque<f64>,
}

impl RollingVmd {
    /// A stream with no values yet.
    ///
    /// # Errors
    /// [`VmdError`] for parameters out of range, as [`rolling_vmd`] reports them.
    pub fn new(params: VmdParams) -> Result<Self, VmdError> {
        params.validate(params.window)?;
        let solver = Solver::new(params.window, params.modes);
        Ok(Self { recent: VecDeque::with_capacity(params.window), solver, params })
    }

    /// Adds `x` and returns the last value of each mode (ascending centre frequency) of the window ending at `x`;
    /// `None` until `window` values have been pushed, and while the window holds a non-finite value (where
    /// [`rolling_vmd`] refuses the whole series, a stream cannot, so it skips those rows instead).
    pub fn push(&mut self, x: f64) -> Option<Vec<f64>> {
        let mut row = vec![0.0; self.params.modes];
        self.push_into(x, &mut row).then_some(row)
    }

    /// [`RollingVmd::push`] without allocating: writes the row into `out` (K values) and returns true, or returns
    /// false (leaving `out` as it was) while no full finite window exists.
    ///
    /// # Panics
    /// When `out` does not hold exactly `modes` values.
    pub fn push_into(&mut self, x: f64, out: &mut [f64]) -> bool {
        assert_eq!(out.len(), self.params.modes, "one output per mode");
        if self.recent.len() == self.params.window {
            self.recent.pop_front();
        }
        self.recent.push_back(x);
        if self.recent.len() < self.params.window || !self.recent.iter().all(|v| v.is_finite()) {
            return false;
        }
        self.solver.last_values(self.recent.make_contiguous(), &self.params, out);
        true
    }

    /// The parameters the stream was made with.
    #[must_use]
    pub fn params(&self) -> &VmdParams {
        &self.params
    }
}

impl std::fmt::Debug for RollingVmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RollingVmd").field("params", &self.params).field("filled", &self.recent.len()).finish()
    }
}

fn check_finite(values: &[f64], offset: usize) -> Result<(), VmdError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(VmdError::NonFinite { index: offset + i, value: values[i] }),
        None => Ok(()),
    }
}

/// FFT plans and every buffer one decomposition of a fixed length needs, reused across windows (the hot path).
/// A clone shares the (immutable) plans and copies the buffers.
#[derive(Clone)]
struct Solver {
    len: usize,
    modes: usize,
    forward: Arc<dyn RealToComplex<f64>>,
    inverse: Arc<dyn ComplexToReal<f64>>,
    /// The mirror-extended signal (length `2 * len`), then the transform's input scratch.
    mirrored: Vec<f64>,
    /// Full real-FFT spectrum (`len + 1` bins including Nyquist), input and output of the transforms.
    spectrum: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    /// Bins `0..len` of the mirrored signal's spectrum: the non-negative half without Nyquist.
    signal_hat: Vec<Complex<f64>>,
    freqs: Vec<f64>,
    /// Mode spectra, mode-major: `mode_hat[k * len + m]`.
    mode_hat: Vec<Complex<f64>>,
    dual: Vec<Complex<f64>>,
    omega: Vec<f64>,
    /// One mode over the mirrored length after the inverse transform.
    time: Vec<f64>,
}

impl Solver {
    fn new(len: usize, modes: usize) -> Self {
        let mirrored_len = 2 * len;
        let mut planner = RealFftPlanner::<f64>::new();
        let forward = planner.plan_fft_forward(mirrored_len);
        let inverse = planner.plan_fft_inverse(mirrored_len);
        let scratch_len = forward.get_scratch_len().max(inverse.get_scratch_len());
        let zero = Complex::new(0.0, 0.0);
        Self {
            len,
            modes,
            mirrored: vec![0.0; mirrored_len],
            spectrum: vec![zero; len + 1],
            scratch: vec![zero; scratch_len],
            signal_hat: vec![zero; len],
            freqs: (0..len).map(|m| m as f64 / mirrored_len as f64).collect(),
            mode_hat: vec![zero; modes * len],
            dual: vec![zero; len],
            omega: vec![0.0; modes],
            time: vec![0.0; mirrored_len],
            forward,
            inverse,
        }
    }

    /// Runs the ADMM on `signal` (of the solver's length, already validated) from a fresh start; returns the sweeps.
    fn solve(&mut self, signal: &[f64], params: &VmdParams) -> usize {
        let (n, k_count) = (self.len, self.modes);
        debug_assert_eq!(signal.len(), n);
        let left = n / 2;
        let right = n - left;
        self.mirrored[..left].iter_mut().zip(signal[..left].iter().rev()).for_each(|(m, s)| *m = *s);
        self.mirrored[left..left + n].copy_from_slice(signal);
        self.mirrored[left + n..].iter_mut().zip(signal[n - right..].iter().rev()).for_each(|(m, s)| *m = *s);
        self.forward
            .process_with_scratch(&mut self.mirrored, &mut self.spectrum, &mut self.scratch)
            .expect("buffers are sized from the plan");
        self.signal_hat.copy_from_slice(&self.spectrum[..n]);

        let zero = Complex::new(0.0, 0.0);
        self.mode_hat.fill(zero);
        self.dual.fill(zero);
        for (k, omega) in self.omega.iter_mut().enumerate() {
            *omega = 0.5 / k_count as f64 * k as f64;
        }
        let two_alpha = 2.0 * params.alpha;
        for sweep in 1..=params.max_iter {
            let mut change = 0.0;
            for k in 0..k_count {
                let omega_k = self.omega[k];
                let (mut weighted, mut energy, mut step, mut previous) = (0.0, 0.0, 0.0, 0.0);
                for m in 0..n {
                    // Modes before k already hold this sweep's values, modes after k the previous sweep's.
                    let mut others = zero;
                    for i in (0..k_count).filter(|&i| i != k) {
                        others += self.mode_hat[i * n + m];
                    }
                    let offset = self.freqs[m] - omega_k;
                    let updated =
                        (self.signal_hat[m] - others + self.dual[m] * 0.5) / (1.0 + two_alpha * offset * offset);
                    let old = self.mode_hat[k * n + m];
                    step += (updated - old).norm_sqr();
                    previous += old.norm_sqr();
                    let power = updated.norm_sqr();
                    weighted += self.freqs[m] * power;
                    energy += power;
                    self.mode_hat[k * n + m] = updated;
                }
                // A mode with no energy (an all-zero signal) keeps its frequency instead of becoming 0/0.
                if energy > 0.0 {
                    self.omega[k] = weighted / energy;
                }
                change += relative_change(step, previous);
            }
            if params.tau > 0.0 {
                for m in 0..n {
                    let mut total = zero;
                    for k in 0..k_count {
                        total += self.mode_hat[k * n + m];
                    }
                    self.dual[m] += (self.signal_hat[m] - total) * params.tau;
                }
            }
            if change < params.tol {
                return sweep;
            }
        }
        params.max_iter
    }

    /// Mode indices by ascending centre frequency; the sort is stable so equal frequencies keep the initial order.
    fn order_by_frequency(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.modes).collect();
        order.sort_by(|&a, &b| self.omega[a].total_cmp(&self.omega[b]));
        order
    }

    /// Mode `k` back in time over the original (unmirrored) window, in the solver's `time` buffer.
    fn mode_in_time(&mut self, k: usize) -> &[f64] {
        let n = self.len;
        self.spectrum[..n].copy_from_slice(&self.mode_hat[k * n..(k + 1) * n]);
        // The Hermitian rebuild: a real signal's DC is real (taking the real part of the full inverse does the same),
        // and the Nyquist bin was never part of the half spectrum the modes live on.
        self.spectrum[0].im = 0.0;
        self.spectrum[n] = Complex::new(0.0, 0.0);
        self.inverse
            .process_with_scratch(&mut self.spectrum, &mut self.time, &mut self.scratch)
            .expect("buffers are sized from the plan and DC/Nyquist are real");
        let scale = 1.0 / (2 * n) as f64;
        self.time.iter_mut().for_each(|v| *v *= scale);
        let left = n / 2;
        &self.time[left..left + n]
    }

    /// Decomposes `signal` and writes the last value of each mode, by ascending centre frequency, into `out`.
    fn last_values(&mut self, signal: &[f64], params: &VmdParams, out: &mut [f64]) {
        self.solve(signal, params);
        for (slot, k) in out.iter_mut().zip(self.order_by_frequency()) {
            *slot = *self.mode_in_time(k).last().expect("windows are never empty");
        }
    }
}

/// One mode's term of the stopping rule; a mode that was all zero counts as unconverged unless it still is.
fn relative_change(step: f64, previous: f64) -> f64 {
    if previous > 0.0 {
        step / previous
    } else if step > 0.0 {
        f64::INFINITY
    } else {
        0.0
    }
}
