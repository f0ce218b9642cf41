//! The typed GP tree, the primitive table, the versioned JSON format, its JSON Schema and load-time validation.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::GpError;

/// Name of the JSON document schema.
pub const SCHEMA: &str = "apex.gp_tree";
/// Version of the JSON document this crate writes and reads.
pub const VERSION: u64 = 1;
/// The window lengths generators draw from (any 1..=[`MAX_WINDOW`] loads).
pub const WINDOWS: [u32; 7] = [1, 2, 3, 5, 10, 20, 50];
/// The largest window a tree may use: rolling ops cost O(k) per row.
pub const MAX_WINDOW: u32 = 1000;

/// The type of a node's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Type {
    /// A float per row.
    Float,
    /// A boolean per row (0.0/1.0 inside the evaluators).
    Bool,
    /// A window length fixed at compile time.
    Window,
}

impl Type {
    /// The name used in error messages and the DEAP set.
    pub fn name(self) -> &'static str {
        match self {
            Type::Float => "Float",
            Type::Bool => "Bool",
            Type::Window => "Window",
        }
    }
}

use Type::{Bool as B, Float as F, Window as W};

macro_rules! primitives {
    ($($variant:ident $name:literal ($($arg:ident),*) -> $ret:ident, $doc:literal;)*) => {
        /// A primitive (an inner node). Names are the contract shared by the JSON format, DEAP and Rust.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Op { $(#[doc = $doc] $variant,)* }

        impl Op {
            /// Every primitive, in table order.
            pub const ALL: &'static [Op] = &[$(Op::$variant,)*];

            /// The name in JSON and DEAP.
            pub fn name(self) -> &'static str {
                match self { $(Op::$variant => $name,)* }
            }

            /// Argument types.
            pub fn args(self) -> &'static [Type] {
                match self { $(Op::$variant => &[$($arg),*],)* }
            }

            /// Result type.
            pub fn ret(self) -> Type {
                match self { $(Op::$variant => $ret,)* }
            }

            /// One line describing the semantics (used in the JSON Schema).
            pub fn doc(self) -> &'static str {
                match self { $(Op::$variant => $doc,)* }
            }
        }
    };
}

primitives! {
    Add "add" (F, F) -> F, "a + b";
    Sub "sub" (F, F) -> F, "a - b";
    Mul "mul" (F, F) -> F, "a * b";
    Div "div" (F, F) -> F, "a / b, 0.0 when |b| < 1e-12";
    Neg "neg" (F) -> F, "-a";
    Abs "abs" (F) -> F, "|a|";
    Sign "sign" (F) -> F, "-1, 0 or 1 (NaN stays NaN)";
    Tanh "tanh" (F) -> F, "tanh(a)";
    Min "min" (F, F) -> F, "smaller of a and b, NaN if either is NaN";
    Max "max" (F, F) -> F, "larger of a and b, NaN if either is NaN";
    Gt "gt" (F, F) -> B, "a > b (false with NaN)";
    Lt "lt" (F, F) -> B, "a < b (false with NaN)";
    And "and" (B, B) -> B, "a and b";
    Or "or" (B, B) -> B, "a or b";
    Not "not" (B) -> B, "not a";
    IfThenElse "if_then_else" (B, F, F) -> F, "a if cond else b, per row";
    Lag "lag" (F, W) -> F, "x k rows ago, NaN for the first k rows";
    TsMean "ts_mean" (F, W) -> F, "mean of the last min(t+1, k) rows";
    TsStd "ts_std" (F, W) -> F, "population standard deviation of the last min(t+1, k) rows";
    TsZscore "ts_zscore" (F, W) -> F, "(x - ts_mean) / ts_std, 0.0 when ts_std < 1e-12";
    TsMin "ts_min" (F, W) -> F, "minimum of the last min(t+1, k) rows";
    TsMax "ts_max" (F, W) -> F, "maximum of the last min(t+1, k) rows";
    TsRank "ts_rank" (F, W) -> F, "(#below + (#equal - 1) / 2) / (m - 1) of x in the last m rows, 0.5 when m = 1";
    Ema "ema" (F, W) -> F, "exponential moving average, alpha = 2/(k+1), from the first non-NaN value";
}

impl Op {
    /// The primitive of this name.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.iter().copied().find(|op| op.name() == name)
    }
}

/// A node of a tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// A primitive applied to its arguments.
    Apply { op: Op, args: Vec<Node> },
    /// A feature column by name (Float).
    Feature(String),
    /// A finite constant (Float).
    Const(f64),
    /// A boolean constant (Bool).
    Bool(bool),
    /// A window length (Window).
    Window(u32),
}

impl Node {
    /// The type of the node's value.
    pub fn ty(&self) -> Type {
        match self {
            Node::Apply { op, .. } => op.ret(),
            Node::Feature(_) | Node::Const(_) => Type::Float,
            Node::Bool(_) => Type::Bool,
            Node::Window(_) => Type::Window,
        }
    }

    /// Height as DEAP counts it: a leaf is 0.
    pub fn height(&self) -> usize {
        match self {
            Node::Apply { args, .. } => 1 + args.iter().map(Node::height).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// Number of nodes, this one included.
    pub fn size(&self) -> usize {
        match self {
            Node::Apply { args, .. } => 1 + args.iter().map(Node::size).sum::<usize>(),
            _ => 1,
        }
    }

    /// The node as JSON.
    pub fn to_value(&self) -> Value {
        match self {
            Node::Apply { op, args } => {
                json!({"op": op.name(), "args": args.iter().map(Node::to_value).collect::<Vec<_>>()})
            }
            Node::Feature(name) => json!({"feature": name}),
            Node::Const(value) => json!({"const": value}),
            Node::Bool(value) => json!({"bool": value}),
            Node::Window(k) => json!({"window": k}),
        }
    }

    fn collect_features<'a>(&'a self, into: &mut BTreeSet<&'a str>) {
        match self {
            Node::Apply { args, .. } => args.iter().for_each(|a| a.collect_features(into)),
            Node::Feature(name) => {
                into.insert(name);
            }
            _ => {}
        }
    }
}

/// Size limits checked at load time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest height (DEAP's: a leaf is 0); 17 is DEAP's customary bloat limit.
    pub max_depth: usize,
    /// Largest node count.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_depth: 17, max_nodes: 4096 }
    }
}

/// A validated tree: well-typed, Float at the root, within the limits.
#[derive(Clone, Debug, PartialEq)]
pub struct Tree {
    root: Node,
    features: Vec<String>,
}

impl Tree {
    /// Validates `root` (types, arities, windows, constants, limits).
    ///
    /// # Errors
    /// `Type`, `Arity`, `Node`, `TooDeep`, `TooManyNodes` naming the offending node.
    pub fn new(root: Node, limits: &Limits) -> Result<Tree, GpError> {
        let mut count = 0;
        check_node(&root, &NodePath::Root, 0, limits, &mut count)?;
        expect_type(&root, Type::Float, &NodePath::Root)?;
        let mut used = BTreeSet::new();
        root.collect_features(&mut used);
        let features = used.into_iter().map(str::to_owned).collect();
        Ok(Tree { root, features })
    }

    /// Reads a JSON document: the quick way (`load`) when it can, else the checked way of [`Tree::from_value`],
    /// which accepts the same documents, builds the same trees and names what is wrong with the others.
    ///
    /// # Errors
    /// `Json` for text that is not JSON; otherwise as [`Tree::from_value`].
    pub fn from_json(text: &str, limits: &Limits) -> Result<Tree, GpError> {
        if let Some(tree) = crate::load::quick(text, limits) {
            return Ok(tree);
        }
        let doc: Value = serde_json::from_str(text).map_err(|e| GpError::Json(e.to_string()))?;
        Tree::from_value(&doc, limits)
    }

    /// Reads a parsed JSON document: checks schema, version, fields, every node, and that `features` lists every
    /// feature the tree uses.
    ///
    /// # Errors
    /// `Document` for the top level, then every node error of [`Tree::new`] plus `UnknownPrimitive` and
    /// `UndeclaredFeature`.
    pub fn from_value(doc: &Value, limits: &Limits) -> Result<Tree, GpError> {
        let object = doc.as_object().ok_or_else(|| GpError::Document("the document must be a JSON object".into()))?;
        let schema = object.get("schema").and_then(Value::as_str);
        if schema != Some(SCHEMA) {
            // The value as JSON text (`"apex.dsg"`), never Rust's debug form of it.
            let found = object.get("schema").map_or_else(|| "no \"schema\" field".to_owned(), Value::to_string);
            return Err(GpError::Document(format!("expected \"schema\": \"{SCHEMA}\", found {found}")));
        }
        match object.get("version").and_then(Value::as_u64) {
            Some(VERSION) => {}
            Some(v) => {
                return Err(GpError::Document(format!(
                    "version {v} is not supported (this build reads version {VERSION}); upgrade apexctl"
                )));
            }
            None => return Err(GpError::Document("\"version\" must be a whole number".into())),
        }
        if let Some(extra) = object.keys().find(|k| !["schema", "version", "features", "root"].contains(&k.as_str())) {
            return Err(GpError::Document(format!("unknown field {extra:?}")));
        }
        let declared: BTreeSet<&str> = match object.get("features") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str().ok_or_else(|| GpError::Document("\"features\" must be a list of strings".into()))
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(GpError::Document("\"features\" must be a list of strings".into())),
        };
        let root = object.get("root").ok_or_else(|| GpError::Document("missing \"root\"".into()))?;
        let mut count = 0;
        let root = parse_node(root, &NodePath::Root, 0, limits, &mut count)?;
        check_declared(&root, &NodePath::Root, &declared)?;
        Tree::new(root, limits)
    }

    /// The normalized document (`features` = the features used, sorted).
    pub fn to_value(&self) -> Value {
        json!({"schema": SCHEMA, "version": VERSION, "features": self.features, "root": self.root.to_value()})
    }

    /// The normalized document as compact JSON text.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }

    /// The root node.
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// The distinct features the tree uses, sorted.
    pub fn features(&self) -> &[String] {
        &self.features
    }
}

/// Where a node sits in its tree (`root.args[1].args[0]`), formatted only when an error names it: a tree is
/// loaded far more often than it fails, and a string per node would cost more than the checks themselves.
#[derive(Clone, Copy, Debug)]
pub(crate) enum NodePath<'a> {
    Root,
    Arg(&'a NodePath<'a>, usize),
}

impl NodePath<'_> {
    /// The path of argument `i` of this node.
    pub(crate) fn arg(&self, i: usize) -> NodePath<'_> {
        NodePath::Arg(self, i)
    }
}

impl std::fmt::Display for NodePath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodePath::Root => f.write_str("root"),
            NodePath::Arg(parent, i) => write!(f, "{parent}.args[{i}]"),
        }
    }
}

pub(crate) fn check_declared(node: &Node, path: &NodePath<'_>, declared: &BTreeSet<&str>) -> Result<(), GpError> {
    match node {
        Node::Feature(name) if !declared.contains(name.as_str()) => {
            Err(GpError::UndeclaredFeature { path: path.to_string(), name: name.clone() })
        }
        Node::Apply { args, .. } => {
            args.iter().enumerate().try_for_each(|(i, a)| check_declared(a, &path.arg(i), declared))
        }
        _ => Ok(()),
    }
}

fn expect_type(node: &Node, expected: Type, path: &NodePath<'_>) -> Result<(), GpError> {
    if node.ty() == expected {
        return Ok(());
    }
    let what = match node {
        Node::Apply { op, .. } => format!("{} ({})", node.ty().name(), op.name()),
        Node::Feature(name) => format!("Float (feature {name:?})"),
        Node::Const(v) => format!("Float (const {v})"),
        Node::Bool(v) => format!("Bool ({v})"),
        Node::Window(k) => format!("Window ({k})"),
    };
    Err(GpError::Type { path: path.to_string(), expected: expected.name(), found: what })
}

fn count_node(path: &NodePath<'_>, depth: usize, limits: &Limits, count: &mut usize) -> Result<(), GpError> {
    if depth > limits.max_depth {
        return Err(GpError::TooDeep { path: path.to_string(), depth, limit: limits.max_depth });
    }
    *count += 1;
    if *count > limits.max_nodes {
        return Err(GpError::TooManyNodes { limit: limits.max_nodes });
    }
    Ok(())
}

fn check_leaf(node: &Node, path: &NodePath<'_>) -> Result<(), GpError> {
    match node {
        Node::Const(v) if !v.is_finite() => {
            Err(GpError::Node { path: path.to_string(), message: format!("const must be finite, found {v}") })
        }
        Node::Window(k) if *k == 0 || *k > MAX_WINDOW => Err(GpError::Node {
            path: path.to_string(),
            message: format!("window must be a whole number in 1..={MAX_WINDOW}, found {k}"),
        }),
        Node::Feature(name) if name.is_empty() => {
            Err(GpError::Node { path: path.to_string(), message: "feature name is empty".into() })
        }
        _ => Ok(()),
    }
}

fn check_node(
    node: &Node,
    path: &NodePath<'_>,
    depth: usize,
    limits: &Limits,
    count: &mut usize,
) -> Result<(), GpError> {
    count_node(path, depth, limits, count)?;
    match node {
        Node::Apply { op, args } => {
            if args.len() != op.args().len() {
                return Err(GpError::Arity {
                    path: path.to_string(),
                    op: op.name(),
                    expected: op.args().len(),
                    found: args.len(),
                });
            }
            for (i, (arg, ty)) in args.iter().zip(op.args()).enumerate() {
                let child = path.arg(i);
                check_node(arg, &child, depth + 1, limits, count)?;
                expect_type(arg, *ty, &child)?;
            }
            Ok(())
        }
        leaf => check_leaf(leaf, path),
    }
}

fn node_error(path: &NodePath<'_>, message: impl Into<String>) -> GpError {
    GpError::Node { path: path.to_string(), message: message.into() }
}

/// Parses one node; checks shape, primitive names and limits (types are checked by [`Tree::new`]).
fn parse_node(
    value: &Value,
    path: &NodePath<'_>,
    depth: usize,
    limits: &Limits,
    count: &mut usize,
) -> Result<Node, GpError> {
    count_node(path, depth, limits, count)?;
    let object =
        value.as_object().ok_or_else(|| node_error(path, format!("a node must be an object, found {value}")))?;
    let kinds: Vec<&str> =
        ["op", "feature", "const", "bool", "window"].into_iter().filter(|k| object.contains_key(*k)).collect();
    let [kind] = kinds[..] else {
        return Err(node_error(
            path,
            format!("a node needs exactly one of \"op\", \"feature\", \"const\", \"bool\", \"window\"; found {value}"),
        ));
    };
    let allowed: &[&str] = if kind == "op" { &["op", "args"] } else { &[kind] };
    if let Some(extra) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(node_error(path, format!("unknown field {extra:?} in a {kind} node")));
    }
    let payload = &object[kind];
    let node = match kind {
        "op" => {
            let name = payload.as_str().ok_or_else(|| node_error(path, "\"op\" must be a string"))?;
            let op = Op::from_name(name).ok_or_else(|| GpError::UnknownPrimitive {
                path: path.to_string(),
                name: name.to_owned(),
                known: Op::ALL.iter().map(|op| op.name()).collect::<Vec<_>>().join(", "),
            })?;
            let args = match object.get("args") {
                Some(Value::Array(items)) => items,
                _ => return Err(node_error(path, format!("{name} needs \"args\": a list of nodes"))),
            };
            if args.len() != op.args().len() {
                return Err(GpError::Arity {
                    path: path.to_string(),
                    op: op.name(),
                    expected: op.args().len(),
                    found: args.len(),
                });
            }
            let args = args
                .iter()
                .enumerate()
                .map(|(i, a)| parse_node(a, &path.arg(i), depth + 1, limits, count))
                .collect::<Result<Vec<_>, _>>()?;
            Node::Apply { op, args }
        }
        "feature" => {
            Node::Feature(payload.as_str().ok_or_else(|| node_error(path, "\"feature\" must be a string"))?.to_owned())
        }
        "const" => Node::Const(payload.as_f64().ok_or_else(|| node_error(path, "\"const\" must be a number"))?),
        "bool" => Node::Bool(payload.as_bool().ok_or_else(|| node_error(path, "\"bool\" must be true or false"))?),
        _ => {
            let k = payload
                .as_u64()
                .and_then(|k| u32::try_from(k).ok())
                .ok_or_else(|| node_error(path, format!("\"window\" must be a whole number in 1..={MAX_WINDOW}")))?;
            Node::Window(k)
        }
    };
    check_leaf(&node, path)?;
    Ok(node)
}

/// JSON Schema (draft 2020-12) of the tree document, generated from the primitive table.
pub fn json_schema() -> Value {
    let ops: Vec<Value> = Op::ALL
        .iter()
        .map(|op| {
            let args: Vec<&str> = op.args().iter().map(|t| t.name()).collect();
            json!({
                "type": "object",
                "description": format!("{}({}) -> {}: {}", op.name(), args.join(", "), op.ret().name(), op.doc()),
                "required": ["op", "args"],
                "additionalProperties": false,
                "properties": {
                    "op": {"const": op.name()},
                    "args": {"type": "array", "minItems": args.len(), "maxItems": args.len(), "items": {"$ref": "#/$defs/node"}},
                },
            })
        })
        .collect();
    let leaf = |key: &str, schema: Value, doc: &str| {
        let mut properties = Map::new();
        properties.insert(key.to_owned(), schema);
        json!({"type": "object", "description": doc, "required": [key], "additionalProperties": false, "properties": properties})
    };
    let mut nodes = ops;
    nodes.push(leaf("feature", json!({"type": "string", "minLength": 1}), "a feature column by name (Float)"));
    nodes.push(leaf("const", json!({"type": "number"}), "a finite constant (Float)"));
    nodes.push(leaf("bool", json!({"type": "boolean"}), "a boolean constant (Bool)"));
    nodes.push(leaf(
        "window",
        json!({"type": "integer", "minimum": 1, "maximum": MAX_WINDOW}),
        "a window length in rows (Window), usually one of 1, 2, 3, 5, 10, 20, 50",
    ));
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://apexctl.dev/schemas/gp_tree.schema.json",
        "title": "GP strategy tree",
        "description": "A typed expression over feature columns; the root is Float and the signal is clip(value, -1, 1) with NaN -> 0. Types and limits (depth, node count, features present in the data) are checked on load.",
        "type": "object",
        "required": ["schema", "version", "features", "root"],
        "additionalProperties": false,
        "properties": {
            "schema": {"const": SCHEMA},
            "version": {"const": VERSION},
            "features": {"type": "array", "items": {"type": "string"}, "description": "every feature the tree uses"},
            "root": {"$ref": "#/$defs/node"},
        },
        "$defs": {"node": {"oneOf": nodes}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(root: Value) -> Result<Tree, GpError> {
        let doc = json!({"schema": SCHEMA, "version": 1, "features": ["x", "y"], "root": root});
        Tree::from_value(&doc, &Limits::default())
    }

    #[test]
    fn round_trips_and_normalizes_features() {
        let root = json!({"op": "if_then_else", "args": [
            {"op": "gt", "args": [{"feature": "y"}, {"const": 0.25}]},
            {"op": "ts_mean", "args": [{"feature": "x"}, {"window": 10}]},
            {"bool": true}]});
        assert!(matches!(load(root.clone()), Err(GpError::Type { ref path, .. }) if path == "root.args[2]"));
        let root = json!({"op": "if_then_else", "args": [
            {"op": "gt", "args": [{"feature": "y"}, {"const": 0.25}]},
            {"op": "ts_mean", "args": [{"feature": "y"}, {"window": 10}]},
            {"const": -1.5}]});
        let tree = load(root).unwrap();
        assert_eq!(tree.features(), ["y"]);
        let again = Tree::from_json(&tree.to_json(), &Limits::default()).unwrap();
        assert_eq!(again, tree);
    }

    #[test]
    fn rejects_bad_trees_with_the_node_path() {
        let unknown = load(json!({"op": "add", "args": [{"op": "pow", "args": []}, {"const": 1}]})).unwrap_err();
        assert!(unknown.to_string().contains("root.args[0]: unknown primitive \"pow\""), "{unknown}");
        let arity = load(json!({"op": "add", "args": [{"const": 1}]})).unwrap_err();
        assert_eq!(arity.to_string(), "GP tree at root: add takes 2 argument(s), found 1");
        let window = load(json!({"op": "lag", "args": [{"feature": "x"}, {"const": 2}]})).unwrap_err();
        assert!(window.to_string().contains("root.args[1]: expected Window, found Float"), "{window}");
        let root_bool = load(json!({"op": "gt", "args": [{"feature": "x"}, {"const": 2}]})).unwrap_err();
        assert!(root_bool.to_string().contains("at root: expected Float, found Bool (gt)"), "{root_bool}");
        let undeclared = load(json!({"feature": "z"})).unwrap_err();
        assert!(matches!(undeclared, GpError::UndeclaredFeature { .. }));
        let zero = load(json!({"op": "lag", "args": [{"feature": "x"}, {"window": 0}]})).unwrap_err();
        assert!(zero.to_string().contains("window must be"), "{zero}");
        let mut deep = json!({"feature": "x"});
        for _ in 0..18 {
            deep = json!({"op": "neg", "args": [deep]});
        }
        assert!(matches!(load(deep), Err(GpError::TooDeep { limit: 17, .. })));
        let newer = json!({"schema": SCHEMA, "version": 2, "features": [], "root": {"const": 1}});
        assert!(Tree::from_value(&newer, &Limits::default()).unwrap_err().to_string().contains("version 2"));
        let mut wide = json!({"feature": "x"});
        for _ in 0..10 {
            wide = json!({"op": "add", "args": [wide.clone(), wide]});
        }
        let limits = Limits { max_depth: 17, max_nodes: 1000 };
        let doc = json!({"schema": SCHEMA, "version": 1, "features": ["x"], "root": wide});
        assert_eq!(Tree::from_value(&doc, &limits).unwrap_err(), GpError::TooManyNodes { limit: 1000 });
    }

    #[test]
    fn committed_schema_is_current() {
        // The runtime variable, not env!(): a build cache shared by clones at other paths must not point elsewhere.
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        let path = std::path::Path::new(&manifest_dir).join("../../apexctl/schemas/gp_tree.schema.json");
        let committed = std::fs::read_to_string(&path).expect("apexctl/schemas/gp_tree.schema.json exists");
        let generated = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
        if std::env::var_os("APEX_BLESS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        assert!(committed == generated, "stale schema: rerun with APEX_BLESS=1 cargo test -p apex-gp");
    }
}
