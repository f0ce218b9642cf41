//! Parameter tables: one declaration per parameter set gives its struct, defaults, bounds, validation and JSON Schema.
//!
//! [`param_table!`] is the pattern of `apex-sim`'s `dsg!`, for every other parameter set (the trading rule, the
//! backtest's cost model): each row names a field, its type, its default, its [`Bounds`] and its doc, and the macro
//! generates the struct, its `Default`, its `PARAMS` table (what Python and the committed JSON Schema read) and
//! `out_of_bounds`, the check every `validate` starts from.

use std::fmt::Write as _;

/// The values a parameter may take: an interval of the real line, each end open or closed (infinite = unbounded).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub lo: f64,
    pub hi: f64,
    pub lo_open: bool,
    pub hi_open: bool,
}

impl Bounds {
    /// `[lo, hi]`.
    #[must_use]
    pub const fn closed(lo: f64, hi: f64) -> Bounds {
        Bounds { lo, hi, lo_open: false, hi_open: false }
    }
    /// `(lo, hi)`.
    #[must_use]
    pub const fn open(lo: f64, hi: f64) -> Bounds {
        Bounds { lo, hi, lo_open: true, hi_open: true }
    }
    /// `[lo, hi)`.
    #[must_use]
    pub const fn closed_open(lo: f64, hi: f64) -> Bounds {
        Bounds { lo, hi, lo_open: false, hi_open: true }
    }
    /// `(lo, hi]`.
    #[must_use]
    pub const fn open_closed(lo: f64, hi: f64) -> Bounds {
        Bounds { lo, hi, lo_open: true, hi_open: false }
    }
    /// `[lo, inf)`.
    #[must_use]
    pub const fn at_least(lo: f64) -> Bounds {
        Bounds { lo, hi: f64::INFINITY, lo_open: false, hi_open: true }
    }
    /// `(lo, inf)`.
    #[must_use]
    pub const fn above(lo: f64) -> Bounds {
        Bounds { lo, hi: f64::INFINITY, lo_open: true, hi_open: true }
    }

    /// Whether `value` is finite and inside.
    #[must_use]
    pub fn contains(&self, value: f64) -> bool {
        let above_lo = if self.lo_open { value > self.lo } else { value >= self.lo };
        let below_hi = if self.hi_open { value < self.hi } else { value <= self.hi };
        value.is_finite() && above_lo && below_hi
    }

    /// What a value must be, as an error says it: `must be positive`, `must be >= 1`, `must be in [0, 0.1)`.
    #[must_use]
    pub fn describe(&self) -> String {
        if self.hi == f64::INFINITY {
            return match (self.lo, self.lo_open) {
                (0.0, true) => "must be positive".to_owned(),
                (lo, true) => format!("must exceed {lo}"),
                (lo, false) => format!("must be >= {lo}"),
            };
        }
        let mut text = String::from("must be in ");
        let _ = write!(
            text,
            "{}{}, {}{}",
            if self.lo_open { '(' } else { '[' },
            self.lo,
            self.hi,
            if self.hi_open { ')' } else { ']' }
        );
        text
    }

    /// The JSON Schema keywords of the interval (`minimum`/`exclusiveMinimum`, `maximum`/`exclusiveMaximum`).
    #[must_use]
    pub fn schema_keywords(&self) -> Vec<(&'static str, f64)> {
        let mut out = Vec::new();
        if self.lo.is_finite() {
            out.push((if self.lo_open { "exclusiveMinimum" } else { "minimum" }, self.lo));
        }
        if self.hi.is_finite() {
            out.push((if self.hi_open { "exclusiveMaximum" } else { "maximum" }, self.hi));
        }
        out
    }
}

/// One row of a parameter table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub default: f64,
    pub bounds: Bounds,
    /// A count (an unsigned integer field), not a real number.
    pub integer: bool,
    pub doc: &'static str,
}

/// The field types a parameter table holds: real numbers and counts.
pub trait ParamValue: Copy {
    /// Whether the type is a count.
    const INTEGER: bool;
    /// The value as the table compares and reports it.
    fn as_f64(self) -> f64;
}

impl ParamValue for f64 {
    const INTEGER: bool = false;
    fn as_f64(self) -> f64 {
        self
    }
}

macro_rules! count_param_value {
    ($($ty:ty),*) => {$(
        impl ParamValue for $ty {
            const INTEGER: bool = true;
            #[allow(clippy::cast_precision_loss)] // counts in a parameter table are far below 2^53
            fn as_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}
count_param_value!(usize, i64, u64);

/// The first `(spec, value)` whose value lies outside its bounds.
#[must_use]
pub fn first_out_of_bounds(specs: &'static [ParamSpec], values: &[f64]) -> Option<(&'static ParamSpec, f64)> {
    specs.iter().zip(values).find(|(spec, value)| !spec.bounds.contains(**value)).map(|(spec, value)| (spec, *value))
}

/// The JSON Schema (draft 2020-12) of a flat JSON object of these parameters: each a number (an integer for
/// counts) with its bounds, default and doc; absent keys keep their defaults, unknown keys are refused.
#[must_use]
pub fn json_schema(id: &str, title: &str, description: &str, specs: &[ParamSpec]) -> serde_json::Value {
    let properties: serde_json::Map<String, serde_json::Value> = specs
        .iter()
        .map(|spec| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            // a count's default is a small whole number
            let default =
                if spec.integer { serde_json::json!(spec.default as u64) } else { serde_json::json!(spec.default) };
            let mut property = serde_json::json!({
                "type": if spec.integer { "integer" } else { "number" },
                "default": default,
                "description": spec.doc,
            });
            for (keyword, value) in spec.bounds.schema_keywords() {
                property[keyword] = serde_json::json!(value);
            }
            (spec.name.to_owned(), property)
        })
        .collect();
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": id,
        "title": title,
        "description": description,
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
    })
}

/// Asserts that `apexctl/schemas/{stem}.schema.json` holds `schema` (pretty JSON and a newline); with `APEX_BLESS`
/// set it first rewrites the file. For the test of each crate whose schema is generated from its definition.
///
/// # Panics
/// When the committed file differs; the message names the file and the command that regenerates it.
pub fn assert_schema_committed(stem: &str, schema: &serde_json::Value) {
    // The runtime variable, not env!(): a build cache shared by clones at other paths must not point elsewhere.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let crate_name = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
    let path = std::path::Path::new(&manifest_dir).join(format!("../../apexctl/schemas/{stem}.schema.json"));
    let generated = serde_json::to_string_pretty(schema).expect("a JSON value serializes") + "\n";
    if std::env::var_os("APEX_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("the schemas folder is writable");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "stale apexctl/schemas/{stem}.schema.json: rerun with APEX_BLESS=1 cargo test -p {crate_name}"
    );
}

/// Declares a parameter struct from a table of rows `field: type = default, bounds, "doc";`, then optional
/// `extra { field: type = default, "doc"; }` fields that are not scalar parameters (attributes allowed on both).
///
/// Generates the struct (attributes before `struct` apply), `Default`, `PARAMS` (the scalar rows, in order),
/// `values()` and `out_of_bounds()` (the first scalar outside its bounds, with the bounds' description).
#[macro_export]
macro_rules! param_table {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $default:expr, $bounds:expr, $doc:literal; )*
        }
        $( extra { $( $(#[$xmeta:meta])* $xfield:ident : $xty:ty = $xdefault:expr, $xdoc:literal; )* } )?
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( #[doc = $doc] $(#[$fmeta])* pub $field: $ty, )*
            $( $( #[doc = $xdoc] $(#[$xmeta])* pub $xfield: $xty, )* )?
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $( $field: $default, )* $( $( $xfield: $xdefault, )* )? }
            }
        }

        impl $name {
            /// Names, defaults, bounds and docs of the scalar parameters, in declaration order.
            pub const PARAMS: &'static [$crate::params::ParamSpec] = &[
                $( $crate::params::ParamSpec {
                    name: stringify!($field),
                    default: $default as f64,
                    bounds: $bounds,
                    integer: <$ty as $crate::params::ParamValue>::INTEGER,
                    doc: $doc,
                }, )*
            ];

            /// The scalar parameters' values, in `PARAMS` order.
            #[must_use]
            pub fn values(&self) -> Vec<f64> {
                vec![ $( $crate::params::ParamValue::as_f64(self.$field), )* ]
            }

            /// The first scalar parameter outside its bounds: its name, value and what it must be.
            #[must_use]
            pub fn out_of_bounds(&self) -> Option<(&'static str, f64, String)> {
                $crate::params::first_out_of_bounds(Self::PARAMS, &self.values())
                    .map(|(spec, value)| (spec.name, value, spec.bounds.describe()))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_say_the_interval() {
        assert_eq!(Bounds::above(0.0).describe(), "must be positive");
        assert_eq!(Bounds::above(1.0).describe(), "must exceed 1");
        assert_eq!(Bounds::at_least(1.0).describe(), "must be >= 1");
        assert_eq!(Bounds::closed(0.0, 1.0).describe(), "must be in [0, 1]");
        assert_eq!(Bounds::closed_open(0.0, 0.1).describe(), "must be in [0, 0.1)");
        assert_eq!(Bounds::open(0.0, 10_000.0).describe(), "must be in (0, 10000)");
        assert_eq!(Bounds::open_closed(0.0, 168.0).describe(), "must be in (0, 168]");
    }

    #[test]
    fn containment_respects_open_ends_and_rejects_non_finite() {
        let b = Bounds::closed_open(0.0, 0.1);
        assert!(b.contains(0.0) && b.contains(0.099) && !b.contains(0.1) && !b.contains(-1e-12));
        assert!(!Bounds::above(0.0).contains(0.0));
        assert!(!Bounds::at_least(0.0).contains(f64::INFINITY) && !Bounds::at_least(0.0).contains(f64::NAN));
    }

    proptest::proptest! {
        #[test]
        fn contains_matches_the_plain_definition(lo in -10.0f64..10.0, w in 0.0f64..10.0, v in -30.0f64..30.0,
                                                 lo_open: bool, hi_open: bool) {
            let b = Bounds { lo, hi: lo + w, lo_open, hi_open };
            let plain = (if lo_open { v > lo } else { v >= lo }) && (if hi_open { v < lo + w } else { v <= lo + w });
            proptest::prop_assert_eq!(b.contains(v), plain);
        }
    }
}
