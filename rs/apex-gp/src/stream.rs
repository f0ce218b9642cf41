//! The streaming evaluator: one row at a time, ring buffers for rolling state; bit-identical to the batch evaluator.

use crate::compile::{Code, Program, StateSpec};
use crate::kernels::{self, window_stat};
use crate::signal;

/// The last `capacity` values pushed, oldest first as two slices.
#[derive(Clone, Debug)]
struct Ring {
    buf: Vec<f64>,
    start: usize,
    len: usize,
}

impl Ring {
    fn new(capacity: usize) -> Ring {
        Ring { buf: vec![0.0; capacity], start: 0, len: 0 }
    }

    fn push(&mut self, x: f64) {
        let cap = self.buf.len();
        if self.len < cap {
            self.buf[(self.start + self.len) % cap] = x;
            self.len += 1;
        } else {
            self.buf[self.start] = x;
            self.start = (self.start + 1) % cap;
        }
    }

    fn halves(&self) -> (&[f64], &[f64]) {
        let cap = self.buf.len();
        if self.start + self.len <= cap {
            (&self.buf[self.start..self.start + self.len], &[])
        } else {
            (&self.buf[self.start..], &self.buf[..self.start + self.len - cap])
        }
    }
}

#[derive(Clone, Debug)]
enum State {
    Ring(Ring),
    Ema(Option<f64>),
}

/// Evaluates a program one row at a time (the simulator and the live engine), keeping each rolling node's state.
#[derive(Clone, Debug)]
pub struct StreamingEvaluator {
    program: Program,
    regs: Vec<f64>,
    states: Vec<State>,
    rows: u64,
}

impl StreamingEvaluator {
    /// A fresh evaluator (no rows seen) for `program`.
    pub fn new(program: &Program) -> StreamingEvaluator {
        let states = program
            .states
            .iter()
            .map(|spec| match spec {
                StateSpec::Ring(capacity) => State::Ring(Ring::new(*capacity)),
                StateSpec::Ema => State::Ema(None),
            })
            .collect();
        StreamingEvaluator { program: program.clone(), regs: vec![0.0; program.slots], states, rows: 0 }
    }

    /// The program being run.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Rows pushed so far.
    pub fn rows_seen(&self) -> u64 {
        self.rows
    }

    /// Forgets every row seen (the state of a fresh evaluator).
    pub fn reset(&mut self) {
        *self = StreamingEvaluator::new(&self.program);
    }

    /// Pushes one row of feature values (in the program's input order) and returns the signal for that row.
    ///
    /// # Panics
    /// When `row` does not have one value per program input.
    pub fn push(&mut self, row: &[f64]) -> f64 {
        assert_eq!(row.len(), self.program.inputs().len(), "one value per program input");
        self.rows += 1;
        let regs = &mut self.regs;
        for ins in &self.program.code {
            let s = ins.slot;
            let b = || regs[s + 1];
            let value = match ins.code {
                Code::Feature(i) => row[i],
                Code::Const(v) => v,
                Code::Add => regs[s] + b(),
                Code::Sub => regs[s] - b(),
                Code::Mul => regs[s] * b(),
                Code::Div => kernels::div(regs[s], b()),
                Code::Min => kernels::min(regs[s], b()),
                Code::Max => kernels::max(regs[s], b()),
                Code::Gt => kernels::truth(regs[s] > b()),
                Code::Lt => kernels::truth(regs[s] < b()),
                Code::And => kernels::truth(regs[s] != 0.0 && b() != 0.0),
                Code::Or => kernels::truth(regs[s] != 0.0 || b() != 0.0),
                Code::Neg => -regs[s],
                Code::Abs => regs[s].abs(),
                Code::Sign => kernels::sign(regs[s]),
                Code::Tanh => kernels::tanh(regs[s]),
                Code::Not => kernels::truth(regs[s] == 0.0),
                Code::IfThenElse => {
                    if regs[s] != 0.0 {
                        regs[s + 1]
                    } else {
                        regs[s + 2]
                    }
                }
                Code::Lag { window, state } => {
                    let State::Ring(ring) = &mut self.states[state] else { unreachable!("lag owns a ring") };
                    ring.push(regs[s]);
                    if ring.len > window { ring.buf[ring.start] } else { f64::NAN }
                }
                Code::Rolling { stat, state, .. } => {
                    let State::Ring(ring) = &mut self.states[state] else { unreachable!("rolling ops own a ring") };
                    ring.push(regs[s]);
                    let (older, newer) = ring.halves();
                    window_stat(stat, older, newer)
                }
                Code::Ema { alpha, state } => {
                    let State::Ema(average) = &mut self.states[state] else { unreachable!("ema owns an average") };
                    kernels::ema_step(average, alpha, regs[s])
                }
            };
            regs[s] = value;
        }
        signal(regs[0])
    }
}

/// Runs a fresh streaming evaluator over `columns` row by row (the parity check against [`crate::batch::evaluate`]).
///
/// # Errors
/// `Shape` when the number of columns differs from the program's inputs or the columns differ in length.
pub fn stream_columns(program: &Program, columns: &[&[f64]]) -> Result<Vec<f64>, crate::GpError> {
    let rows = crate::batch::check_columns(program.inputs().len(), columns)?;
    let mut evaluator = StreamingEvaluator::new(program);
    let mut row = vec![0.0; columns.len()];
    Ok((0..rows)
        .map(|t| {
            for (value, column) in row.iter_mut().zip(columns) {
                *value = column[t];
            }
            evaluator.push(&row)
        })
        .collect())
}
