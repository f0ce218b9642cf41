//! VMD behaviour: reconstruction, separation of tones, rolling == whole-signal == streaming, bad parameters, and no
//! NaN or panic on arbitrary bounded inputs. The numeric agreement with NumPy is checked in tests/test_vmd.py.

use std::f64::consts::TAU;

use apex_features::vmd::{RollingVmd, VmdError, VmdParams, rolling_vmd, vmd};
use proptest::prelude::*;

/// Deterministic noise in [-0.5, 0.5) (xorshift), so the tests need no RNG crate.
fn noise(count: usize, seed: u64) -> Vec<f64> {
    let mut rng = apex_core::XorShift64::new(seed | 1);
    (0..count).map(|_| rng.uniform() - 0.5).collect()
}

fn tone(count: usize, freq: f64, amplitude: f64) -> Vec<f64> {
    (0..count).map(|t| amplitude * (TAU * freq * t as f64).sin()).collect()
}

fn random_walk(count: usize, seed: u64) -> Vec<f64> {
    noise(count, seed)
        .iter()
        .scan(100.0, |level, step| {
            *level += step;
            Some(*level)
        })
        .collect()
}

fn rms(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v * v, c + 1));
    (sum / count as f64).sqrt()
}

#[test]
fn two_separated_tones_land_in_their_own_modes() {
    let n = 256;
    let slow = tone(n, 0.03, 1.0);
    let fast = tone(n, 0.28, 0.5);
    let signal: Vec<f64> = slow.iter().zip(&fast).map(|(a, b)| a + b).collect();
    let params = VmdParams { modes: 2, ..VmdParams::default() };
    let result = vmd(&signal, &params).unwrap();
    assert!(result.iterations < params.max_iter, "did not converge: {}", result.iterations);
    assert!((result.centre_freqs[0] - 0.03).abs() < 0.005, "{:?}", result.centre_freqs);
    assert!((result.centre_freqs[1] - 0.28).abs() < 0.005, "{:?}", result.centre_freqs);
    // The mirror makes the ends approximate; judge the middle half, relative to each tone's amplitude.
    let middle = n / 4..3 * n / 4;
    let slow_error = rms(middle.clone().map(|t| result.modes[0][t] - slow[t]));
    let fast_error = rms(middle.map(|t| result.modes[1][t] - fast[t]));
    assert!(slow_error < 0.05, "slow mode error {slow_error}");
    assert!(fast_error < 0.05 * 0.5, "fast mode error {fast_error}");
}

#[test]
fn modes_sum_back_to_the_signal() {
    let n = 200;
    let parts = [tone(n, 0.02, 2.0), tone(n, 0.15, 1.0), tone(n, 0.35, 0.5)];
    let jitter = noise(n, 11);
    let tones: Vec<f64> = (0..n).map(|t| parts.iter().map(|p| p[t]).sum::<f64>() + 0.01 * jitter[t]).collect();
    let spread = rms(tones.iter().copied());
    let middle = || n / 4..3 * n / 4;
    let error_of = |signal: &[f64], params: &VmdParams| {
        let result = vmd(signal, params).unwrap();
        assert!(result.modes.len() == params.modes && result.modes.iter().all(|m| m.len() == n));
        let residual: Vec<f64> = (0..n).map(|t| result.modes.iter().map(|m| m[t]).sum::<f64>() - signal[t]).collect();
        (rms(residual.iter().copied()), rms(middle().map(|t| residual[t])))
    };
    // Default (tau = 0): three modes for three tones explain the signal away from the mirrored ends.
    let (_, middle_error) = error_of(&tones, &VmdParams::default());
    assert!(middle_error < 0.01 * spread, "tau = 0: middle error {middle_error} vs signal rms {spread}");
    // With dual ascent the sum is pushed to the signal itself, here with a level that a fourth component (DC) adds.
    let with_level: Vec<f64> = tones.iter().map(|v| v + 10.0).collect();
    let exact = VmdParams { tau: 1.0, ..VmdParams::default() };
    let (error, middle_error) = error_of(&with_level, &exact);
    assert!(error < 0.01 * spread, "tau = 1: error {error} vs signal rms {spread}");
    assert!(middle_error < 1e-3 * spread, "tau = 1: middle error {middle_error} vs signal rms {spread}");
}

#[test]
fn rolling_rows_are_the_whole_signal_vmd_of_each_window_and_streaming_matches() {
    let series = random_walk(300, 5);
    let params = VmdParams { window: 48, ..VmdParams::default() };
    let columns = rolling_vmd(&series, &params).unwrap();
    assert_eq!(columns.len(), params.modes);
    let mut stream = RollingVmd::new(params.clone()).unwrap();
    for (i, &x) in series.iter().enumerate() {
        let pushed = stream.push(x);
        let row: Vec<f64> = columns.iter().map(|c| c[i]).collect();
        if i + 1 < params.window {
            assert!(row.iter().all(|v| v.is_nan()), "row {i} should be NaN: {row:?}");
            assert_eq!(pushed, None);
            continue;
        }
        let whole = vmd(&series[i + 1 - params.window..=i], &params).unwrap();
        let last: Vec<f64> = whole.modes.iter().map(|m| *m.last().unwrap()).collect();
        assert_eq!(row, last, "row {i}: rolling vs whole-signal VMD of the window");
        assert_eq!(pushed, Some(row), "row {i}: streaming vs rolling");
    }
}

#[test]
fn rolling_does_not_depend_on_the_thread_count() {
    let series = random_walk(400, 9);
    let params = VmdParams::default();
    let parallel = rolling_vmd(&series, &params).unwrap();
    let single = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let serial = single.install(|| rolling_vmd(&series, &params).unwrap());
    // Compare bits so the NaN rows count too.
    let bits = |cols: &Vec<Vec<f64>>| cols.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&parallel), bits(&serial));
}

#[test]
fn a_series_shorter_than_the_window_is_all_nan() {
    let params = VmdParams::default();
    let columns = rolling_vmd(&[1.0, 2.0, 3.0], &params).unwrap();
    assert_eq!(columns.len(), 3);
    assert!(columns.iter().all(|c| c.len() == 3 && c.iter().all(|v| v.is_nan())));
}

#[test]
fn flat_and_zero_signals_stay_finite() {
    for level in [0.0, 42.0] {
        let result = vmd(&[level; 32], &VmdParams::default()).unwrap();
        assert!(result.modes.iter().flatten().all(|v| v.is_finite()), "level {level}");
        let total: f64 = result.modes.iter().map(|m| m[16]).sum();
        assert!((total - level).abs() <= 1e-9 * level.max(1.0), "level {level}: modes sum to {total}");
    }
}

#[test]
fn bad_parameters_are_refused() {
    let signal = noise(64, 3);
    let base = VmdParams::default();
    let cases = [
        (VmdParams { modes: 0, ..base.clone() }, VmdError::NoModes),
        (VmdParams { alpha: 0.0, ..base.clone() }, VmdError::BadAlpha(0.0)),
        (VmdParams { alpha: f64::INFINITY, ..base.clone() }, VmdError::BadAlpha(f64::INFINITY)),
        (VmdParams { tau: -1.0, ..base.clone() }, VmdError::BadTau(-1.0)),
        (VmdParams { tol: -1e-7, ..base.clone() }, VmdError::BadTol(-1e-7)),
        (VmdParams { max_iter: 0, ..base.clone() }, VmdError::NoIterations),
    ];
    for (params, expected) in cases {
        assert_eq!(vmd(&signal, &params).unwrap_err(), expected);
        assert_eq!(rolling_vmd(&signal, &params).unwrap_err(), expected);
        assert_eq!(RollingVmd::new(params).err(), Some(expected));
    }
    let too_short = VmdError::TooShort { len: 5, modes: 3, min: 6 };
    assert_eq!(vmd(&signal[..5], &base).unwrap_err(), too_short);
    assert_eq!(rolling_vmd(&signal, &VmdParams { window: 5, ..base.clone() }).unwrap_err(), too_short);
    let tiny = VmdParams { modes: 1, window: 3, ..base.clone() };
    assert_eq!(rolling_vmd(&signal, &tiny).unwrap_err(), VmdError::TooShort { len: 3, modes: 1, min: 4 });
    let mut with_nan = signal.clone();
    with_nan[17] = f64::NAN;
    assert!(matches!(vmd(&with_nan, &base), Err(VmdError::NonFinite { index: 17, .. })));
    assert!(matches!(rolling_vmd(&with_nan, &base), Err(VmdError::NonFinite { index: 17, .. })));
}

#[test]
fn streaming_skips_rows_whose_window_holds_a_nan() {
    let params = VmdParams { modes: 2, window: 8, ..VmdParams::default() };
    let mut stream = RollingVmd::new(params.clone()).unwrap();
    let series = random_walk(30, 2);
    let rows: Vec<bool> =
        series.iter().enumerate().map(|(i, &x)| stream.push(if i == 10 { f64::NAN } else { x }).is_some()).collect();
    let expected: Vec<bool> = (0..30).map(|i| i >= 7 && !(10..18).contains(&i)).collect();
    assert_eq!(rows, expected);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bounded_signals_decompose_to_finite_sorted_modes(
        signal in prop::collection::vec(-1e6f64..1e6, 4..160),
        modes in 1usize..5,
        alpha in prop::sample::select(vec![1.0, 50.0, 2000.0, 1e6]),
        tau in prop::sample::select(vec![0.0, 0.1, 1.0]),
    ) {
        prop_assume!(signal.len() >= 2 * modes);
        let params = VmdParams { modes, alpha, tau, max_iter: 200, ..VmdParams::default() };
        let result = vmd(&signal, &params).unwrap();
        prop_assert_eq!(result.modes.len(), modes);
        prop_assert!(result.modes.iter().all(|m| m.len() == signal.len() && m.iter().all(|v| v.is_finite())));
        prop_assert!(result.centre_freqs.windows(2).all(|w| w[0] <= w[1]));
        prop_assert!(result.centre_freqs.iter().all(|&f| (0.0..0.5).contains(&f)));
        prop_assert!((1..=params.max_iter).contains(&result.iterations));
    }

    #[test]
    fn rolling_on_arbitrary_series_is_finite_after_the_first_window(
        series in prop::collection::vec(-1e3f64..1e3, 0..120),
        modes in 1usize..4,
        window in 8usize..40,
    ) {
        let params = VmdParams { modes, window, max_iter: 100, ..VmdParams::default() };
        let columns = rolling_vmd(&series, &params).unwrap();
        prop_assert_eq!(columns.len(), modes);
        for column in &columns {
            prop_assert_eq!(column.len(), series.len());
            for (i, v) in column.iter().enumerate() {
                prop_assert_eq!(v.is_nan(), i + 1 < window);
                prop_assert!(v.is_nan() || v.is_finite());
            }
        }
    }
}
