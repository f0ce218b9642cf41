//! Kernels of the blocked evaluator: one operation over one block of rows, written so that the compiler vectorizes
//! them, with the rolling state (history, EMA) carried from one block to the next.
//!
//! Each row goes through exactly the float operations of the scalar kernels in [`crate::kernels`] and in the same
//! order (rolling sums still add a window from its oldest member, starting at 0.0); the vectorization is across
//! rows, which are independent.
//!
//! Every kernel is `#[inline(always)]`: the scheduler's whole block loop is compiled once per instruction set
//! (`pulp` dispatch in [`crate::plan`]), so a kernel call costs no dispatch and the loops vectorize as wide as the
//! CPU allows without a build flag. The float operations per row do not depend on the width (the only fused
//! multiply-adds are written out, in [`divide`], where they give the correctly rounded quotient), so every copy gives
//! the same bits.

use crate::kernels::{self, Stat, window_stat};
use crate::{PROTECT_EPS, signal as clip};

/// Rows per block: a block of every live intermediate stays in the L1 cache (256 to 1,024 measured alike on
/// `scripts/bench/gp.py`'s trees; fewer blocks mean fewer per-step overheads).
pub(crate) const ROWS: usize = 512;
/// Rows a rolling kernel handles at once, each with its own accumulator held in a register lane.
const LANES: usize = 32;
/// Rows the window sums of [`means`] handle at once: a sum is one add per member, so with `LANES` rows the adds wait
/// on each other's latency; twice as many independent accumulators keep the adder busy.
const MEAN_LANES: usize = 64;

/// The rows of an operand in a block: a slice, or one value for every row.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Src<'a> {
    Slice(&'a [f64]),
    Scalar(f64),
}

impl Src<'_> {
    fn copy_into(self, out: &mut Vec<f64>, len: usize) {
        match self {
            Src::Slice(x) => out.extend_from_slice(&x[..len]),
            Src::Scalar(v) => out.resize(out.len() + len, v),
        }
    }
}

/// The input of a window op over a block: a feature column, read in place together with the rows before the block,
/// or the block's rows of a computed node or a constant, which the op's state remembers.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Input<'a> {
    /// The whole column and the block's first row.
    Column(&'a [f64], usize),
    Block(Src<'a>),
}

/// Operations of one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum UnaryOp {
    Neg,
    Abs,
    Sign,
    Tanh,
    Not,
}

/// Operations of two arguments (`gt(a, b)` is `Lt` of `(b, a)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Min,
    Max,
    Lt,
    And,
    Or,
}

impl BinaryOp {
    /// Whether swapping the arguments leaves the value unchanged (up to the sign of a zero or a NaN's payload).
    pub(crate) fn commutes(self) -> bool {
        matches!(self, BinaryOp::Add | BinaryOp::Mul | BinaryOp::Min | BinaryOp::Max | BinaryOp::And | BinaryOp::Or)
    }
}

#[inline(always)]
fn map(x: Src<'_>, out: &mut [f64], f: impl Fn(f64) -> f64) {
    match x {
        Src::Slice(x) => {
            for (o, &x) in out.iter_mut().zip(x) {
                *o = f(x);
            }
        }
        Src::Scalar(x) => out.fill(f(x)),
    }
}

#[inline(always)]
fn zip(a: Src<'_>, b: Src<'_>, out: &mut [f64], f: impl Fn(f64, f64) -> f64) {
    match (a, b) {
        (Src::Slice(a), Src::Slice(b)) => {
            for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
                *o = f(a, b);
            }
        }
        (Src::Slice(a), Src::Scalar(b)) => {
            for (o, &a) in out.iter_mut().zip(a) {
                *o = f(a, b);
            }
        }
        (Src::Scalar(a), Src::Slice(b)) => {
            for (o, &b) in out.iter_mut().zip(b) {
                *o = f(a, b);
            }
        }
        (Src::Scalar(a), Src::Scalar(b)) => out.fill(f(a, b)),
    }
}

#[inline(always)]
pub(crate) fn unary(op: UnaryOp, x: Src<'_>, out: &mut [f64]) {
    match op {
        UnaryOp::Neg => map(x, out, |a| -a),
        UnaryOp::Abs => map(x, out, f64::abs),
        UnaryOp::Sign => map(x, out, kernels::sign),
        UnaryOp::Tanh => map(x, out, kernels::tanh),
        UnaryOp::Not => map(x, out, |a| kernels::truth(a == 0.0)),
    }
}

#[inline(always)]
pub(crate) fn binary(op: BinaryOp, a: Src<'_>, b: Src<'_>, out: &mut [f64]) {
    match op {
        BinaryOp::Add => zip(a, b, out, |a, b| a + b),
        BinaryOp::Sub => zip(a, b, out, |a, b| a - b),
        BinaryOp::Mul => zip(a, b, out, |a, b| a * b),
        BinaryOp::Div => zip(a, b, out, kernels::div),
        BinaryOp::Min => zip(a, b, out, kernels::min),
        BinaryOp::Max => zip(a, b, out, kernels::max),
        BinaryOp::Lt => zip(a, b, out, |a, b| kernels::truth(a < b)),
        BinaryOp::And => zip(a, b, out, |a, b| kernels::truth((a != 0.0) & (b != 0.0))),
        BinaryOp::Or => zip(a, b, out, |a, b| kernels::truth((a != 0.0) | (b != 0.0))),
    }
}

/// `if cond != 0 { a } else { b }` per row.
#[inline(always)]
pub(crate) fn select(cond: Src<'_>, a: Src<'_>, b: Src<'_>, out: &mut [f64]) {
    let Src::Slice(cond) = cond else {
        // A constant condition was folded away when the DAG was built; keep the general case correct anyway.
        let Src::Scalar(c) = cond else { unreachable!() };
        return map(if c != 0.0 { a } else { b }, out, |v| v);
    };
    match (a, b) {
        (Src::Slice(a), Src::Slice(b)) => {
            for (((o, &c), &a), &b) in out.iter_mut().zip(cond).zip(a).zip(b) {
                *o = if c != 0.0 { a } else { b };
            }
        }
        (Src::Slice(a), Src::Scalar(b)) => {
            for ((o, &c), &a) in out.iter_mut().zip(cond).zip(a) {
                *o = if c != 0.0 { a } else { b };
            }
        }
        (Src::Scalar(a), Src::Slice(b)) => {
            for ((o, &c), &b) in out.iter_mut().zip(cond).zip(b) {
                *o = if c != 0.0 { a } else { b };
            }
        }
        (Src::Scalar(a), Src::Scalar(b)) => {
            for (o, &c) in out.iter_mut().zip(cond) {
                *o = if c != 0.0 { a } else { b };
            }
        }
    }
}

/// Rows `start..start + out.len()` of a value known row by row up to its last entry, which repeats ever after.
#[inline(always)]
pub(crate) fn ramp(values: &[f64], start: usize, out: &mut [f64]) {
    let last = values.len() - 1;
    if start >= last {
        out.fill(values[last]);
    } else {
        for (i, o) in out.iter_mut().enumerate() {
            *o = values[(start + i).min(last)];
        }
    }
}

/// The program's signal of a block of root values.
#[inline(always)]
pub(crate) fn signal(x: Src<'_>, out: &mut [f64]) {
    map(x, out, clip);
}

/// What a stateful node carries from one block to the next.
#[derive(Clone, Debug)]
pub(crate) enum State {
    /// The inputs of the rows before the block: the last k for `lag` (NaN before the first row), the last k - 1
    /// (fewer at the start) for a rolling statistic.
    History(Vec<f64>),
    /// The EMA so far (None before the first non-NaN input).
    Ema(Option<f64>),
}

impl State {
    pub(crate) fn lag(k: usize) -> State {
        let mut history = Vec::with_capacity(k + ROWS);
        history.resize(k, f64::NAN);
        State::History(history)
    }

    pub(crate) fn rolling(k: usize) -> State {
        State::History(Vec::with_capacity(k - 1 + ROWS))
    }

    pub(crate) fn ema() -> State {
        State::Ema(None)
    }
}

/// Buffers the rolling kernels reuse from block to block.
pub(crate) struct Scratch {
    /// Per-row window means (std and z-score).
    means: Vec<f64>,
    /// Levels of the min/max doubling.
    table: Vec<f64>,
    spare: Vec<f64>,
    /// Running NaN counts of ranks.
    nans: Vec<u32>,
}

impl Scratch {
    pub(crate) fn new(max_window: usize) -> Scratch {
        let capacity = max_window + ROWS + 1;
        Scratch {
            means: vec![0.0; ROWS],
            table: Vec::with_capacity(capacity),
            spare: Vec::with_capacity(capacity),
            nans: Vec::with_capacity(capacity),
        }
    }
}

fn history(state: &mut State) -> &mut Vec<f64> {
    match state {
        State::History(history) => history,
        State::Ema(_) => unreachable!("a window op owns a history"),
    }
}

/// `x` k rows ago, NaN before the first row (a block input's history starts as k NaNs).
#[inline(always)]
pub(crate) fn lag(k: usize, x: Input<'_>, state: &mut State, out: &mut [f64]) {
    let len = out.len();
    match x {
        Input::Column(column, start) => {
            let missing = k.saturating_sub(start).min(len);
            out[..missing].fill(f64::NAN);
            if missing < len {
                out[missing..].copy_from_slice(&column[start + missing - k..start + len - k]);
            }
        }
        Input::Block(x) => {
            // The history holds the k inputs before the block; the block's own follow, and the first len are the
            // output.
            let history = history(state);
            x.copy_into(history, len);
            out.copy_from_slice(&history[..len]);
            history.drain(..len);
        }
    }
}

/// The EMA of the block, continuing from the state.
#[inline(always)]
pub(crate) fn ema(alpha: f64, x: Src<'_>, state: &mut State, out: &mut [f64]) {
    let State::Ema(average) = state else { unreachable!("ema owns an average") };
    match x {
        Src::Slice(x) => {
            for (o, &x) in out.iter_mut().zip(x) {
                *o = kernels::ema_step(average, alpha, x);
            }
        }
        Src::Scalar(x) => {
            for o in out.iter_mut() {
                *o = kernels::ema_step(average, alpha, x);
            }
        }
    }
}

/// The average of an EMA's state.
pub(crate) fn ema_average(state: &State) -> Option<f64> {
    match state {
        State::Ema(average) => *average,
        State::History(_) => unreachable!("ema owns an average"),
    }
}

/// `N` EMAs of independent inputs over one block, interleaved row by row: each is a chain of dependent operations
/// (12 cycles a row), so one alone leaves the core idle; `N` chains at once fill it. Each member performs exactly
/// [`ema`]'s operations.
#[inline(always)]
pub(crate) fn ema_group<const N: usize>(
    alphas: [f64; N],
    xs: [&[f64]; N],
    averages: &mut [Option<f64>; N],
    outs: &mut [Vec<f64>; N],
    len: usize,
) {
    let xs = xs.map(|x| &x[..len]);
    let mut local = *averages;
    for t in 0..len {
        for m in 0..N {
            outs[m][t] = kernels::ema_step(&mut local[m], alphas[m], xs[m][t]);
        }
    }
    *averages = local;
}

/// A rolling statistic over windows of `k` rows: the rows with fewer than k rows before them (the warm-up at the start
/// of the data) one at a time with [`window_stat`], the others with the vectorized kernels below.
#[inline(always)]
pub(crate) fn rolling(stat: Stat, k: usize, x: Input<'_>, state: &mut State, scratch: &mut Scratch, out: &mut [f64]) {
    let len = out.len();
    match x {
        Input::Column(column, start) => {
            let seen = start.min(k - 1);
            rolling_over(stat, k, &column[start - seen..start + len], seen, scratch, out);
        }
        Input::Block(x) => {
            // The history holds the (up to) k - 1 inputs before the block; the block's own are appended, and the
            // last k - 1 kept for the next block.
            let history = history(state);
            let seen = history.len();
            x.copy_into(history, len);
            rolling_over(stat, k, history, seen, scratch, out);
            let keep = (k - 1).min(history.len());
            history.drain(..history.len() - keep);
        }
    }
}

/// The rolling statistic of the block's rows, the last `out.len()` of `window`, with the `seen` rows before them.
#[inline(always)]
fn rolling_over(stat: Stat, k: usize, window: &[f64], seen: usize, scratch: &mut Scratch, out: &mut [f64]) {
    let len = out.len();
    let Scratch { means: mu, table, spare, nans } = scratch;
    let warm_up = (k - 1).saturating_sub(seen).min(len);
    for (i, o) in out[..warm_up].iter_mut().enumerate() {
        *o = window_stat(stat, &[], &window[..=seen + i]);
    }
    if warm_up < len {
        // Row i's window is window[seen + i + 1 - k ..= seen + i]; `members` starts at the first full row's.
        let members = &window[seen + warm_up + 1 - k..];
        let out = &mut out[warm_up..];
        windows(stat, k, members, out, mu, table, spare, nans);
    }
}

/// The full windows of a block: row r's window is `members[r..r + k]`; the rest is the scratch the kernels need.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn windows(
    stat: Stat,
    k: usize,
    members: &[f64],
    out: &mut [f64],
    mu: &mut [f64],
    table: &mut Vec<f64>,
    spare: &mut Vec<f64>,
    nans: &mut Vec<u32>,
) {
    match stat {
        Stat::Mean => means(members, k, out),
        // A window of one row deviates by x - x from its mean: 0.0, or NaN for an infinite or NaN x (and a z-score
        // of a zero deviation is 0.0).
        Stat::Std | Stat::Zscore if k == 1 => {
            for (o, &x) in out.iter_mut().zip(members) {
                *o = if x.is_finite() { 0.0 } else { f64::NAN };
            }
        }
        Stat::Std | Stat::Zscore => {
            let mu = &mut mu[..out.len()];
            means(members, k, mu);
            deviations(members, k, mu, out, stat == Stat::Zscore);
        }
        Stat::Min => extremes(members, k, out, table, spare, kernels::min),
        Stat::Max => extremes(members, k, out, table, spare, kernels::max),
        Stat::Rank => ranks(members, k, out, nans),
    }
}

/// The `L` values of `x` from `start`.
#[inline(always)]
fn lanes<const L: usize>(x: &[f64], start: usize) -> &[f64; L] {
    x[start..start + L].try_into().expect("L values")
}

/// The rows handled `L` at a time: (first row, its `L` outputs); the rest is left for a scalar loop.
#[inline(always)]
fn strips<const L: usize>(out: &mut [f64]) -> (impl Iterator<Item = (usize, &mut [f64])>, usize) {
    let full = out.len() - out.len() % L;
    ((0..full).step_by(L).zip(out[..full].chunks_exact_mut(L)), full)
}

/// Below this magnitude a quotient by a window length may leave the normal range, where [`divide`]'s exactness
/// argument does not hold; such values take the plain division.
const TINY: f64 = 1e-270;

/// `values[i] / m` in place for a window length `m` (1 <= m <= 1001), the same bits as the division without the
/// divider's cost (about 2 cycles a value, the bottleneck of the rolling statistics): with y = RN(1/m) and the
/// faithful q = RN(a * y), the remainder a - q * m is exact in one fused multiply-add and RN(q + remainder * y) is
/// the correctly rounded a / m (Markstein's theorem; Handbook of Floating-Point Arithmetic, 2nd ed., section 4.7).
/// The theorem needs every value and quotient normal and finite, so a strip holding -0.0, a tiny value, an infinity
/// or a NaN is divided plainly. +0.0 takes the fast path: q = +0.0, the remainder is -0.0 * m + 0.0 = +0.0 and the
/// result +0.0 * y + 0.0 = +0.0, which is 0.0 / m (a rank is 0.0 whenever the newest member is the window's strict
/// minimum, so most strips of ranks hold one: they all went to the divider). `mul_add` is IEEE fused on every
/// instruction set (a libm call where the CPU has no FMA), so every copy of the kernel gives the same bits.
#[inline(always)]
fn divide(values: &mut [f64], m: f64) {
    let y = 1.0 / m;
    for strip in values.chunks_mut(LANES) {
        let normal =
            strip.iter().fold(true, |ok, &a| ok & ((a.abs() >= TINY) | (a.to_bits() == 0)) & (a.abs() < f64::INFINITY));
        if normal {
            for a in strip.iter_mut() {
                let q = *a * y;
                let remainder = (-q).mul_add(m, *a);
                *a = remainder.mul_add(y, q);
            }
        } else {
            for a in strip.iter_mut() {
                *a /= m;
            }
        }
    }
}

/// Window means, each window `members[r..r + k]` summed from its oldest member starting at 0.0, `MEAN_LANES` rows
/// at a time, then `LANES`, then the last few one by one.
#[inline(always)]
fn means(members: &[f64], k: usize, out: &mut [f64]) {
    let wide = sums::<MEAN_LANES>(members, k, out);
    let done = wide + sums::<LANES>(&members[wide..], k, &mut out[wide..]);
    for (r, o) in out.iter_mut().enumerate().skip(done) {
        let mut acc = 0.0;
        for v in &members[r..r + k] {
            acc += v;
        }
        *o = acc;
    }
    divide(out, k as f64);
}

/// The window sums of the first rows of `out`, a multiple of `L`: each of a strip's `L` rows has its own accumulator,
/// so the loop over the window runs on vectors. Returns how many rows it did.
#[inline(always)]
fn sums<const L: usize>(members: &[f64], k: usize, out: &mut [f64]) -> usize {
    let (strips, done) = strips::<L>(out);
    for (r, out) in strips {
        let mut acc = [0.0; L];
        for j in 0..k {
            for (a, v) in acc.iter_mut().zip(lanes::<L>(members, r + j)) {
                *a += v;
            }
        }
        out.copy_from_slice(&acc);
    }
    done
}

/// The sums of squared deviations from `mu` of the windows of the first rows of `out`, a multiple of `L`, as
/// [`sums`]. Returns how many rows it did.
#[inline(always)]
fn squares<const L: usize>(members: &[f64], k: usize, mu: &[f64], out: &mut [f64]) -> usize {
    let (strips, done) = strips::<L>(out);
    for (r, out) in strips {
        let mean = lanes::<L>(mu, r);
        let mut acc = [0.0; L];
        for j in 0..k {
            for ((a, v), mean) in acc.iter_mut().zip(lanes::<L>(members, r + j)).zip(mean) {
                let d = v - mean;
                *a += d * d;
            }
        }
        out.copy_from_slice(&acc);
    }
    done
}

/// Population standard deviations around the window means `mu` (or z-scores of each window's newest member).
#[inline(always)]
fn deviations(members: &[f64], k: usize, mu: &[f64], out: &mut [f64], zscore: bool) {
    // Three float operations per member keep the vector units busy at `LANES` rows already (measured: no faster at
    // `MEAN_LANES`).
    let done = squares::<LANES>(members, k, mu, out);
    for (r, o) in out.iter_mut().enumerate().skip(done) {
        let mut acc = 0.0;
        for v in &members[r..r + k] {
            let d = v - mu[r];
            acc += d * d;
        }
        *o = acc;
    }
    divide(out, k as f64);
    for o in out.iter_mut() {
        *o = o.sqrt();
    }
    if zscore {
        for ((o, &x), &mu) in out.iter_mut().zip(&members[k - 1..]).zip(mu) {
            let sd = *o;
            *o = if sd < PROTECT_EPS { 0.0 } else { (x - mu) / sd };
        }
    }
}

/// Window minima (or maxima) by doubling: after level p, `table[i]` is the extreme of `members[i..i + 2^p]`, and a
/// window of k is two overlapping windows of the largest 2^p <= k. O(log k) per row instead of O(k); min and max
/// round nothing, so the order in which a window's members meet does not change the value (up to the sign of a zero,
/// which nothing can observe).
#[inline(always)]
fn extremes(
    members: &[f64],
    k: usize,
    out: &mut [f64],
    table: &mut Vec<f64>,
    spare: &mut Vec<f64>,
    pick: fn(f64, f64) -> f64,
) {
    // Level 0 is `members` itself, read in place; `len` is the current level's length. The scratch keeps its size
    // from block to block, so it is zero-filled only when it grows.
    let mut width = 1;
    let mut len = members.len();
    while 2 * width <= k {
        let n = len - width;
        if spare.len() < n {
            spare.resize(n, 0.0);
        }
        let level: &[f64] = if width == 1 { members } else { &table[..len] };
        for ((s, &a), &b) in spare[..n].iter_mut().zip(&level[..n]).zip(&level[width..]) {
            *s = pick(a, b);
        }
        std::mem::swap(table, spare);
        len = n;
        width *= 2;
    }
    let level: &[f64] = if width == 1 { members } else { &table[..len] };
    for ((o, &a), &b) in out.iter_mut().zip(level).zip(&level[k - width..]) {
        *o = pick(a, b);
    }
}

/// `(#below + (#equal - 1) / 2) / (k - 1)` of each window's newest member, NaN when the window holds a NaN (found from
/// a running count of NaNs, not per member). The counts are integers: `#below + #at_most = 2 #below + #equal` per
/// member, one integer add each (a cycle, not a float add's four), and `(that - 1) * 0.5` is exactly
/// [`window_stat`]'s `#below + 0.5 * (#equal - 1)` (whole and half numbers far below 2^53 round nothing).
#[inline(always)]
fn ranks(members: &[f64], k: usize, out: &mut [f64], nans: &mut Vec<u32>) {
    let rows = out.len();
    let (strips, done) = strips::<LANES>(out);
    for (r, out) in strips {
        let current = lanes::<LANES>(members, r + k - 1);
        let mut count = [0i64; LANES];
        for j in 0..k {
            for ((c, v), x) in count.iter_mut().zip(lanes::<LANES>(members, r + j)).zip(current) {
                *c += i64::from(v < x) + i64::from(v <= x);
            }
        }
        for (o, c) in out.iter_mut().zip(count) {
            *o = (c as f64 - 1.0) * 0.5;
        }
    }
    for r in done..rows {
        let x = members[r + k - 1];
        let mut count = 0i64;
        for &v in &members[r..r + k] {
            count += i64::from(v < x) + i64::from(v <= x);
        }
        out[r] = (count as f64 - 1.0) * 0.5;
    }
    if k > 1 {
        divide(out, k as f64 - 1.0);
    }
    // Most blocks hold no NaN (one vectorized pass to know); otherwise nans[i] = NaNs among members[..i] (an integer
    // running sum: one cycle per member, not a float add's four) marks the windows holding one.
    if !members.iter().fold(false, |any, v| any | v.is_nan()) {
        if k == 1 {
            out.fill(0.5);
        }
        return;
    }
    nans.clear();
    nans.push(0);
    let mut count = 0;
    nans.extend(members.iter().map(|v| {
        count += u32::from(v.is_nan());
        count
    }));
    for ((o, before), after) in out.iter_mut().zip(nans.iter()).zip(&nans[k..]) {
        *o = if after > before {
            f64::NAN
        } else if k == 1 {
            0.5
        } else {
            *o
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divide_equals_the_division_bit_for_bit() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let special = [0.0, -0.0, 1e-300, -1e-280, 5e-324, f64::MAX, -f64::MAX, f64::INFINITY, f64::NAN, 1e-13];
        for k in 1..=1001u64 {
            let m = k as f64;
            let mut values: Vec<f64> = (0..200)
                .map(|i| match i % 4 {
                    0 => f64::from_bits((next() & 0x800F_FFFF_FFFF_FFFF) | ((700 + next() % 600) << 52)),
                    1 => (next() % 4001) as f64 * 0.25 - 500.0,
                    2 => ((next() >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * m,
                    _ => f64::from_bits(((next() % 2001) as f64 - 1000.0).to_bits().wrapping_add(next() % 5)),
                })
                .collect();
            // Normal values with +0.0 among them (a whole strip of them on the fast path: ranks hold such zeros).
            values.extend((0..2 * LANES).map(|i| if i % 7 == 0 { 0.0 } else { (i as f64 - 10.0) * 0.75 + 0.125 }));
            // One strip of normal values, then strips with a special value in them.
            values.extend(special.iter().map(|&v| if k % 2 == 0 { v } else { -v }));
            let want: Vec<u64> = values.iter().map(|a| (a / m).to_bits()).collect();
            divide(&mut values, m);
            let got: Vec<u64> = values.iter().map(|a| a.to_bits()).collect();
            for (i, (w, g)) in want.iter().zip(&got).enumerate() {
                let (w, g) = (f64::from_bits(*w), f64::from_bits(*g));
                assert!(w.to_bits() == g.to_bits() || (w.is_nan() && g.is_nan()), "value {i} / {m}: {w:e} != {g:e}");
            }
        }
    }
}
