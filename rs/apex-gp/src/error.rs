//! The error type of apex-gp: every way a tree document or the data handed to an evaluator can be unusable.

/// Why a tree was rejected or could not be evaluated. Tree errors carry the node path (`root.args[1].args[0]`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GpError {
    /// The text is not JSON.
    #[error("GP tree: not valid JSON: {0}")]
    Json(String),
    /// The top-level document is wrong: schema name, version, missing or extra fields.
    #[error("GP tree: {0}")]
    Document(String),
    /// A node is not one of the node shapes (op/feature/const/bool/window).
    #[error("GP tree at {path}: {message}")]
    Node { path: String, message: String },
    /// An `op` name that is not a primitive.
    #[error("GP tree at {path}: unknown primitive {name:?} (known: {known})")]
    UnknownPrimitive { path: String, name: String, known: String },
    /// A primitive with the wrong number of arguments.
    #[error("GP tree at {path}: {op} takes {expected} argument(s), found {found}")]
    Arity { path: String, op: &'static str, expected: usize, found: usize },
    /// A node of the wrong type where another was expected.
    #[error("GP tree at {path}: expected {expected}, found {found}")]
    Type { path: String, expected: &'static str, found: String },
    /// A feature the data does not have.
    #[error("GP tree at {path}: unknown feature {name:?} (the data has: {available})")]
    UnknownFeature { path: String, name: String, available: String },
    /// A feature the tree uses that its `features` list does not declare.
    #[error("GP tree at {path}: feature {name:?} is used but not listed in \"features\"")]
    UndeclaredFeature { path: String, name: String },
    /// Nesting deeper than the limit.
    #[error("GP tree too deep at {path}: depth {depth} exceeds the limit {limit}")]
    TooDeep { path: String, depth: usize, limit: usize },
    /// More nodes than the limit.
    #[error("GP tree too large: more than {limit} nodes")]
    TooManyNodes { limit: usize },
    /// Columns that do not match the feature names or each other.
    #[error("GP data: {0}")]
    Shape(String),
    /// An error in one tree of a list, with its index.
    #[error("trees[{index}]: {source}")]
    InTree { index: usize, source: Box<GpError> },
}
