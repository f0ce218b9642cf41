//! Serde helpers for how Bybit spells things: string enums that grow over time, integers sent as strings, nulls.

/// A string enum of the wire format: known values as variants, anything else kept verbatim in `Other`, so a value
/// Bybit adds tomorrow still parses and serializes back unchanged. Variants map to their exact wire spelling.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this crate does not know, kept as sent.
            Other(String),
        }

        impl $name {
            /// The exact wire spelling.
            #[must_use]
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )+
                    Self::Other(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $( $wire => Self::$variant, )+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                Ok(Self::from(&*text))
            }
        }
    };
}

pub(crate) use wire_enum;

/// An `i64` sent as a JSON string (`"1672364262444"`); a JSON number is accepted too. Written back as a string.
pub mod str_i64 {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::NumberOrString;

    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    /// # Errors
    /// A string that is not an integer, or a value of another JSON type.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        match NumberOrString::deserialize(deserializer)? {
            NumberOrString::Number(n) => Ok(n),
            NumberOrString::Text(text) => {
                text.parse().map_err(|_| serde::de::Error::custom(format_args!("'{text}' is not an integer")))
            }
        }
    }
}

/// An optional `i64` sent as a string, where Bybit writes `""` (or `null`) for "no value". `None` is written as `""`.
pub mod opt_str_i64 {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::NumberOrString;

    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(value: &Option<i64>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => serializer.collect_str(v),
            None => serializer.serialize_str(""),
        }
    }

    /// # Errors
    /// A non-empty string that is not an integer, or a value of another JSON type.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
        match Option::<NumberOrString>::deserialize(deserializer)? {
            None => Ok(None),
            Some(NumberOrString::Number(n)) => Ok(Some(n)),
            Some(NumberOrString::Text(text)) if text.is_empty() => Ok(None),
            Some(NumberOrString::Text(text)) => {
                text.parse().map(Some).map_err(|_| serde::de::Error::custom(format_args!("'{text}' is not an integer")))
            }
        }
    }
}

/// A string where some answers send `null` instead of `""`; reads `null` as `""`.
///
/// # Errors
/// A value that is neither a string nor null.
pub fn string_or_null<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(<Option<String> as serde::Deserialize>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Number(i64),
    Text(String),
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    wire_enum! {
        /// Test enum.
        pub enum Colour {
            Red = "Red",
            Unset = "",
        }
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Times {
        #[serde(with = "super::str_i64")]
        a: i64,
        #[serde(with = "super::opt_str_i64")]
        b: Option<i64>,
        #[serde(deserialize_with = "super::string_or_null")]
        c: String,
        d: Colour,
    }

    #[test]
    fn strings_numbers_and_nulls() {
        let t: Times = serde_json::from_str(r#"{"a":"17","b":"","c":null,"d":"Red"}"#).unwrap();
        assert_eq!(t, Times { a: 17, b: None, c: String::new(), d: Colour::Red });
        assert_eq!(serde_json::to_string(&t).unwrap(), r#"{"a":"17","b":"","c":"","d":"Red"}"#);
        let t: Times = serde_json::from_str(r#"{"a":18,"b":"-3","c":"x","d":"Blue"}"#).unwrap();
        assert_eq!((t.a, t.b, t.d.as_str()), (18, Some(-3), "Blue"));
        assert_eq!(t.d, Colour::Other("Blue".into()));
        assert_eq!(serde_json::to_string(&Colour::Unset).unwrap(), "\"\"");
        assert!(serde_json::from_str::<Times>(r#"{"a":"x1","b":"","c":"","d":""}"#).is_err());
        assert!(serde_json::from_str::<Times>(r#"{"a":"1","b":"2.5","c":"","d":""}"#).is_err());
    }
}
