//! The batch evaluator: many programs over whole columns, their shared subtrees evaluated once, block by block of
//! rows, the batch cut into parts of similar work that run in parallel with rayon.

use std::ops::Range;

use rayon::prelude::*;

use crate::GpError;
use crate::compile::{Inputs, Program};
use crate::plan::{self, Dag, Schedule};
use crate::tree::{Limits, Tree};

pub use crate::plan::Sharing;

/// Parts per rayon thread a batch is cut into: more parts balance the load better, fewer share more subtrees.
const PARTS_PER_THREAD: usize = 2;

/// Whether the programs of a batch share the evaluation of their common subtrees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Subtrees {
    /// Every distinct subtree of a part of the batch is evaluated once (the default).
    #[default]
    Shared,
    /// Every program is evaluated on its own (for comparison: the results are the same).
    PerProgram,
}

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
    Schedule::new(&Dag::new(std::slice::from_ref(program))).run(columns, rows, &mut out);
    Ok(out)
}

/// The signals of many programs compiled against the same inputs, row-major `programs x rows`, in parallel.
///
/// # Errors
/// `Shape` as [`evaluate`], or when a program's inputs differ from the first one's.
pub fn evaluate_many(programs: &[Program], columns: &[&[f64]]) -> Result<Vec<f64>, GpError> {
    evaluate_many_with(programs, columns, Subtrees::Shared)
}

/// [`evaluate_many`], choosing whether common subtrees are shared; the signals are the same either way.
///
/// # Errors
/// As [`evaluate_many`].
pub fn evaluate_many_with(programs: &[Program], columns: &[&[f64]], subtrees: Subtrees) -> Result<Vec<f64>, GpError> {
    let Some(first) = programs.first() else { return Ok(Vec::new()) };
    let rows = check_columns(first.inputs().len(), columns)?;
    let mut out = vec![0.0; programs.len() * rows];
    evaluate_many_into(programs, columns, subtrees, &mut out)?;
    Ok(out)
}

/// [`evaluate_many_with`] writing the signals into `out` (`programs x rows`, row-major), every value of which is
/// overwritten: a caller that evaluates batch after batch reuses one buffer instead of allocating (and the OS
/// zeroing) a new one each time.
///
/// # Errors
/// As [`evaluate_many`], and `Shape` when `out` does not hold exactly `programs x rows` values.
pub fn evaluate_many_into(
    programs: &[Program],
    columns: &[&[f64]],
    subtrees: Subtrees,
    out: &mut [f64],
) -> Result<(), GpError> {
    let Some(first) = programs.first() else {
        return match out.len() {
            0 => Ok(()),
            n => Err(GpError::Shape(format!("the output holds {n} values, not 0 programs x rows"))),
        };
    };
    if let Some(i) = programs.iter().position(|p| !p.same_inputs(first)) {
        return Err(GpError::Shape(format!("program {i} was compiled for other inputs than program 0")));
    }
    let rows = check_columns(first.inputs().len(), columns)?;
    if out.len() != programs.len() * rows {
        return Err(GpError::Shape(format!(
            "the output holds {} values, not {} programs x {rows} rows",
            out.len(),
            programs.len()
        )));
    }
    if rows == 0 {
        return Ok(());
    }
    let ranges = match subtrees {
        Subtrees::Shared => parts(programs, rayon::current_num_threads() * PARTS_PER_THREAD),
        Subtrees::PerProgram => (0..programs.len()).map(|i| i..i + 1).collect(),
    };
    let mut jobs = Vec::with_capacity(ranges.len());
    let mut rest = out;
    for range in ranges {
        let (dst, tail) = rest.split_at_mut(range.len() * rows);
        jobs.push((range, dst));
        rest = tail;
    }
    jobs.into_par_iter().for_each(|(range, dst)| {
        Schedule::new(&Dag::new(&programs[range])).run(columns, rows, dst);
    });
    Ok(())
}

/// How much `programs` share when evaluated together as one part.
pub fn sharing(programs: &[Program]) -> Sharing {
    Dag::new(programs).sharing()
}

/// Cuts the batch into at most `count` contiguous ranges of similar estimated work.
fn parts(programs: &[Program], count: usize) -> Vec<Range<usize>> {
    let costs = plan::costs(programs);
    let total: usize = costs.iter().sum();
    let mut ranges = Vec::with_capacity(count);
    let (mut start, mut done) = (0, 0);
    for (i, cost) in costs.iter().enumerate() {
        done += cost;
        if ranges.len() + 1 < count && done * count >= total * (ranges.len() + 1) {
            ranges.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < programs.len() {
        ranges.push(start..programs.len());
    }
    ranges
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
    evaluate_json_with(trees, names, columns, limits, Subtrees::Shared)
}

/// [`evaluate_json`], choosing whether common subtrees are shared.
///
/// # Errors
/// As [`evaluate_json`].
pub fn evaluate_json_with<S: AsRef<str> + Sync>(
    trees: &[S],
    names: &[S],
    columns: &[&[f64]],
    limits: &Limits,
    subtrees: Subtrees,
) -> Result<Vec<f64>, GpError> {
    let programs = compile_all(trees, names, limits)?;
    check_columns(names.len(), columns)?;
    evaluate_many_with(&programs, columns, subtrees)
}

/// [`evaluate_json_with`] writing the signals into `out` (`trees x rows`, row-major), as [`evaluate_many_into`].
///
/// # Errors
/// As [`evaluate_json`], and `Shape` when `out` does not hold exactly `trees x rows` values.
pub fn evaluate_json_into<S: AsRef<str> + Sync>(
    trees: &[S],
    names: &[S],
    columns: &[&[f64]],
    limits: &Limits,
    subtrees: Subtrees,
    out: &mut [f64],
) -> Result<(), GpError> {
    let programs = compile_all(trees, names, limits)?;
    check_columns(names.len(), columns)?;
    evaluate_many_into(&programs, columns, subtrees, out)
}

/// How much the JSON trees share, loaded and compiled against `names`.
///
/// # Errors
/// As [`compile_all`].
pub fn sharing_json<S: AsRef<str> + Sync>(trees: &[S], names: &[S], limits: &Limits) -> Result<Sharing, GpError> {
    compile_all(trees, names, limits).map(|programs| sharing(&programs))
}

/// Loads and compiles JSON trees in parallel, against one index of `names`.
///
/// # Errors
/// `InTree { index, .. }` for the first tree (by index) that fails.
pub fn compile_all<S: AsRef<str> + Sync, N: AsRef<str>>(
    trees: &[S],
    names: &[N],
    limits: &Limits,
) -> Result<Vec<Program>, GpError> {
    let inputs = Inputs::new(names);
    trees
        .par_iter()
        .enumerate()
        .map(|(index, text)| {
            let tree = Tree::from_json(text.as_ref(), limits);
            // The same errors in the same order as `Program::from_json` of each tree.
            tree.and_then(|tree| Program::compile_owned(tree, inputs.as_ref().map_err(Clone::clone)?))
                .map_err(|e| GpError::InTree { index, source: Box::new(e) })
        })
        .collect()
}
