//! Many compiled programs hash-consed into one DAG of distinct subtrees, scheduled for blocked evaluation.
//!
//! Every subtree the programs share (the same operation over the same children) becomes one node, evaluated once per
//! row block however many trees hold it; after crossover most of a population's subtrees are shared. Nodes whose
//! inputs are all constants are folded, `gt(a, b)` is stored as `lt(b, a)`, and the arguments of the commutative
//! operations are put in a fixed order, so more subtrees meet. None of this changes a signal: folding runs the
//! block kernels themselves, `a > b` is `b < a` for every pair, and swapping the arguments of `add`, `mul`, `and`,
//! `or`, `min` and `max` can change only the sign of a zero or the payload of a NaN, which no operation and no
//! signal can tell apart (division is protected, comparisons see -0.0 = 0.0, and the signal maps both to 0.0).

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::block::{self, BinaryOp, Src, UnaryOp};
use crate::compile::{Code, Program};
use crate::kernels::{self, Stat};

/// Index of a node in a [`Dag`].
type Id = u32;

/// A distinct subtree: an operation over earlier nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Node {
    Feature(usize),
    /// A constant by its bits (so that the node can be hashed).
    Const(u64),
    Unary(UnaryOp, Id),
    Binary(BinaryOp, Id, Id),
    Select(Id, Id, Id),
    Lag(usize, Id),
    Rolling(Stat, usize, Id),
    /// The EMA's alpha by its bits.
    Ema(u64, Id),
}

impl Node {
    fn children(self) -> impl Iterator<Item = Id> {
        let (n, ids) = match self {
            Node::Feature(_) | Node::Const(_) => (0, [0; 3]),
            Node::Unary(_, a) | Node::Lag(_, a) | Node::Rolling(_, _, a) | Node::Ema(_, a) => (1, [a, 0, 0]),
            Node::Binary(_, a, b) => (2, [a, b, 0]),
            Node::Select(c, a, b) => (3, [c, a, b]),
        };
        ids.into_iter().take(n)
    }
}

/// The distinct subtrees of some programs, children before parents, and each program's root.
#[derive(Default)]
pub(crate) struct Dag {
    nodes: Vec<Node>,
    index: HashMap<Node, Id>,
    roots: Vec<Id>,
    /// Tree nodes over all programs (window leaves included), for the sharing statistics.
    tree_nodes: usize,
}

impl Dag {
    pub(crate) fn new(programs: &[Program]) -> Dag {
        let mut dag = Dag::default();
        for program in programs {
            dag.add(program);
        }
        dag
    }

    /// Adds a program: replays its postfix code on a stack of node ids.
    fn add(&mut self, program: &Program) {
        let mut slots: Vec<Id> = vec![0; program.slots.max(1)];
        for ins in &program.code {
            let s = ins.slot;
            let arg = |i: usize| slots[s + i];
            let node = match ins.code {
                Code::Feature(i) => Node::Feature(i),
                Code::Const(v) => Node::Const(v.to_bits()),
                Code::Neg => Node::Unary(UnaryOp::Neg, arg(0)),
                Code::Abs => Node::Unary(UnaryOp::Abs, arg(0)),
                Code::Sign => Node::Unary(UnaryOp::Sign, arg(0)),
                Code::Tanh => Node::Unary(UnaryOp::Tanh, arg(0)),
                Code::Not => Node::Unary(UnaryOp::Not, arg(0)),
                Code::Add => Node::Binary(BinaryOp::Add, arg(0), arg(1)),
                Code::Sub => Node::Binary(BinaryOp::Sub, arg(0), arg(1)),
                Code::Mul => Node::Binary(BinaryOp::Mul, arg(0), arg(1)),
                Code::Div => Node::Binary(BinaryOp::Div, arg(0), arg(1)),
                Code::Min => Node::Binary(BinaryOp::Min, arg(0), arg(1)),
                Code::Max => Node::Binary(BinaryOp::Max, arg(0), arg(1)),
                Code::Gt => Node::Binary(BinaryOp::Lt, arg(1), arg(0)),
                Code::Lt => Node::Binary(BinaryOp::Lt, arg(0), arg(1)),
                Code::And => Node::Binary(BinaryOp::And, arg(0), arg(1)),
                Code::Or => Node::Binary(BinaryOp::Or, arg(0), arg(1)),
                Code::IfThenElse => Node::Select(arg(0), arg(1), arg(2)),
                Code::Lag { window, .. } => Node::Lag(window, arg(0)),
                Code::Rolling { stat, window, .. } => Node::Rolling(stat, window, arg(0)),
                Code::Ema { alpha, .. } => Node::Ema(alpha.to_bits(), arg(0)),
            };
            slots[s] = self.intern(node);
        }
        self.roots.push(slots[0]);
        self.tree_nodes += program.node_count();
    }

    fn constant(&self, id: Id) -> Option<f64> {
        match self.nodes[id as usize] {
            Node::Const(bits) => Some(f64::from_bits(bits)),
            _ => None,
        }
    }

    /// The id of `node`, after folding and canonical ordering; a new node only when no equal one exists.
    fn intern(&mut self, node: Node) -> Id {
        let folded = match node {
            Node::Unary(op, a) => self.constant(a).map(|a| {
                let mut out = [0.0];
                block::unary(op, Src::Scalar(a), &mut out);
                out[0]
            }),
            Node::Binary(op, a, b) => self.constant(a).zip(self.constant(b)).map(|(a, b)| {
                let mut out = [0.0];
                block::binary(op, Src::Scalar(a), Src::Scalar(b), &mut out);
                out[0]
            }),
            // A window of one row is the row itself: its mean (0.0 + x, divided by 1), minimum and maximum are x (up
            // to the sign of a zero).
            Node::Rolling(Stat::Mean | Stat::Min | Stat::Max, 1, x) => return x,
            Node::Select(c, a, b) => {
                if a == b {
                    return a;
                }
                if let Some(c) = self.constant(c) {
                    return if c != 0.0 { a } else { b };
                }
                None
            }
            _ => None,
        };
        let node = match (folded, node) {
            (Some(value), _) => Node::Const(value.to_bits()),
            (None, Node::Binary(op, a, b)) if op.commutes() && b < a => Node::Binary(op, b, a),
            (None, node) => node,
        };
        if let Some(&id) = self.index.get(&node) {
            return id;
        }
        let id = Id::try_from(self.nodes.len()).expect("fewer than 2^32 distinct subtrees");
        self.nodes.push(node);
        self.index.insert(node, id);
        id
    }

    /// Which nodes some root needs.
    fn live(&self) -> Vec<bool> {
        let mut live = vec![false; self.nodes.len()];
        for &root in &self.roots {
            live[root as usize] = true;
        }
        for i in (0..self.nodes.len()).rev() {
            if live[i] {
                for child in self.nodes[i].children() {
                    live[child as usize] = true;
                }
            }
        }
        live
    }

    /// How many operations one evaluation performs per row with and without sharing.
    pub(crate) fn sharing(&self) -> Sharing {
        let live = self.live();
        let distinct = self
            .nodes
            .iter()
            .zip(&live)
            .filter(|(node, live)| **live && !matches!(node, Node::Feature(_) | Node::Const(_)))
            .count();
        Sharing { programs: self.roots.len(), tree_nodes: self.tree_nodes, distinct_operations: distinct }
    }
}

/// How much a set of programs shares: the work per row of evaluating them one by one versus as one DAG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sharing {
    /// Number of programs.
    pub programs: usize,
    /// Tree nodes over all programs (window and constant leaves included): the unit of "node evaluations".
    pub tree_nodes: usize,
    /// Distinct operations (inner nodes after folding and hash-consing) the shared evaluation computes per row.
    pub distinct_operations: usize,
}

/// Where a step reads an argument.
#[derive(Clone, Copy, Debug)]
enum Operand {
    Column(usize),
    Scalar(f64),
    Buffer(usize),
}

#[derive(Clone, Copy, Debug)]
enum StepOp {
    Unary(UnaryOp),
    Binary(BinaryOp),
    Select,
    Lag(usize),
    Rolling(Stat, usize),
    Ema(f64),
    /// A window op over a constant: its values for the first rows, the last repeated ever after (an index into
    /// [`Schedule::ramps`]).
    Ramp(usize),
}

/// The values of a window op over the constant `c` row by row, up to the row from which the value never changes
/// (the last one): for a rolling statistic the window of k copies, for `lag` `c` after k NaNs, for an EMA the fixed
/// point its recurrence reaches (c, or NaN for an infinite c). Computed with the scalar kernels the blocks and the
/// streaming evaluator agree with, so the values are theirs; `None` if the EMA's recurrence does not settle (it
/// always does, but the claim is checked rather than assumed).
fn ramp(op: StepOp, c: f64) -> Option<Vec<f64>> {
    match op {
        StepOp::Lag(k) => {
            let mut values = vec![f64::NAN; k];
            values.push(c);
            Some(values)
        }
        StepOp::Rolling(stat, k) => {
            let copies = vec![c; k];
            Some((1..=k).map(|m| kernels::window_stat(stat, &[], &copies[..m])).collect())
        }
        StepOp::Ema(alpha) => {
            let mut average = None;
            let mut values: Vec<f64> = Vec::new();
            for _ in 0..8 {
                let value = kernels::ema_step(&mut average, alpha, c);
                // Settled: the state maps to itself, so every later row repeats this value.
                let settled = values.last().is_some_and(|last| last.to_bits() == value.to_bits())
                    && average.is_some_and(|a| a.to_bits() == value.to_bits());
                if settled {
                    return Some(values);
                }
                values.push(value);
            }
            None
        }
        _ => None,
    }
}

/// One node's evaluation over a block: reads `args`, writes buffer `out`, then the signal of every program whose
/// root this is (`roots` indexes [`Schedule::root_programs`]).
#[derive(Clone, Debug)]
struct Step {
    op: StepOp,
    args: [Operand; 3],
    out: usize,
    state: usize,
    roots: (usize, usize),
    /// Steps run together from this one: more than 1 at the head of an EMA group, 0 at its other members, else 1.
    group: usize,
}

/// A DAG in evaluation order with its buffers allocated: a buffer is reused as soon as the last step reading it ran.
pub(crate) struct Schedule {
    steps: Vec<Step>,
    buffers: usize,
    root_programs: Vec<usize>,
    /// Programs whose root is a feature or a constant: (program, operand).
    direct: Vec<(usize, Operand)>,
    /// Per stateful step: the lag window, the rolling window, or 0 for an EMA.
    states: Vec<(StepOp, usize)>,
    /// The largest window, for the scratch the rolling kernels use.
    max_window: usize,
    /// The values of the window ops over constants (see [`ramp`]).
    ramps: Vec<Vec<f64>>,
}

impl Schedule {
    pub(crate) fn new(dag: &Dag) -> Schedule {
        let live = dag.live();
        // Last step that reads each node; roots with no reader are read by their own step (the signal).
        let mut step_of = vec![usize::MAX; dag.nodes.len()];
        let (computed, group) = order(dag, &live);
        for (step, &id) in computed.iter().enumerate() {
            step_of[id] = step;
        }
        let mut last_read = vec![0usize; dag.nodes.len()];
        for (step, &id) in computed.iter().enumerate() {
            last_read[id] = step;
            for child in dag.nodes[id].children() {
                last_read[child as usize] = step;
            }
        }
        let mut programs_of: HashMap<Id, Vec<usize>> = HashMap::new();
        for (program, &root) in dag.roots.iter().enumerate() {
            programs_of.entry(root).or_default().push(program);
        }

        let mut schedule = Schedule {
            steps: Vec::with_capacity(computed.len()),
            buffers: 0,
            root_programs: Vec::new(),
            direct: Vec::new(),
            states: Vec::new(),
            max_window: 0,
            ramps: Vec::new(),
        };
        let mut buffer_of = vec![usize::MAX; dag.nodes.len()];
        let mut free: Vec<usize> = Vec::new();
        let mut held: Vec<usize> = Vec::new();
        // Whether the step is the last of its group (a step outside any group is a group of one).
        let mut closes_group = vec![true; computed.len()];
        for (step, &size) in group.iter().enumerate() {
            if size > 1 {
                closes_group[step..step + size - 1].fill(false);
            }
        }
        let operand = |id: Id, buffer_of: &[usize]| match dag.nodes[id as usize] {
            Node::Feature(i) => Operand::Column(i),
            Node::Const(bits) => Operand::Scalar(f64::from_bits(bits)),
            _ => Operand::Buffer(buffer_of[id as usize]),
        };
        for (program, &root) in dag.roots.iter().enumerate() {
            if step_of[root as usize] == usize::MAX {
                schedule.direct.push((program, operand(root, &buffer_of)));
            }
        }
        for (step, &id) in computed.iter().enumerate() {
            let node = dag.nodes[id];
            let mut args = [Operand::Scalar(0.0); 3];
            for (slot, child) in node.children().enumerate() {
                args[slot] = operand(child, &buffer_of);
            }
            let op = match node {
                Node::Unary(op, _) => StepOp::Unary(op),
                Node::Binary(op, ..) => StepOp::Binary(op),
                Node::Select(..) => StepOp::Select,
                Node::Lag(k, _) => StepOp::Lag(k),
                Node::Rolling(stat, k, _) => StepOp::Rolling(stat, k),
                Node::Ema(alpha, _) => StepOp::Ema(f64::from_bits(alpha)),
                Node::Feature(_) | Node::Const(_) => unreachable!("leaves are operands, not steps"),
            };
            // A window op over a constant needs no state and no window pass: its values are known ahead.
            let op = match (op, args[0]) {
                (StepOp::Lag(_) | StepOp::Rolling(..) | StepOp::Ema(_), Operand::Scalar(c)) => match ramp(op, c) {
                    Some(values) => {
                        schedule.ramps.push(values);
                        StepOp::Ramp(schedule.ramps.len() - 1)
                    }
                    None => op,
                },
                _ => op,
            };
            let state = match op {
                StepOp::Lag(k) | StepOp::Rolling(_, k) => {
                    schedule.max_window = schedule.max_window.max(k);
                    schedule.states.push((op, k));
                    schedule.states.len() - 1
                }
                StepOp::Ema(_) => {
                    schedule.states.push((op, 0));
                    schedule.states.len() - 1
                }
                _ => usize::MAX,
            };
            // The output buffer is taken before the arguments' buffers are released: a step never writes what it
            // reads.
            let out = free.pop().unwrap_or_else(|| {
                schedule.buffers += 1;
                schedule.buffers - 1
            });
            buffer_of[id] = out;
            let start = schedule.root_programs.len();
            if let Some(programs) = programs_of.get(&(id as Id)) {
                schedule.root_programs.extend(programs);
            }
            let group = group[step];
            schedule.steps.push(Step { op, args, out, state, roots: (start, schedule.root_programs.len()), group });
            let released = node.children().filter(|&child| last_read[child as usize] == step).filter_map(|child| {
                match operand(child, &buffer_of) {
                    Operand::Buffer(b) => Some(b),
                    _ => None,
                }
            });
            held.extend(released);
            if last_read[id] == step {
                held.push(out);
            }
            // The members of an EMA group run together, row by row: a buffer one member releases is reused only
            // after the whole group, or a later member could overwrite what an earlier one still reads.
            if closes_group[step] {
                held.sort_unstable();
                held.dedup();
                free.append(&mut held);
            }
        }
        schedule
    }

    /// Evaluates every program of the DAG over `columns` (all `rows` long), block by block, writing each program's
    /// signal into its row of `out` (`programs x rows`, row-major).
    pub(crate) fn run(&self, columns: &[&[f64]], rows: usize, out: &mut [f64]) {
        ARCH.dispatch(Run { schedule: self, columns, rows, out });
    }

    /// [`Schedule::run`] for the instruction set `pulp` dispatched to: inlined, with every kernel, into one copy per
    /// instruction set, so no step pays a dispatch.
    #[inline(always)]
    fn run_blocks(&self, columns: &[&[f64]], rows: usize, out: &mut [f64]) {
        let mut buffers: Vec<Vec<f64>> = (0..self.buffers).map(|_| vec![0.0; block::ROWS]).collect();
        let mut states: Vec<block::State> = self
            .states
            .iter()
            .map(|&(op, k)| match op {
                StepOp::Lag(_) => block::State::lag(k),
                StepOp::Rolling(..) => block::State::rolling(k),
                _ => block::State::ema(),
            })
            .collect();
        let mut scratch = block::Scratch::new(self.max_window);
        let mut start = 0;
        while start < rows {
            apex_cancel::checkpoint(); // an interrupted caller stops within a block
            let len = block::ROWS.min(rows - start);
            for &(program, operand) in &self.direct {
                block::signal(
                    block_rows(operand, columns, &buffers, start, len),
                    &mut out[program * rows + start..][..len],
                );
            }
            let mut i = 0;
            while i < self.steps.len() {
                let step = &self.steps[i];
                if step.group > 1 {
                    let members = &self.steps[i..i + step.group];
                    self.ema_group(members, columns, &mut buffers, &mut states, start, len);
                    for member in members {
                        for &program in &self.root_programs[member.roots.0..member.roots.1] {
                            block::signal(
                                Src::Slice(&buffers[member.out][..len]),
                                &mut out[program * rows + start..][..len],
                            );
                        }
                    }
                    i += step.group;
                    continue;
                }
                let mut dst = std::mem::take(&mut buffers[step.out]);
                let value = &mut dst[..len];
                let arg = |i: usize| block_rows(step.args[i], columns, &buffers, start, len);
                match step.op {
                    StepOp::Unary(op) => block::unary(op, arg(0), value),
                    StepOp::Binary(op) => block::binary(op, arg(0), arg(1), value),
                    StepOp::Select => block::select(arg(0), arg(1), arg(2), value),
                    StepOp::Ramp(r) => block::ramp(&self.ramps[r], start, value),
                    StepOp::Lag(_) | StepOp::Rolling(..) | StepOp::Ema(_) => {
                        let state = &mut states[step.state];
                        let input = match step.args[0] {
                            Operand::Column(i) => block::Input::Column(columns[i], start),
                            _ => block::Input::Block(arg(0)),
                        };
                        match step.op {
                            StepOp::Lag(k) => block::lag(k, input, state, value),
                            StepOp::Rolling(stat, k) => block::rolling(stat, k, input, state, &mut scratch, value),
                            StepOp::Ema(alpha) => block::ema(alpha, arg(0), state, value),
                            _ => unreachable!(),
                        }
                    }
                }
                for &program in &self.root_programs[step.roots.0..step.roots.1] {
                    block::signal(Src::Slice(value), &mut out[program * rows + start..][..len]);
                }
                buffers[step.out] = dst;
                i += 1;
            }
            start += len;
        }
    }
}

impl Schedule {
    /// The EMA steps of a group over rows `start..start + len`, interleaved row by row (see [`block::ema_group`]).
    #[inline(always)]
    fn ema_group(
        &self,
        members: &[Step],
        columns: &[&[f64]],
        buffers: &mut [Vec<f64>],
        states: &mut [block::State],
        start: usize,
        len: usize,
    ) {
        macro_rules! group {
            ($($n:literal)*) => {
                match members.len() {
                    $($n => {
                        let member: [&Step; $n] = std::array::from_fn(|m| &members[m]);
                        let mut outs: [Vec<f64>; $n] = member.map(|step| std::mem::take(&mut buffers[step.out]));
                        let alphas = member.map(|step| match step.op {
                            StepOp::Ema(alpha) => alpha,
                            _ => unreachable!("a group holds EMAs only"),
                        });
                        let xs = member.map(|step| match block_rows(step.args[0], columns, buffers, start, len) {
                            Src::Slice(x) => x,
                            Src::Scalar(_) => unreachable!("an EMA of a constant is never grouped"),
                        });
                        let mut averages = member.map(|step| block::ema_average(&states[step.state]));
                        block::ema_group(alphas, xs, &mut averages, &mut outs, len);
                        for ((step, average), buffer) in member.iter().zip(averages).zip(outs) {
                            states[step.state] = block::State::Ema(average);
                            buffers[step.out] = buffer;
                        }
                    })*
                    _ => unreachable!("groups hold 2..={EMA_GROUP} EMAs"),
                }
            };
        }
        group!(2 3 4 5 6 7 8);
    }
}

/// The most EMAs evaluated together: each is a chain of dependent float operations (about 12 cycles a row), so
/// several independent chains interleaved keep the core busy.
const EMA_GROUP: usize = 8;

/// The computed nodes in evaluation order, and the size of the group each step starts (see [`Step::group`]).
///
/// An EMA is a chain of dependent operations row after row, so EMAs are run in groups of up to [`EMA_GROUP`]
/// (independent chains interleaved). To make the groups large, the EMAs are ordered by level (an EMA's level is one
/// more than the highest level of the EMAs below it): first everything the level-1 EMAs read, then those EMAs in
/// groups, then what the level-2 EMAs still need, then them, and so on; the other nodes last. Each part keeps the
/// DAG's own order (children before parents). An EMA of a constant is not grouped (its values are known ahead, see
/// [`ramp`]).
fn order(dag: &Dag, live: &[bool]) -> (Vec<usize>, Vec<usize>) {
    let n = dag.nodes.len();
    let computed = |id: usize| live[id] && !matches!(dag.nodes[id], Node::Feature(_) | Node::Const(_));
    let groupable = |id: usize| match dag.nodes[id] {
        Node::Ema(_, x) => computed(id) && !matches!(dag.nodes[x as usize], Node::Const(_)),
        _ => false,
    };
    // EMA levels below each node (children come before parents, so one pass in id order).
    let mut below = vec![0usize; n];
    for id in 0..n {
        let inner = dag.nodes[id].children().map(|c| below[c as usize]).max().unwrap_or(0);
        below[id] = inner + usize::from(groupable(id));
    }
    // The phase a node is computed in: the lowest level of a grouped EMA that reads it (directly or not), or after
    // all of them (usize::MAX). Parents come after children, so one pass from the last node down.
    let mut phase = vec![usize::MAX; n];
    for id in (0..n).rev() {
        if !computed(id) {
            continue;
        }
        let need = if groupable(id) { below[id] } else { phase[id] };
        for child in dag.nodes[id].children() {
            let child = child as usize;
            // An EMA is computed at its own level, whatever reads it.
            if !groupable(child) {
                phase[child] = phase[child].min(need);
            }
        }
    }
    let levels = (0..n).filter(|&id| groupable(id)).map(|id| below[id]).max().unwrap_or(0);
    let mut order = Vec::with_capacity(n);
    let mut group = Vec::with_capacity(n);
    for level in 1..=levels {
        for id in (0..n).filter(|&id| computed(id) && !groupable(id) && phase[id] == level) {
            order.push(id);
            group.push(1);
        }
        let emas: Vec<usize> = (0..n).filter(|&id| groupable(id) && below[id] == level).collect();
        for members in emas.chunks(EMA_GROUP) {
            group.push(members.len());
            group.extend(members.iter().skip(1).map(|_| 0));
            order.extend(members);
        }
    }
    for id in (0..n).filter(|&id| computed(id) && !groupable(id) && phase[id] == usize::MAX) {
        order.push(id);
        group.push(1);
    }
    (order, group)
}

/// The widest vector instruction set of this CPU (AVX-512, AVX2 or the x86-64 baseline), detected once.
static ARCH: LazyLock<pulp::Arch> = LazyLock::new(pulp::Arch::new);

/// One part's evaluation, run by `ARCH.dispatch` in the copy compiled for this CPU's instruction set.
struct Run<'a> {
    schedule: &'a Schedule,
    columns: &'a [&'a [f64]],
    rows: usize,
    out: &'a mut [f64],
}

impl pulp::WithSimd for Run<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        self.schedule.run_blocks(self.columns, self.rows, self.out);
    }
}

/// The rows `start..start + len` of an operand.
#[inline(always)]
fn block_rows<'a>(
    operand: Operand,
    columns: &[&'a [f64]],
    buffers: &'a [Vec<f64>],
    start: usize,
    len: usize,
) -> Src<'a> {
    match operand {
        Operand::Column(i) => Src::Slice(&columns[i][start..start + len]),
        Operand::Scalar(v) => Src::Scalar(v),
        Operand::Buffer(b) => Src::Slice(&buffers[b][..len]),
    }
}

/// A rough per-row cost of each program evaluated alone, used only to cut a batch into parts of similar work.
pub(crate) fn costs(programs: &[Program]) -> Vec<usize> {
    let cost = |code: &Code| match *code {
        Code::Feature(_) | Code::Const(_) => 0,
        Code::Tanh => 8,
        Code::Ema { .. } => 4,
        Code::Rolling { stat: Stat::Mean | Stat::Min | Stat::Max, window, .. } => 1 + window / 2,
        Code::Rolling { window, .. } => 2 + window,
        _ => 1,
    };
    programs.iter().map(|p| 1 + p.code.iter().map(|ins| cost(&ins.code)).sum::<usize>()).collect()
}
