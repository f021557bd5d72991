//! Strict JSON for token headers, claims, JWK sets and introspection responses.
//!
//! `serde_json::from_slice::<Value>` keeps the last of two members with the same name, so a
//! token carrying `"aud":"a","aud":"b"` could mean one thing to the authorization server and
//! another here (RFC 7515 §5.2, RFC 7519 §4 let a parser reject it; a security library must).
//! This parser builds the same [`Value`] but fails on a repeated member name at any depth, and
//! bounds nesting depth and the size of every object and array.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// How large a JSON document may be, beyond its byte length (checked by the caller).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Objects and arrays nested deeper than this are refused (the top-level object is 1).
    pub(crate) max_depth: usize,
    /// Most members one object may have.
    pub(crate) max_members: usize,
    /// Most elements one array may have.
    pub(crate) max_elements: usize,
}

impl Limits {
    /// JOSE headers and claims: real tokens nest 3 levels and have a few dozen members.
    pub(crate) const TOKEN: Self = Self { max_depth: 16, max_members: 256, max_elements: 1024 };
}

/// Why a document was refused. Never carries input bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// Not JSON, or not an object at the top level.
    Malformed,
    /// A member name appears twice in one object.
    Duplicate,
    /// Nesting, member or element limits exceeded.
    TooComplex,
}

/// Parses `bytes` as one JSON object, strictly.
pub(crate) fn parse_object(bytes: &[u8], limits: Limits) -> Result<Map<String, Value>, JsonError> {
    let failure = Cell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let seed = StrictValue { depth: 1, limits, failure: &failure };
    let parsed = de::Deserializer::deserialize_map(&mut deserializer, ObjectOnly(seed))
        .and_then(|map| deserializer.end().map(|()| map));
    parsed.map_err(|_| failure.get().unwrap_or(JsonError::Malformed))
}

/// Records the first precise failure and returns an error that unwinds serde.
fn fail<E: de::Error>(failure: &Cell<Option<JsonError>>, error: JsonError) -> E {
    if failure.get().is_none() {
        failure.set(Some(error));
    }
    E::custom("rejected")
}

/// The top level must be an object.
struct ObjectOnly<'f>(StrictValue<'f>);

impl<'de> Visitor<'de> for ObjectOnly<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.object(map)
    }
}

/// Deserializes any JSON value at nesting level `depth`.
#[derive(Clone, Copy)]
struct StrictValue<'f> {
    depth: usize,
    limits: Limits,
    failure: &'f Cell<Option<JsonError>>,
}

impl StrictValue<'_> {
    fn nested<E: de::Error>(self) -> Result<Self, E> {
        if self.depth >= self.limits.max_depth {
            return Err(fail(self.failure, JsonError::TooComplex));
        }
        Ok(Self { depth: self.depth + 1, ..self })
    }

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Map<String, Value>, A::Error> {
        let mut object = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if object.len() >= self.limits.max_members {
                return Err(fail(self.failure, JsonError::TooComplex));
            }
            if object.contains_key(&name) {
                return Err(fail(self.failure, JsonError::Duplicate));
            }
            let value = map.next_value_seed(self.nested()?)?;
            object.insert(name, value);
        }
        Ok(object)
    }
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity; serde_json refuses out-of-range literals itself.
        Number::from_f64(v).map(Value::Number).ok_or_else(|| fail(self.failure, JsonError::Malformed))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let element = self.nested()?;
        let mut elements = Vec::new();
        while let Some(value) = seq.next_element_seed(element)? {
            if elements.len() >= self.limits.max_elements {
                return Err(fail(self.failure, JsonError::TooComplex));
            }
            elements.push(value);
        }
        Ok(Value::Array(elements))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        self.object(map).map(Value::Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Map<String, Value>, JsonError> {
        parse_object(text.as_bytes(), Limits::TOKEN)
    }

    #[test]
    fn parses_like_serde_json() {
        let text = r#"{"a":1,"b":[true,null,-2,1.5,"x\u00e9"],"c":{"d":{"e":"f"}},"g":18446744073709551615}"#;
        let strict = parse(text).unwrap();
        let lax: Map<String, Value> = serde_json::from_str(text).unwrap();
        assert_eq!(strict, lax);
    }

    #[test]
    fn rejects_duplicates_at_any_depth() {
        assert_eq!(parse(r#"{"a":1,"a":1}"#), Err(JsonError::Duplicate));
        assert_eq!(parse(r#"{"a":{"b":1,"b":2}}"#), Err(JsonError::Duplicate));
        assert_eq!(parse(r#"{"a":[{"b":1},{"c":1,"c":1}]}"#), Err(JsonError::Duplicate));
        // Escapes do not hide a duplicate: both names decode to "a".
        assert_eq!(parse(r#"{"a":1,"\u0061":2}"#), Err(JsonError::Duplicate));
    }

    #[test]
    fn bounds_depth_members_and_elements() {
        let deep = format!("{}1{}", r#"{"a":"#.repeat(16), "}".repeat(16));
        assert_eq!(parse(&deep), Err(JsonError::TooComplex));
        let ok = format!("{}1{}", r#"{"a":"#.repeat(15), "}".repeat(15));
        assert!(parse(&ok).is_ok());
        let deep_array = format!(r#"{{"a":{}1{}}}"#, "[".repeat(20), "]".repeat(20));
        assert_eq!(parse(&deep_array), Err(JsonError::TooComplex));

        let members: Vec<String> = (0..257).map(|i| format!(r#""m{i}":0"#)).collect();
        assert_eq!(parse(&format!("{{{}}}", members.join(","))), Err(JsonError::TooComplex));
        let elements = vec!["0"; 1025].join(",");
        assert_eq!(parse(&format!(r#"{{"a":[{elements}]}}"#)), Err(JsonError::TooComplex));
    }

    #[test]
    fn rejects_non_objects_and_trailing_data() {
        for text in ["[]", "1", "\"a\"", "null", "{} {}", "{", "{\"a\":}", ""] {
            assert_eq!(parse(text), Err(JsonError::Malformed), "{text}");
        }
    }
}
