//! A naive recursive tree-walking interpreter over whole columns: the reference the tests and benchmarks compare to.
//!
//! It shares no code with the compiler or the evaluators (only the semantics), allocates a column per node, and
//! recomputes every window from scratch in the same order (oldest to newest, from 0.0), so its results equal the
//! bytecode evaluators bit for bit.

use crate::tree::{Node, Op, Tree};
use crate::{GpError, PROTECT_EPS, signal};

/// The signal of `tree` on `columns` named `names`.
///
/// # Errors
/// `UnknownFeature` when the tree uses a name not in `names`; `Shape` when the columns differ in length or count.
pub fn evaluate<S: AsRef<str>>(tree: &Tree, names: &[S], columns: &[&[f64]]) -> Result<Vec<f64>, GpError> {
    if names.len() != columns.len() {
        return Err(GpError::Shape(format!("{} names but {} columns", names.len(), columns.len())));
    }
    let rows = columns.first().map_or(0, |c| c.len());
    if columns.iter().any(|c| c.len() != rows) {
        return Err(GpError::Shape("columns differ in length".into()));
    }
    let value = eval(tree.root(), "root", names, columns, rows)?;
    Ok(value.into_iter().map(signal).collect())
}

fn b(x: bool) -> f64 {
    if x { 1.0 } else { 0.0 }
}

fn eval<S: AsRef<str>>(
    node: &Node,
    path: &str,
    names: &[S],
    columns: &[&[f64]],
    n: usize,
) -> Result<Vec<f64>, GpError> {
    let op = match node {
        Node::Feature(name) => {
            let Some(i) = names.iter().position(|s| s.as_ref() == name) else {
                return Err(GpError::UnknownFeature {
                    path: path.into(),
                    name: name.clone(),
                    available: String::new(),
                });
            };
            return Ok(columns[i].to_vec());
        }
        Node::Const(v) => return Ok(vec![*v; n]),
        Node::Bool(v) => return Ok(vec![b(*v); n]),
        Node::Window(k) => return Ok(vec![f64::from(*k); n]),
        Node::Apply { op, .. } => *op,
    };
    let Node::Apply { args, .. } = node else { unreachable!() };
    let a = eval(&args[0], &format!("{path}.args[0]"), names, columns, n)?;
    let window = match args.get(1) {
        Some(Node::Window(k)) => *k as usize,
        _ => 0,
    };
    let other = |i: usize| eval(&args[i], &format!("{path}.args[{i}]"), names, columns, n);
    let zip = |f: fn(f64, f64) -> f64| -> Result<Vec<f64>, GpError> {
        let y = other(1)?;
        Ok(a.iter().zip(&y).map(|(&p, &q)| f(p, q)).collect())
    };
    let map = |f: fn(f64) -> f64| a.iter().map(|&p| f(p)).collect::<Vec<f64>>();
    let windowed =
        |f: &dyn Fn(&[f64]) -> f64| -> Vec<f64> { (0..n).map(|t| f(&a[(t + 1).saturating_sub(window)..=t])).collect() };
    let mean = |w: &[f64]| {
        let mut s = 0.0;
        for v in w {
            s += v;
        }
        s / w.len() as f64
    };
    let std = |w: &[f64]| {
        let mu = mean(w);
        let mut s = 0.0;
        for v in w {
            s += (v - mu) * (v - mu);
        }
        (s / w.len() as f64).sqrt()
    };
    Ok(match op {
        Op::Add => zip(|p, q| p + q)?,
        Op::Sub => zip(|p, q| p - q)?,
        Op::Mul => zip(|p, q| p * q)?,
        Op::Div => zip(|p, q| if q.abs() < PROTECT_EPS { 0.0 } else { p / q })?,
        Op::Min => zip(|p, q| if p.is_nan() || q.is_nan() { f64::NAN } else { p.min(q) })?,
        Op::Max => zip(|p, q| if p.is_nan() || q.is_nan() { f64::NAN } else { p.max(q) })?,
        Op::Gt => zip(|p, q| b(p > q))?,
        Op::Lt => zip(|p, q| b(p < q))?,
        Op::And => zip(|p, q| b(p != 0.0 && q != 0.0))?,
        Op::Or => zip(|p, q| b(p != 0.0 || q != 0.0))?,
        Op::Neg => map(|p| -p),
        Op::Abs => map(f64::abs),
        Op::Sign => map(|p| {
            if p.is_nan() {
                p
            } else if p == 0.0 {
                0.0
            } else {
                p.signum()
            }
        }),
        Op::Tanh => map(crate::tanh),
        Op::Not => map(|p| b(p == 0.0)),
        Op::IfThenElse => {
            let (y, z) = (other(1)?, other(2)?);
            (0..n).map(|t| if a[t] != 0.0 { y[t] } else { z[t] }).collect()
        }
        Op::Lag => (0..n).map(|t| if t >= window { a[t - window] } else { f64::NAN }).collect(),
        Op::TsMean => windowed(&mean),
        Op::TsStd => windowed(&std),
        Op::TsZscore => windowed(&|w| {
            let sd = std(w);
            if sd < PROTECT_EPS { 0.0 } else { (w[w.len() - 1] - mean(w)) / sd }
        }),
        Op::TsMin => windowed(&|w| {
            if w.iter().any(|v| v.is_nan()) { f64::NAN } else { w.iter().copied().fold(f64::INFINITY, f64::min) }
        }),
        Op::TsMax => windowed(&|w| {
            if w.iter().any(|v| v.is_nan()) { f64::NAN } else { w.iter().copied().fold(f64::NEG_INFINITY, f64::max) }
        }),
        Op::TsRank => windowed(&|w| {
            let x = w[w.len() - 1];
            if w.iter().any(|v| v.is_nan()) {
                return f64::NAN;
            }
            if w.len() == 1 {
                return 0.5;
            }
            let below = w.iter().filter(|&&v| v < x).count() as f64;
            let equal = w.iter().filter(|&&v| v == x).count() as f64;
            (below + 0.5 * (equal - 1.0)) / (w.len() - 1) as f64
        }),
        Op::Ema => {
            let alpha = 2.0 / (window as f64 + 1.0);
            let mut e: Option<f64> = None;
            a.iter()
                .map(|&x| {
                    if x.is_nan() {
                        return f64::NAN;
                    }
                    let next = e.map_or(x, |e| e + alpha * (x - e));
                    e = Some(next);
                    next
                })
                .collect()
        }
    })
}
