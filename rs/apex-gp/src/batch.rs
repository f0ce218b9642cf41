//! The batch evaluator: one instruction at a time over whole columns, many programs in parallel with rayon.

use std::collections::VecDeque;

use rayon::prelude::*;

use crate::compile::{Code, Program};
use crate::kernels::{self, Stat, window_stat};
use crate::tree::Limits;
use crate::{GpError, PROTECT_EPS, signal};

pub(crate) fn check_columns(inputs: usize, columns: &[&[f64]]) -> Result<usize, GpError> {
    if columns.len() != inputs {
        return Err(GpError::Shape(format!("{} feature names but {} columns", inputs, columns.len())));
    }
    let rows = columns.first().map_or(0, |c| c.len());
    if let Some((i, c)) = columns.iter().enumerate().find(|(_, c)| c.len() != rows) {
        return Err(GpError::Shape(format!("column {i} has {} rows, column 0 has {rows}", c.len())));
    }
    Ok(rows)
}

/// The signal (clip to [-1, 1], NaN -> 0) of `program` on `columns` (one per input, in the program's input order).
///
/// # Errors
/// `Shape` when the number of columns differs from the program's inputs or the columns differ in length.
pub fn evaluate(program: &Program, columns: &[&[f64]]) -> Result<Vec<f64>, GpError> {
    let rows = check_columns(program.inputs().len(), columns)?;
    let mut out = vec![0.0; rows];
    run(program, columns, &mut Workspace::default(), &mut out);
    Ok(out)
}

/// The signals of many programs compiled against the same inputs, row-major `programs x rows`, in parallel.
///
/// # Errors
/// `Shape` as [`evaluate`], or when a program's inputs differ from the first one's.
pub fn evaluate_many(programs: &[Program], columns: &[&[f64]]) -> Result<Vec<f64>, GpError> {
    let Some(first) = programs.first() else { return Ok(Vec::new()) };
    if let Some(i) = programs.iter().position(|p| p.inputs() != first.inputs()) {
        return Err(GpError::Shape(format!("program {i} was compiled for other inputs than program 0")));
    }
    let rows = check_columns(first.inputs().len(), columns)?;
    let mut out = vec![0.0; programs.len() * rows];
    if rows > 0 {
        out.par_chunks_mut(rows).zip(programs.par_iter()).for_each_init(Workspace::default, |work, (dst, program)| {
            apex_cancel::checkpoint(); // an interrupted caller stops between programs
            run(program, columns, work, dst);
        });
    }
    Ok(out)
}

/// Loads, validates and compiles every JSON tree against `names`, then evaluates them all on `columns`:
/// row-major `trees x rows`.
///
/// # Errors
/// `InTree { index, .. }` for the first tree (by index) that fails to load; `Shape` as [`evaluate_many`].
pub fn evaluate_json<S: AsRef<str> + Sync>(
    trees: &[S],
    names: &[S],
    columns: &[&[f64]],
    limits: &Limits,
) -> Result<Vec<f64>, GpError> {
    let programs = compile_all(trees, names, limits)?;
    check_columns(names.len(), columns)?;
    evaluate_many(&programs, columns)
}

/// Loads and compiles JSON trees in parallel.
///
/// # Errors
/// `InTree { index, .. }` for the first tree (by index) that fails.
pub fn compile_all<S: AsRef<str> + Sync>(trees: &[S], names: &[S], limits: &Limits) -> Result<Vec<Program>, GpError> {
    trees
        .par_iter()
        .enumerate()
        .map(|(index, text)| {
            Program::from_json(text.as_ref(), names, limits).map_err(|e| GpError::InTree { index, source: Box::new(e) })
        })
        .collect()
}

fn unary(x: &mut [f64], mut f: impl FnMut(f64) -> f64) {
    for v in x {
        *v = f(*v);
    }
}

fn binary(regs: &mut [Vec<f64>], slot: usize, f: impl Fn(f64, f64) -> f64) {
    let (lo, hi) = regs.split_at_mut(slot + 1);
    for (a, &b) in lo[slot].iter_mut().zip(&hi[0]) {
        *a = f(*a, b);
    }
}

/// `stat` over the full windows of `x` (rows k-1..n), written to `out`, one window member at a time across all rows:
/// each row still adds its members oldest to newest from 0.0 (exactly like [`window_stat`]), but the inner loops run
/// over independent rows, so they vectorize instead of waiting on one long chain of additions.
fn rolling_full(stat: Stat, x: &[f64], k: usize, out: &mut [f64], work: &mut RollingScratch) {
    let len = out.len();
    if len == 0 {
        return;
    }
    let member = |j: usize| &x[j..j + len];
    let m = k as f64;
    let mean_into = |acc: &mut [f64]| {
        acc.fill(0.0);
        for j in 0..k {
            for (a, v) in acc.iter_mut().zip(member(j)) {
                *a += v;
            }
        }
        for a in acc.iter_mut() {
            *a /= m;
        }
    };
    let std_into = |acc: &mut [f64], mu: &[f64]| {
        acc.fill(0.0);
        for j in 0..k {
            for ((a, v), mu) in acc.iter_mut().zip(member(j)).zip(mu) {
                let d = v - mu;
                *a += d * d;
            }
        }
        for a in acc.iter_mut() {
            *a = (*a / m).sqrt();
        }
    };
    let current = member(k - 1);
    match stat {
        Stat::Mean => mean_into(out),
        Stat::Std => {
            let mu = resized(&mut work.mu, len, 0.0);
            mean_into(mu);
            std_into(out, mu);
        }
        Stat::Zscore => {
            let mu = resized(&mut work.mu, len, 0.0);
            mean_into(mu);
            std_into(out, mu);
            for ((o, mu), x) in out.iter_mut().zip(mu.iter()).zip(current) {
                *o = if *o < PROTECT_EPS { 0.0 } else { (x - mu) / *o };
            }
        }
        Stat::Min | Stat::Max => unreachable!("rolling_extreme computes min and max"),
        Stat::Rank => {
            let below = resized(&mut work.below, len, 0);
            let equal = resized(&mut work.equal, len, 0);
            let nan = resized(&mut work.nan, len, false);
            for j in 0..k {
                for (((b, e), n), (&v, &x)) in
                    below.iter_mut().zip(equal.iter_mut()).zip(nan.iter_mut()).zip(member(j).iter().zip(current))
                {
                    *b += u32::from(v < x);
                    *e += u32::from(v == x);
                    *n |= v.is_nan();
                }
            }
            for (((o, &b), &e), &n) in out.iter_mut().zip(below.iter()).zip(equal.iter()).zip(nan.iter()) {
                *o = if n {
                    f64::NAN
                } else if k == 1 {
                    0.5
                } else {
                    (f64::from(b) + 0.5 * f64::from(e - 1)) / (m - 1.0)
                };
            }
        }
    }
}

/// Rolling minimum (or maximum) over the last min(t+1, k) rows in O(n) with a monotonic deque of row indices; NaN
/// while a NaN is in the window. Min and max round nothing, so this equals the windowed fold of [`window_stat`]
/// (up to which of two equal zeros is returned, which no op and no signal can tell apart).
fn rolling_extreme(x: &[f64], k: usize, is_min: bool, out: &mut [f64], deque: &mut VecDeque<usize>) {
    deque.clear();
    let mut last_nan: Option<usize> = None;
    for (t, (&v, o)) in x.iter().zip(out.iter_mut()).enumerate() {
        if v.is_nan() {
            last_nan = Some(t);
        } else {
            while let Some(&back) = deque.back() {
                let dominated = if is_min { x[back] >= v } else { x[back] <= v };
                if !dominated {
                    break;
                }
                deque.pop_back();
            }
            deque.push_back(t);
        }
        let start = (t + 1).saturating_sub(k);
        while deque.front().is_some_and(|&front| front < start) {
            deque.pop_front();
        }
        *o = match (last_nan, deque.front()) {
            (Some(i), _) if i >= start => f64::NAN,
            (_, Some(&front)) => x[front],
            (_, None) => unreachable!("a window without NaN holds its current row"),
        };
    }
}

/// Buffers reused from one program to the next on a thread, so a call allocates (and page-faults) once per thread.
#[derive(Default)]
struct Workspace {
    regs: Vec<Vec<f64>>,
    scratch: Vec<f64>,
    rolling: RollingScratch,
}

#[derive(Default)]
struct RollingScratch {
    deque: VecDeque<usize>,
    mu: Vec<f64>,
    below: Vec<u32>,
    equal: Vec<u32>,
    nan: Vec<bool>,
}

/// `buffer` cut or grown to `len`, every value set to `fill`.
fn resized<T: Copy>(buffer: &mut Vec<T>, len: usize, fill: T) -> &mut [T] {
    buffer.clear();
    buffer.resize(len, fill);
    buffer
}

/// Runs `program` over `columns`, writing the signal to `out` (one value per row).
fn run(program: &Program, columns: &[&[f64]], work: &mut Workspace, out: &mut [f64]) {
    let rows = out.len();
    if work.regs.len() < program.slots {
        work.regs.resize_with(program.slots, Vec::new);
    }
    for reg in &mut work.regs {
        reg.resize(rows, 0.0);
    }
    work.scratch.resize(rows, 0.0);
    let Workspace { regs, scratch, rolling } = work;
    for ins in &program.code {
        let s = ins.slot;
        match ins.code {
            Code::Feature(i) => regs[s].copy_from_slice(columns[i]),
            Code::Const(v) => regs[s].fill(v),
            Code::Add => binary(regs, s, |a, b| a + b),
            Code::Sub => binary(regs, s, |a, b| a - b),
            Code::Mul => binary(regs, s, |a, b| a * b),
            Code::Div => binary(regs, s, kernels::div),
            Code::Min => binary(regs, s, kernels::min),
            Code::Max => binary(regs, s, kernels::max),
            Code::Gt => binary(regs, s, |a, b| kernels::truth(a > b)),
            Code::Lt => binary(regs, s, |a, b| kernels::truth(a < b)),
            Code::And => binary(regs, s, |a, b| kernels::truth(a != 0.0 && b != 0.0)),
            Code::Or => binary(regs, s, |a, b| kernels::truth(a != 0.0 || b != 0.0)),
            Code::Neg => unary(&mut regs[s], |a| -a),
            Code::Abs => unary(&mut regs[s], f64::abs),
            Code::Sign => unary(&mut regs[s], kernels::sign),
            Code::Tanh => unary(&mut regs[s], f64::tanh),
            Code::Not => unary(&mut regs[s], |a| kernels::truth(a == 0.0)),
            Code::IfThenElse => {
                let (lo, hi) = regs.split_at_mut(s + 1);
                let (then, otherwise) = hi.split_at(1);
                for ((c, &a), &b) in lo[s].iter_mut().zip(&then[0]).zip(&otherwise[0]) {
                    *c = if *c != 0.0 { a } else { b };
                }
            }
            Code::Lag { window, .. } => {
                let x = &regs[s];
                for (t, out) in scratch.iter_mut().enumerate() {
                    *out = if t >= window { x[t - window] } else { f64::NAN };
                }
                std::mem::swap(&mut regs[s], scratch);
            }
            Code::Rolling { stat: stat @ (Stat::Min | Stat::Max), window, .. } => {
                rolling_extreme(&regs[s], window, stat == Stat::Min, scratch, &mut rolling.deque);
                std::mem::swap(&mut regs[s], scratch);
            }
            Code::Rolling { stat, window, .. } => {
                let x = &regs[s];
                let warm_up = (window - 1).min(rows);
                for (t, out) in scratch[..warm_up].iter_mut().enumerate() {
                    *out = window_stat(stat, &[], &x[..=t]);
                }
                rolling_full(stat, x, window, &mut scratch[warm_up..], rolling);
                std::mem::swap(&mut regs[s], scratch);
            }
            Code::Ema { alpha, .. } => {
                let mut state = None;
                unary(&mut regs[s], |x| kernels::ema_step(&mut state, alpha, x));
            }
        }
    }
    for (o, &v) in out.iter_mut().zip(&regs[0]) {
        *o = signal(v);
    }
}
