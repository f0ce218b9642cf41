//! The quick way to read a tree document: typed deserialization straight into nodes, with no JSON value in between.
//!
//! It accepts only documents that the checked way ([`Tree::from_value`]) accepts, and it builds the same tree from
//! them. On anything else it returns `None` and the caller reads the document the checked way, which names the
//! problem. Such cases are a syntax error, a key that is missing, repeated or unknown, and a value of the wrong type.
//! Evolution loads tens of thousands of trees a generation and almost never a bad one. So reading a rare document
//! twice is worth a load that builds no map per node and copies no string it can borrow.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

use crate::tree::{Limits, Node, NodePath, Op, SCHEMA, Tree, VERSION, check_declared};

/// The tree of `text` when the quick way can read it; `None` when the checked way must (it may still be valid).
pub(crate) fn quick(text: &str, limits: &Limits) -> Option<Tree> {
    let Document { features, root } = serde_json::from_str(text).ok()?;
    let declared: BTreeSet<&str> = features.iter().map(|Text(name)| name.as_ref()).collect();
    check_declared(&root, &NodePath::Root, &declared).ok()?;
    Tree::new(root, limits).ok()
}

/// The fields of a document the checked way reads after checking `schema` and `version`.
struct Document<'a> {
    features: Vec<Text<'a>>,
    root: Node,
}

/// A JSON string: borrowed from the text, or unescaped into a copy when it holds escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(text.to_owned())))
    }
}

/// Any reason to leave the document to the checked way; what it is does not matter, the checked way names it.
fn step_aside<E: de::Error>() -> E {
    E::custom("left to the checked way")
}

/// Stores `value` in an empty `slot`; a key given twice steps aside (the checked way keeps the last one).
fn fill<T, E: de::Error>(slot: &mut Option<T>, value: T) -> Result<(), E> {
    match slot.replace(value) {
        None => Ok(()),
        Some(_) => Err(step_aside()),
    }
}

impl<'de> Deserialize<'de> for Document<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(DocumentVisitor)
    }
}

struct DocumentVisitor;

impl<'de> Visitor<'de> for DocumentVisitor {
    type Value = Document<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a GP tree document")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document<'de>, A::Error> {
        let (mut schema, mut version, mut features, mut root) = (None, None, None, None);
        while let Some(Text(key)) = map.next_key()? {
            match key.as_ref() {
                "schema" => fill(&mut schema, map.next_value::<Text>()?.0)?,
                "version" => fill(&mut version, map.next_value::<u64>()?)?,
                "features" => fill(&mut features, map.next_value::<Vec<Text>>()?)?,
                "root" => fill(&mut root, map.next_value::<Parsed>()?.0)?,
                _ => return Err(step_aside()),
            }
        }
        match (schema.as_deref(), version, features, root) {
            (Some(SCHEMA), Some(VERSION), Some(features), Some(root)) => Ok(Document { features, root }),
            _ => Err(step_aside()),
        }
    }
}

/// A node read from its object: exactly the keys of one node shape, each holding a value of its type.
struct Parsed(Node);

impl<'de> Deserialize<'de> for Parsed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Parsed;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a GP tree node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parsed, A::Error> {
        let (mut op, mut args, mut feature, mut constant, mut boolean, mut window) =
            (None, None, None, None, None, None);
        while let Some(Text(key)) = map.next_key()? {
            match key.as_ref() {
                "op" => fill(&mut op, map.next_value::<Text>()?.0)?,
                "args" => fill(&mut args, map.next_value::<Vec<Parsed>>()?)?,
                "feature" => fill(&mut feature, map.next_value::<Text>()?.0)?,
                "const" => fill(&mut constant, map.next_value::<f64>()?)?,
                "bool" => fill(&mut boolean, map.next_value::<bool>()?)?,
                "window" => fill(&mut window, map.next_value::<u64>()?)?,
                _ => return Err(step_aside()),
            }
        }
        let node = match (op, args, feature, constant, boolean, window) {
            (Some(name), Some(args), None, None, None, None) => {
                let op = Op::from_name(&name).ok_or_else(step_aside)?;
                Node::Apply { op, args: args.into_iter().map(|Parsed(node)| node).collect() }
            }
            (None, None, Some(name), None, None, None) => Node::Feature(name.into_owned()),
            (None, None, None, Some(value), None, None) => Node::Const(value),
            (None, None, None, None, Some(value), None) => Node::Bool(value),
            (None, None, None, None, None, Some(k)) => Node::Window(u32::try_from(k).map_err(|_| step_aside())?),
            _ => return Err(step_aside()),
        };
        Ok(Parsed(node))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::test_runner::{RngAlgorithm, TestRng};
    use serde_json::{Value, json};

    use super::*;
    use crate::{MAX_WINDOW, Type, WINDOWS};

    /// Documents and their damage drawn from one seed that proptest picks.
    struct Draws(TestRng);

    impl Draws {
        fn new(seed: u64) -> Draws {
            let mut key = [0; 32];
            key[..8].copy_from_slice(&seed.to_le_bytes());
            Draws(TestRng::from_seed(RngAlgorithm::ChaCha, &key))
        }

        fn next(&mut self) -> u64 {
            self.0.next_u64()
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    /// The last two are written with escapes (serde_json escapes only the quote, Python's `json` the accent too).
    const NAMES: [&str; 4] = ["x", "y", "z\u{e9}", "w\"q"];

    /// A random well-typed node of `ty` as JSON, its features drawn from `names`.
    fn node(rng: &mut Draws, names: &[&str], ty: Type, depth: usize) -> Value {
        match ty {
            Type::Window => json!({"window": rng.pick(&WINDOWS)}),
            Type::Bool if depth >= 3 || rng.below(3) == 0 => json!({"bool": rng.below(2) == 0}),
            Type::Float if depth >= 3 || rng.below(3) == 0 => match rng.below(3) {
                0 => json!({"const": *rng.pick(&[0.5, -0.0, 1e-310, -3.0, 7.25e12])}),
                _ => json!({"feature": rng.pick(names)}),
            },
            _ => {
                let ops: Vec<Op> = Op::ALL.iter().copied().filter(|op| op.ret() == ty).collect();
                let op = *rng.pick(&ops);
                let args: Vec<Value> = op.args().iter().map(|t| node(rng, names, *t, depth + 1)).collect();
                json!({"op": op.name(), "args": args})
            }
        }
    }

    /// Every object in the document, as a path of keys and indices from the top.
    fn objects(value: &Value, path: &mut Vec<Value>, into: &mut Vec<Vec<Value>>) {
        match value {
            Value::Object(map) => {
                into.push(path.clone());
                for (key, child) in map {
                    path.push(json!(key));
                    objects(child, path, into);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    path.push(json!(i));
                    objects(child, path, into);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    fn at<'a>(value: &'a mut Value, path: &[Value]) -> &'a mut Value {
        path.iter().fold(value, |v, step| match step {
            Value::String(key) => &mut v[key.as_str()],
            index => &mut v[index.as_u64().unwrap() as usize],
        })
    }

    /// A value for `key` that is right or nearly right: the kind of damage a check has to notice.
    fn plausible(rng: &mut Draws, key: &str) -> Value {
        let choices = match key {
            "op" => vec![json!("add"), json!("neg"), json!("ts_mean"), json!("nope")],
            "args" => vec![json!([]), json!([{"feature": "x"}]), json!([{"feature": "x"}, {"window": 5}])],
            "feature" => vec![json!("x"), json!("y"), json!("unknown"), json!("")],
            "const" => vec![json!(1.5), json!(1), json!(-0.0), json!(1e308)],
            "bool" => vec![json!(true), json!(false)],
            "window" => vec![json!(5), json!(0), json!(MAX_WINDOW + 1), json!(4294967301u64)],
            "schema" => vec![json!(SCHEMA), json!("apex.dsg"), json!("APEX.gp_tree")],
            "version" => vec![json!(VERSION), json!(VERSION + 1), json!(0)],
            "features" => vec![json!(["x"]), json!(NAMES), json!([])],
            "root" => vec![json!({"feature": "x"}), json!({"bool": true})],
            _ => vec![json!(1)],
        };
        rng.pick(&choices).clone()
    }

    /// Damages one object of the document (the top one a third of the time): a key removed, a key set to a
    /// plausible or an arbitrary value, or a key of another node shape added.
    fn damage(rng: &mut Draws, doc: &mut Value) {
        let keys = ["op", "args", "feature", "const", "bool", "window", "schema", "version", "features", "root", "x"];
        let values = [
            json!(null),
            json!(-1),
            json!(1.0),
            json!(1e300),
            json!("x"),
            json!(true),
            json!(["x"]),
            json!({}),
            json!({"window": 0}),
        ];
        let mut found = Vec::new();
        objects(doc, &mut Vec::new(), &mut found);
        let path = if rng.below(3) == 0 { Vec::new() } else { rng.pick(&found).clone() };
        let Value::Object(map) = at(doc, &path) else { unreachable!("objects() lists objects") };
        let key = (*rng.pick(&keys)).to_owned();
        match rng.below(5) {
            // A node that keeps its own keys and carries one of another shape.
            4 => {
                let other = *rng.pick(&["op", "args", "feature", "const", "bool", "window"]);
                let value = plausible(rng, other);
                map.insert(other.to_owned(), value);
            }
            0 if !map.is_empty() => {
                let present: Vec<String> = map.keys().cloned().collect();
                map.remove(rng.pick(&present));
            }
            1 => {
                map.insert(key, rng.pick(&values).clone());
            }
            _ => {
                let value = plausible(rng, &key);
                map.insert(key, value);
            }
        }
    }

    /// Text-level damage the JSON value cannot express: a key repeated, a string with escapes, a trailing byte.
    fn garble(rng: &mut Draws, text: String) -> String {
        match rng.below(6) {
            0 => text.replacen("{\"op\":", "{\"op\":\"neg\",\"op\":", 1),
            1 => text.replacen("\"feature\":\"x\"", "\"feature\":\"\\u0078\"", 1),
            2 => text.replacen("\"op\"", "\"\\u006fp\"", 1),
            3 => text + " x",
            4 => text.replacen("\"version\":1", "\"version\":1.0", 1),
            _ => text,
        }
    }

    fn checked(text: &str, limits: &Limits) -> Result<Tree, crate::GpError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| crate::GpError::Json(e.to_string()))?;
        Tree::from_value(&doc, limits)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// What the quick way reads, the checked way reads the same; and `from_json` answers as the checked way
        /// does, error messages included, on valid and damaged documents alike.
        #[test]
        fn quick_reads_only_what_the_checked_way_reads(seed in any::<u64>(), depth in 0usize..8, nodes in 1usize..40) {
            let mut rng = Draws::new(seed);
            let root = node(&mut rng, &NAMES, Type::Float, 0);
            let mut features = NAMES.to_vec();
            if rng.below(8) == 0 {
                features.remove(rng.below(features.len()));
            }
            let mut doc = json!({"schema": SCHEMA, "version": VERSION, "features": features, "root": root});
            for _ in 0..rng.below(3) {
                damage(&mut rng, &mut doc);
            }
            let text = garble(&mut rng, doc.to_string());
            let limits = if rng.below(4) == 0 { Limits { max_depth: depth, max_nodes: nodes } } else { Limits::default() };
            let expected = checked(&text, &limits);
            if let Some(tree) = quick(&text, &limits) {
                prop_assert_eq!(Ok(tree), expected.clone());
            }
            prop_assert_eq!(Tree::from_json(&text, &limits), expected);
        }
    }

    #[test]
    fn valid_documents_are_read_the_quick_way() {
        let text = r#"{"schema":"apex.gp_tree","version":1,"features":["x"],
            "root":{"op":"ts_mean","args":[{"op":"add","args":[{"feature":"x"},{"const":2}]},{"window":5}]}}"#;
        let tree = quick(text, &Limits::default()).expect("the quick way reads a plain document");
        assert_eq!(Ok(tree), checked(text, &Limits::default()));
    }

    #[test]
    fn a_node_with_a_key_of_another_shape_is_left_to_the_checked_way() {
        let keys = ["op", "args", "feature", "const", "bool", "window"];
        // Each node shape where its type fits, so only the extra key is wrong.
        let shapes = [
            ("op", r#"{"op":"neg","args":[{"feature":"x"}],EXTRA}"#),
            ("feature", r#"{"feature":"x",EXTRA}"#),
            ("const", r#"{"const":1.5,EXTRA}"#),
            ("bool", r#"{"op":"if_then_else","args":[{"bool":true,EXTRA},{"feature":"x"},{"feature":"x"}]}"#),
            ("window", r#"{"op":"lag","args":[{"feature":"x"},{"window":5,EXTRA}]}"#),
        ];
        let mut rng = Draws::new(1);
        for (own, template) in shapes {
            for key in keys.into_iter().filter(|k| *k != own && !(own == "op" && *k == "args")) {
                for _ in 0..4 {
                    let extra = format!("{}:{}", json!(key), plausible(&mut rng, key));
                    let root = template.replace("EXTRA", &extra);
                    let text = format!(r#"{{"schema":"apex.gp_tree","version":1,"features":["x"],"root":{root}}}"#);
                    assert!(quick(&text, &Limits::default()).is_none(), "{text}");
                    assert_eq!(Tree::from_json(&text, &Limits::default()), checked(&text, &Limits::default()));
                }
            }
        }
    }

    #[test]
    fn escaped_strings_are_read_the_quick_way() {
        let text = r#"{"schema":"apex.gp_tree","version":1,"features":["z\u00e9"],"root":{"f\u0065ature":"z\u00e9"}}"#;
        let tree = quick(text, &Limits::default()).expect("escapes are unescaped, not left to the checked way");
        assert_eq!(tree.features(), ["z\u{e9}"]);
        assert_eq!(Ok(tree), checked(text, &Limits::default()));
    }

    #[test]
    fn what_the_quick_way_leaves_is_still_read() {
        // A null beside an op, an array for a node: the checked way decides each.
        let null = r#"{"schema":"apex.gp_tree","version":1,"features":["x"],
            "root":{"op":"neg","args":[{"feature":"x"}],"const":null}}"#;
        assert!(quick(null, &Limits::default()).is_none());
        assert!(Tree::from_json(null, &Limits::default()).is_err());
        let array = r#"{"schema":"apex.gp_tree","version":1,"features":["x"],"root":["neg",[{"feature":"x"}]]}"#;
        assert!(quick(array, &Limits::default()).is_none());
        assert!(Tree::from_json(array, &Limits::default()).is_err());
    }
}
