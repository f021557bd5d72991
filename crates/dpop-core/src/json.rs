//! Strict JSON object reading for JOSE headers, claims and JWKs.
//!
//! `serde_json` keeps the last of duplicate members and its error messages quote the input.
//! RFC 7515 §4 / RFC 7519 §4 let a parser reject duplicate member names, and a security
//! library must: two `htu` members would let the signer and the verifier disagree. This module
//! rejects duplicates, bounds the member count, and reports failures as [`DpopError`] values
//! whose descriptions never contain bytes from the request.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::error::DpopError;

/// The most members one JSON object in a proof may have. Real proofs have under ten.
pub(crate) const MAX_MEMBERS: usize = 32;

/// Where the precise rejection is kept while serde unwinds with an opaque error.
pub(crate) struct Rejection(Cell<Option<DpopError>>);

impl Rejection {
    fn new() -> Self {
        Self(Cell::new(None))
    }

    /// Records `error` and returns a serde error that aborts parsing.
    pub(crate) fn reject<E: de::Error>(&self, error: DpopError) -> E {
        // Keep the innermost (first) reason: outer layers only see the abort.
        let first = self.0.take().unwrap_or(error);
        self.0.set(Some(first));
        E::custom("rejected")
    }

    fn into_error(self, fallback: DpopError) -> DpopError {
        self.0.into_inner().unwrap_or(fallback)
    }
}

/// A JSON object with a fixed set of known members.
pub(crate) trait JsonObject<'de>: Default {
    /// Reads the value of the member `name`. Unknown names must be skipped with [`skip`].
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A, rejection: &Rejection) -> Result<(), A::Error>;
}

/// Parses `bytes` as one JSON object of type `T`, strictly. `what` names the object in errors.
pub(crate) fn parse_object<'de, T: JsonObject<'de>>(bytes: &'de [u8], what: &'static str) -> Result<T, DpopError> {
    let rejection = Rejection::new();
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = ObjectSeed::<T>::new(&rejection, what)
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    parsed.map_err(|_| rejection.into_error(DpopError::MalformedProof(what)))
}

/// Deserializes a nested object member (for example the `jwk` header parameter).
pub(crate) fn nested_object<'de, T: JsonObject<'de>, A: MapAccess<'de>>(
    map: &mut A,
    rejection: &Rejection,
    what: &'static str,
) -> Result<T, A::Error> {
    map.next_value_seed(ObjectSeed::<T>::new(rejection, what))
}

/// Skips the value of an unknown member, refusing nesting deeper than [`MAX_DEPTH`].
pub(crate) fn skip<'de, A: MapAccess<'de>>(map: &mut A, rejection: &Rejection) -> Result<(), A::Error> {
    map.next_value_seed(Skip { depth: 1, rejection })
}

/// The deepest nesting of arrays and objects an unknown member may have: proofs need none.
pub(crate) const MAX_DEPTH: usize = 16;

/// Skips any JSON value, counting depth (serde_json's own skipping does not limit it).
#[derive(Clone, Copy)]
struct Skip<'r> {
    depth: usize,
    rejection: &'r Rejection,
}

impl Skip<'_> {
    fn deeper<E: de::Error>(self) -> Result<Self, E> {
        if self.depth > MAX_DEPTH {
            return Err(self.rejection.reject(DpopError::MalformedProof("JSON nesting depth")));
        }
        Ok(Self { depth: self.depth + 1, rejection: self.rejection })
    }
}

impl<'de> DeserializeSeed<'de> for Skip<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

/// Reads a string member; any other JSON type is [`DpopError::InvalidMember`].
pub(crate) fn string<'de, A: MapAccess<'de>>(
    map: &mut A,
    rejection: &Rejection,
    name: &'static str,
) -> Result<Cow<'de, str>, A::Error> {
    map.next_value::<JsonStr<'de>>()
        .map(|s| s.0)
        .map_err(|_: A::Error| rejection.reject(DpopError::InvalidMember(name)))
}

/// Reads a NumericDate (RFC 7519 §2): a JSON number of seconds; fractions are truncated.
pub(crate) fn numeric_date<'de, A: MapAccess<'de>>(
    map: &mut A,
    rejection: &Rejection,
    name: &'static str,
) -> Result<i64, A::Error> {
    map.next_value::<NumericDate>().map(|d| d.0).map_err(|_: A::Error| rejection.reject(DpopError::InvalidMember(name)))
}

struct ObjectSeed<'r, T> {
    rejection: &'r Rejection,
    what: &'static str,
    object: PhantomData<T>,
}

impl<'r, T> ObjectSeed<'r, T> {
    fn new(rejection: &'r Rejection, what: &'static str) -> Self {
        Self { rejection, what, object: PhantomData }
    }
}

impl<'de, T: JsonObject<'de>> DeserializeSeed<'de> for ObjectSeed<'_, T> {
    type Value = T;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: JsonObject<'de>> Visitor<'de> for ObjectSeed<'_, T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut object = T::default();
        // Member names seen so far, on the stack: a proof's objects are small and bounded.
        let mut seen: [Option<Cow<'de, str>>; MAX_MEMBERS] = std::array::from_fn(|_| None);
        let mut count = 0;
        while let Some(JsonStr(name)) = map.next_key::<JsonStr<'de>>()? {
            if count == MAX_MEMBERS {
                return Err(self.rejection.reject(DpopError::TooManyMembers(self.what)));
            }
            if seen.iter().take(count).flatten().any(|earlier| *earlier == name) {
                return Err(self.rejection.reject(DpopError::DuplicateMember(self.what)));
            }
            object.member(&name, &mut map, self.rejection)?;
            if let Some(slot) = seen.get_mut(count) {
                *slot = Some(name);
            }
            count += 1;
        }
        Ok(object)
    }
}

/// A JSON string, borrowed from the input when it has no escapes.
struct JsonStr<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for JsonStr<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = JsonStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

/// Seconds since the epoch; rejects strings, booleans, non-finite and out-of-range numbers.
struct NumericDate(i64);

impl<'de> de::Deserialize<'de> for NumericDate {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DateVisitor;
        impl Visitor<'_> for DateVisitor {
            type Value = NumericDate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a NumericDate")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumericDate, E> {
                Ok(NumericDate(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumericDate, E> {
                i64::try_from(v).map(NumericDate).map_err(|_| E::custom("out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumericDate, E> {
                // i64 holds every second of the next 292 billion years; larger values are bogus.
                const LIMIT: f64 = 9.0e18;
                if v.is_finite() && v.abs() < LIMIT {
                    #[allow(clippy::cast_possible_truncation)] // in range, checked above
                    Ok(NumericDate(v.trunc() as i64))
                } else {
                    Err(E::custom("out of range"))
                }
            }
        }
        deserializer.deserialize_any(DateVisitor)
    }
}
