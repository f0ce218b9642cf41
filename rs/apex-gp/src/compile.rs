//! The compiler from a validated tree to flat postfix bytecode over stack slots, with per-node rolling-state slots.

use std::collections::HashMap;
use std::sync::Arc;

use crate::GpError;
use crate::kernels::{Stat, ema_alpha};
use crate::tree::{Limits, Node, NodePath, Op, Tree};

/// What one instruction computes; operands are the slots `slot`, `slot + 1`, `slot + 2`, the result goes to `slot`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Code {
    /// Load input column / row value `index`.
    Feature(usize),
    /// Load a constant (Bool constants are 0.0/1.0).
    Const(f64),
    Add,
    Sub,
    Mul,
    Div,
    Neg,
    Abs,
    Sign,
    Tanh,
    Min,
    Max,
    Gt,
    Lt,
    And,
    Or,
    Not,
    IfThenElse,
    /// `x` `window` rows ago; streaming keeps a ring of `window + 1` values in state `state`.
    Lag {
        window: usize,
        state: usize,
    },
    /// A statistic over the last `window` rows; streaming keeps a ring of `window` values in state `state`.
    Rolling {
        stat: Stat,
        window: usize,
        state: usize,
    },
    /// EMA with this alpha; streaming keeps the average in state `state`.
    Ema {
        alpha: f64,
        state: usize,
    },
}

/// One bytecode instruction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Instr {
    pub code: Code,
    pub slot: usize,
}

/// The rolling state an instruction needs in the streaming evaluator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StateSpec {
    /// A ring buffer of this capacity.
    Ring(usize),
    /// An EMA accumulator.
    Ema,
}

/// The ordered input feature names a batch of trees is compiled against, indexed once for all of them.
#[derive(Clone, Debug, PartialEq)]
pub struct Inputs {
    names: Arc<[String]>,
    index: HashMap<String, usize>,
}

impl Inputs {
    /// The names of the columns (batch) or row values (streaming), in that order.
    ///
    /// # Errors
    /// `Shape` when a name repeats.
    pub fn new<S: AsRef<str>>(names: &[S]) -> Result<Inputs, GpError> {
        let mut index = HashMap::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            if index.insert(name.as_ref().to_owned(), i).is_some() {
                return Err(GpError::Shape(format!("feature name {:?} appears twice", name.as_ref())));
            }
        }
        Ok(Inputs { names: names.iter().map(|s| s.as_ref().to_owned()).collect(), index })
    }

    /// The names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The position of the feature `name` read at `path`.
    ///
    /// # Errors
    /// `UnknownFeature` naming the feature, the node path and the names there are.
    pub(crate) fn position(&self, name: &str, path: &NodePath<'_>) -> Result<usize, GpError> {
        self.index.get(name).copied().ok_or_else(|| GpError::UnknownFeature {
            path: path.to_string(),
            name: name.to_owned(),
            available: self.names.join(", "),
        })
    }
}

/// A compiled tree: postfix instructions over `slots` stack slots, bound to an ordered list of input features.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub(crate) code: Vec<Instr>,
    pub(crate) slots: usize,
    pub(crate) states: Vec<StateSpec>,
    /// Shared by every program compiled against the same [`Inputs`].
    inputs: Arc<[String]>,
    nodes: usize,
    tree: Tree,
}

impl Program {
    /// Compiles `tree` for data whose columns (batch) or row values (streaming) are `inputs`, in that order.
    ///
    /// # Errors
    /// `UnknownFeature` (with the node path) when the tree uses a feature not in `inputs`; `Shape` when `inputs`
    /// repeats a name.
    pub fn compile<S: AsRef<str>>(tree: &Tree, inputs: &[S]) -> Result<Program, GpError> {
        Program::compile_owned(tree.clone(), &Inputs::new(inputs)?)
    }

    /// Compiles `tree` against inputs indexed beforehand (many trees, one index), keeping the tree.
    ///
    /// # Errors
    /// `UnknownFeature` (with the node path) when the tree uses a feature not in `inputs`.
    pub fn compile_owned(tree: Tree, inputs: &Inputs) -> Result<Program, GpError> {
        let mut compiler = Compiler { inputs, code: Vec::new(), states: Vec::new(), slots: 0 };
        compiler.emit(tree.root(), 0, &NodePath::Root)?;
        Ok(Program {
            slots: compiler.slots,
            code: compiler.code,
            states: compiler.states,
            inputs: Arc::clone(&inputs.names),
            nodes: tree.root().size(),
            tree,
        })
    }

    /// Loads a JSON tree and compiles it against `inputs`: every check happens here, none at run time.
    ///
    /// # Errors
    /// As [`Tree::from_json`] and [`Program::compile`].
    pub fn from_json<S: AsRef<str>>(text: &str, inputs: &[S], limits: &Limits) -> Result<Program, GpError> {
        Program::compile_owned(Tree::from_json(text, limits)?, &Inputs::new(inputs)?)
    }

    /// Whether both programs read the same inputs in the same order (cheap when compiled against one [`Inputs`]).
    pub fn same_inputs(&self, other: &Program) -> bool {
        Arc::ptr_eq(&self.inputs, &other.inputs) || self.inputs == other.inputs
    }

    /// The input feature names, in the order columns / row values are expected.
    pub fn inputs(&self) -> &[String] {
        &self.inputs
    }

    /// Number of tree nodes (the unit of "node evaluations").
    pub fn node_count(&self) -> usize {
        self.nodes
    }

    /// Number of bytecode instructions (window leaves fold into their op).
    pub fn instruction_count(&self) -> usize {
        self.code.len()
    }

    /// The tree this program was compiled from.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }
}

struct Compiler<'a> {
    inputs: &'a Inputs,
    code: Vec<Instr>,
    states: Vec<StateSpec>,
    slots: usize,
}

impl Compiler<'_> {
    fn push(&mut self, code: Code, slot: usize) {
        self.slots = self.slots.max(slot + 1);
        self.code.push(Instr { code, slot });
    }

    fn state(&mut self, spec: StateSpec) -> usize {
        self.states.push(spec);
        self.states.len() - 1
    }

    fn emit(&mut self, node: &Node, slot: usize, path: &NodePath<'_>) -> Result<(), GpError> {
        match node {
            Node::Feature(name) => {
                let i = self.inputs.position(name, path)?;
                self.push(Code::Feature(i), slot);
            }
            Node::Const(v) => self.push(Code::Const(*v), slot),
            Node::Bool(b) => self.push(Code::Const(if *b { 1.0 } else { 0.0 }), slot),
            Node::Window(_) => unreachable!("a validated tree has windows only as window arguments"),
            Node::Apply { op, args } => {
                let window = match args.get(1) {
                    Some(Node::Window(k)) => *k,
                    _ => 0,
                };
                let value_args = if window > 0 { &args[..1] } else { &args[..] };
                for (i, arg) in value_args.iter().enumerate() {
                    self.emit(arg, slot + i, &path.arg(i))?;
                }
                let k = window as usize;
                let code = match op {
                    Op::Add => Code::Add,
                    Op::Sub => Code::Sub,
                    Op::Mul => Code::Mul,
                    Op::Div => Code::Div,
                    Op::Neg => Code::Neg,
                    Op::Abs => Code::Abs,
                    Op::Sign => Code::Sign,
                    Op::Tanh => Code::Tanh,
                    Op::Min => Code::Min,
                    Op::Max => Code::Max,
                    Op::Gt => Code::Gt,
                    Op::Lt => Code::Lt,
                    Op::And => Code::And,
                    Op::Or => Code::Or,
                    Op::Not => Code::Not,
                    Op::IfThenElse => Code::IfThenElse,
                    Op::Lag => Code::Lag { window: k, state: self.state(StateSpec::Ring(k + 1)) },
                    Op::Ema => Code::Ema { alpha: ema_alpha(window), state: self.state(StateSpec::Ema) },
                    Op::TsMean | Op::TsStd | Op::TsZscore | Op::TsMin | Op::TsMax | Op::TsRank => {
                        let stat = match op {
                            Op::TsMean => Stat::Mean,
                            Op::TsStd => Stat::Std,
                            Op::TsZscore => Stat::Zscore,
                            Op::TsMin => Stat::Min,
                            Op::TsMax => Stat::Max,
                            _ => Stat::Rank,
                        };
                        Code::Rolling { stat, window: k, state: self.state(StateSpec::Ring(k)) }
                    }
                };
                self.push(code, slot);
            }
        }
        Ok(())
    }
}
