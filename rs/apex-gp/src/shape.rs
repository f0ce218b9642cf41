//! What a tree looks like, as counts: its size and height, its constants and windows, and how often each primitive and
//! each input feature appears. Evolution's fitness surrogate reads these as the cheap features of a tree.

use rayon::prelude::*;

use crate::tree::{Limits, Node, NodePath, Op, Tree};
use crate::{GpError, Inputs};

/// Columns before the per-primitive counts: size, height, constants, window sum, largest window.
pub const SHAPE_HEAD: [&str; 5] = ["size", "height", "constants", "windows_sum", "window_max"];

/// Columns of a shape row over `inputs` features: [`SHAPE_HEAD`], one per primitive in [`Op::ALL`] order, one per
/// input feature in input order.
#[must_use]
pub fn shape_width(inputs: usize) -> usize {
    SHAPE_HEAD.len() + Op::ALL.len() + inputs
}

/// The names of a shape row's columns over the input features `names`: [`SHAPE_HEAD`], `op_<primitive>`,
/// `feature_<name>`.
#[must_use]
pub fn shape_columns<N: AsRef<str>>(names: &[N]) -> Vec<String> {
    let head = SHAPE_HEAD.iter().map(|c| (*c).to_owned());
    let ops = Op::ALL.iter().map(|op| format!("op_{}", op.name()));
    head.chain(ops).chain(names.iter().map(|n| format!("feature_{}", n.as_ref()))).collect()
}

/// Writes the shape of `tree` into `row` (zeroed first; `shape_width(inputs)` values): node count, height (a leaf is
/// 0), float constants, the sum and the largest of its windows (0 without any), then how many times each primitive
/// and each input feature appears.
///
/// # Errors
/// `UnknownFeature` (with the node path) for a feature `inputs` does not hold.
fn write_shape(tree: &Tree, inputs: &Inputs, row: &mut [f64]) -> Result<(), GpError> {
    row.fill(0.0);
    row[0] = tree.root().size() as f64;
    row[1] = tree.root().height() as f64;
    count(tree.root(), &NodePath::Root, inputs, row)
}

fn count(node: &Node, path: &NodePath<'_>, inputs: &Inputs, row: &mut [f64]) -> Result<(), GpError> {
    match node {
        Node::Apply { op, args } => {
            // Op's discriminants follow Op::ALL (one macro declares both).
            row[SHAPE_HEAD.len() + *op as usize] += 1.0;
            for (i, arg) in args.iter().enumerate() {
                count(arg, &path.arg(i), inputs, row)?;
            }
        }
        Node::Feature(name) => row[SHAPE_HEAD.len() + Op::ALL.len() + inputs.position(name, path)?] += 1.0,
        Node::Const(_) => row[2] += 1.0,
        Node::Window(k) => {
            row[3] += f64::from(*k);
            row[4] = row[4].max(f64::from(*k));
        }
        Node::Bool(_) => {}
    }
    Ok(())
}

/// The shape rows (row-major, `trees x shape_width(names.len())`) of JSON trees, loaded in parallel.
///
/// # Errors
/// `InTree { index, .. }` for a tree that does not load or reads a feature outside `names`; `Shape` when a name
/// repeats.
pub fn shapes_json<S: AsRef<str> + Sync, N: AsRef<str>>(
    trees: &[S],
    names: &[N],
    limits: &Limits,
) -> Result<Vec<f64>, GpError> {
    let inputs = Inputs::new(names)?;
    let width = shape_width(names.len());
    let mut out = vec![0.0; trees.len() * width];
    out.par_chunks_mut(width).zip(trees).enumerate().try_for_each(|(i, (row, text))| {
        Tree::from_json(text.as_ref(), limits)
            .and_then(|tree| write_shape(&tree, &inputs, row))
            .map_err(|e| GpError::InTree { index: i, source: Box::new(e) })
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitive_columns_follow_the_table_order() {
        assert!(Op::ALL.iter().enumerate().all(|(i, op)| *op as usize == i));
    }

    #[test]
    fn counts_nodes_windows_constants_and_features() {
        let text = r#"{"schema":"apex.gp_tree","version":1,"features":["b"],"root":{"op":"add","args":[
            {"op":"ts_mean","args":[{"feature":"b"},{"window":5}]},
            {"op":"if_then_else","args":[{"bool":true},{"const":0.5},{"op":"lag","args":[{"feature":"b"},{"window":20}]}]}]}}"#;
        let row = shapes_json(&[text], &["a", "b"], &Limits::default()).unwrap();
        let mut expected = vec![10.0, 3.0, 1.0, 25.0, 20.0];
        expected.extend(Op::ALL.iter().map(|op| match op {
            Op::Add | Op::TsMean | Op::IfThenElse | Op::Lag => 1.0,
            _ => 0.0,
        }));
        expected.extend([0.0, 2.0]);
        assert_eq!(row, expected);
    }

    #[test]
    fn a_feature_outside_the_names_is_named_with_its_tree_and_path() {
        let text =
            r#"{"schema":"apex.gp_tree","version":1,"features":["c"],"root":{"op":"neg","args":[{"feature":"c"}]}}"#;
        let err = shapes_json(&["bad", text], &["a", "b"], &Limits::default()).unwrap_err();
        assert!(matches!(err, GpError::InTree { index: 0, .. }), "{err}");
        let err = shapes_json(&[text], &["a", "b"], &Limits::default()).unwrap_err();
        assert_eq!(err.to_string(), "trees[0]: GP tree at root.args[0]: unknown feature \"c\" (the data has: a, b)");
    }
}
