//! The batch evaluator: one instruction at a time over whole columns, many programs in parallel with rayon.

use rayon::prelude::*;

use crate::compile::{Code, Program};
use crate::kernels::{self, window_stat};
use crate::tree::Limits;
use crate::{GpError, signal};

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
    Ok(run(program, columns, rows))
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
        out.par_chunks_mut(rows).zip(programs.par_iter()).for_each(|(dst, program)| {
            dst.copy_from_slice(&run(program, columns, rows));
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

fn run(program: &Program, columns: &[&[f64]], rows: usize) -> Vec<f64> {
    let mut regs = vec![vec![0.0; rows]; program.slots];
    let mut scratch = vec![0.0; rows];
    for ins in &program.code {
        let s = ins.slot;
        match ins.code {
            Code::Feature(i) => regs[s].copy_from_slice(columns[i]),
            Code::Const(v) => regs[s].fill(v),
            Code::Add => binary(&mut regs, s, |a, b| a + b),
            Code::Sub => binary(&mut regs, s, |a, b| a - b),
            Code::Mul => binary(&mut regs, s, |a, b| a * b),
            Code::Div => binary(&mut regs, s, kernels::div),
            Code::Min => binary(&mut regs, s, kernels::min),
            Code::Max => binary(&mut regs, s, kernels::max),
            Code::Gt => binary(&mut regs, s, |a, b| kernels::truth(a > b)),
            Code::Lt => binary(&mut regs, s, |a, b| kernels::truth(a < b)),
            Code::And => binary(&mut regs, s, |a, b| kernels::truth(a != 0.0 && b != 0.0)),
            Code::Or => binary(&mut regs, s, |a, b| kernels::truth(a != 0.0 || b != 0.0)),
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
                std::mem::swap(&mut regs[s], &mut scratch);
            }
            Code::Rolling { stat, window, .. } => {
                let x = &regs[s];
                for (t, out) in scratch.iter_mut().enumerate() {
                    let start = (t + 1).saturating_sub(window);
                    *out = window_stat(stat, &[], &x[start..=t]);
                }
                std::mem::swap(&mut regs[s], &mut scratch);
            }
            Code::Ema { alpha, .. } => {
                let mut state = None;
                unary(&mut regs[s], |x| kernels::ema_step(&mut state, alpha, x));
            }
        }
    }
    let mut out = regs.swap_remove(0);
    unary(&mut out, signal);
    out
}
