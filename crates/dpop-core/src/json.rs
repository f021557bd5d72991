//! Strict JSON: the one reader for proofs, JWKs, access-token claims and introspection
//! responses, and the one NumericDate rule.
//!
//! `serde_json` keeps the last of duplicate members and its error messages quote the input.
//! RFC 7515 §4 / RFC 7519 §4 let a parser reject duplicate member names, and a security
//! library must: two `htu` members (or two `aud` claims) would let the signer and the verifier
//! disagree. Every object read here, by either reader, goes through one member loop, which
//! refuses a repeated member name and more members than [`Limits::max_members`]; every value
//! is refused deeper than [`Limits::max_depth`] and every array longer than
//! [`Limits::max_elements`]. Failures never carry bytes from the input.
//!
//! Two readers share those rules:
//!
//! - a typed streaming reader (crate-internal) for DPoP proofs and JWKs: it reads the known
//!   members of a fixed struct, borrows strings from the input, and builds no [`Value`] (the
//!   proof hot path);
//! - [`parse_value_object`], which builds a `serde_json` object for access-token claims, JWK
//!   sets and introspection responses.
//!
//! This module is public for dpop-token only; it is not part of the supported API.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::DpopError;

/// How large a JSON document may be, beyond its byte length (which the caller bounds first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The deepest level a value may sit at; the top-level object is level 1, its members'
    /// values level 2.
    pub max_depth: usize,
    /// Most members one object may have, at any level.
    pub max_members: usize,
    /// Most elements one array may have, at any level.
    pub max_elements: usize,
}

impl Limits {
    /// DPoP proof headers and claims, and JWKs: real ones have under ten members and nest no
    /// deeper than `jwk`. An unknown member may hold 16 levels of arrays or objects (level 2
    /// for the member down to 17, scalars at 18).
    pub const PROOF: Self = Self { max_depth: 18, max_members: 32, max_elements: 256 };

    /// Access-token headers and claims, and introspection responses: real ones nest 3 levels
    /// and have a few dozen members.
    pub const TOKEN: Self = Self { max_depth: 16, max_members: 256, max_elements: 1024 };
}

/// Why a JSON document was refused. Never carries input bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonError {
    /// Not JSON, not an object at the top level, or trailing data.
    Malformed,
    /// A member name appears twice in one object (compared after unescaping).
    DuplicateMember,
    /// An object has more than [`Limits::max_members`] members.
    TooManyMembers,
    /// A value sits deeper than [`Limits::max_depth`].
    TooDeep,
    /// An array has more than [`Limits::max_elements`] elements.
    TooManyElements,
}

impl JsonError {
    /// A fixed, human reason.
    #[must_use]
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Malformed => "not a JSON object",
            Self::DuplicateMember => "duplicate member name",
            Self::TooManyMembers => "too many members in an object",
            Self::TooDeep => "JSON nesting too deep",
            Self::TooManyElements => "too many elements in an array",
        }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for JsonError {}

// ---------------------------------------------------------------------------------------------
// NumericDate

/// The largest NumericDate accepted: 2^53 − 1 seconds (about 285 million years from 1970).
///
/// RFC 7519 §2 defines a NumericDate as a JSON number of seconds, possibly fractional, and
/// sets no range. The range chosen here is `0 ..= 2^53 − 1`, for every claim (a proof's `iat`,
/// a token's `exp`, `nbf` and `iat`, introspection answers):
///
/// - 2^53 − 1 is the largest integer I-JSON (RFC 7493 §2.2) says implementations agree on:
///   every whole second in range is exactly an `f64`, so `1700000000` and `1700000000.0` (or
///   `1.7e9`) always mean the same instant here, at the authorization server, and in a
///   JavaScript client; above it, integer and float spellings of one number could disagree;
/// - it fits both `u64` and `i64` without loss, so no caller can overflow converting it;
/// - negative dates (before 1970) are refused: no proof or token was issued then, and a
///   negative `exp` or `iat` is a bug or an attack on signed/unsigned conversions.
///
/// Fractions are truncated to whole seconds. A value written as a JSON string, a boolean, or a
/// number out of range (negative, ≥ 2^53, `1e300`) is not a NumericDate.
pub const MAX_NUMERIC_DATE: u64 = (1 << 53) - 1;

/// The rule for integers: in range or not.
const fn date_from_u64(seconds: u64) -> Option<u64> {
    if seconds <= MAX_NUMERIC_DATE { Some(seconds) } else { None }
}

/// The rule for negative integers (serde_json's `i64` case): never a NumericDate unless zero.
fn date_from_i64(seconds: i64) -> Option<u64> {
    u64::try_from(seconds).ok().and_then(date_from_u64)
}

/// The rule for fractional or exponent numbers: finite, not negative, below 2^53; truncated.
fn date_from_f64(seconds: f64) -> Option<u64> {
    // 2^53 is exactly an f64; every f64 below it truncates to at most MAX_NUMERIC_DATE.
    const LIMIT: f64 = 9_007_199_254_740_992.0;
    if seconds.is_finite() && (0.0..LIMIT).contains(&seconds) {
        // In range (checked above): the cast is exact after truncation.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = seconds.trunc() as u64;
        date_from_u64(whole)
    } else {
        None
    }
}

/// Reads a NumericDate (RFC 7519 §2) from a JSON number, whole seconds since the epoch; `None`
/// if it is out of range (see [`MAX_NUMERIC_DATE`]).
#[must_use]
pub fn numeric_date_from_number(number: &Number) -> Option<u64> {
    if let Some(seconds) = number.as_u64() {
        date_from_u64(seconds)
    } else if let Some(seconds) = number.as_i64() {
        date_from_i64(seconds)
    } else {
        number.as_f64().and_then(date_from_f64)
    }
}

/// Reads a NumericDate (RFC 7519 §2) from a JSON value: whole seconds since the epoch, or
/// `None` if the value is not a number or out of range (see [`MAX_NUMERIC_DATE`]).
#[must_use]
pub fn numeric_date(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => numeric_date_from_number(number),
        _ => None,
    }
}

/// A NumericDate read by the streaming reader, with the same rule as [`numeric_date`].
struct StreamedDate(u64);

impl<'de> de::Deserialize<'de> for StreamedDate {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DateVisitor;
        impl Visitor<'_> for DateVisitor {
            type Value = StreamedDate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a NumericDate")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StreamedDate, E> {
                date_from_i64(v).map(StreamedDate).ok_or_else(|| E::custom("out of range"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StreamedDate, E> {
                date_from_u64(v).map(StreamedDate).ok_or_else(|| E::custom("out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<StreamedDate, E> {
                date_from_f64(v).map(StreamedDate).ok_or_else(|| E::custom("out of range"))
            }
        }
        deserializer.deserialize_any(DateVisitor)
    }
}

// ---------------------------------------------------------------------------------------------
// The member rule, shared by both readers

/// One object being read: what it has read so far, and how to read one more value.
trait Members<'de> {
    /// Whether a member named `name` was read already.
    fn has(&self, name: &str) -> bool;
    /// Reads the value of the member `name`, which was not read before.
    fn read<A: MapAccess<'de>>(&mut self, name: Cow<'de, str>, map: &mut A) -> Result<(), A::Error>;
}

/// Reads every member of one object: the rule every object of every document goes through.
/// A repeated name (after unescaping: `"a"` and `"\u0061"` are one name) is
/// [`JsonError::DuplicateMember`]; more than `max_members` is [`JsonError::TooManyMembers`].
fn read_members<'de, A: MapAccess<'de>, M: Members<'de>>(
    map: &mut A,
    members: &mut M,
    max_members: usize,
    refuse: impl Fn(JsonError) -> A::Error,
) -> Result<(), A::Error> {
    let mut count = 0_usize;
    while let Some(JsonStr(name)) = map.next_key::<JsonStr<'de>>()? {
        if count >= max_members {
            return Err(refuse(JsonError::TooManyMembers));
        }
        if members.has(&name) {
            return Err(refuse(JsonError::DuplicateMember));
        }
        members.read(name, map)?;
        count += 1;
    }
    Ok(())
}

/// The level rule, shared by both readers: a value at `level` is refused beyond `max_depth`.
const fn check_depth(level: usize, limits: Limits) -> Result<(), JsonError> {
    if level > limits.max_depth { Err(JsonError::TooDeep) } else { Ok(()) }
}

/// Member names seen so far in one object of a proof, on the stack: proofs are small.
struct SeenNames<'de> {
    names: [Option<Cow<'de, str>>; Limits::PROOF.max_members],
    count: usize,
}

impl<'de> SeenNames<'de> {
    fn new() -> Self {
        Self { names: std::array::from_fn(|_| None), count: 0 }
    }

    fn has(&self, name: &str) -> bool {
        self.names.iter().take(self.count).flatten().any(|earlier| earlier == name)
    }

    fn add(&mut self, name: Cow<'de, str>) {
        // `read_members` stops at `max_members`, the array's length: the slot exists.
        if let Some(slot) = self.names.get_mut(self.count) {
            *slot = Some(name);
            self.count += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The typed streaming reader (proofs and JWKs; crate-internal)

/// The state of one typed parse: the first precise rejection, kept while serde unwinds with an
/// opaque error, and where the reader is (the level and name of the object being read).
pub(crate) struct Rejection {
    first: Cell<Option<DpopError>>,
    level: Cell<usize>,
    what: Cell<&'static str>,
}

impl Rejection {
    fn new(what: &'static str) -> Self {
        Self { first: Cell::new(None), level: Cell::new(1), what: Cell::new(what) }
    }

    /// Records `error` and returns a serde error that aborts parsing.
    pub(crate) fn reject<E: de::Error>(&self, error: DpopError) -> E {
        // Keep the innermost (first) reason: outer layers only see the abort.
        let first = self.first.take().unwrap_or(error);
        self.first.set(Some(first));
        E::custom("rejected")
    }

    /// Records a JSON structure failure in the object being read.
    fn refuse<E: de::Error>(&self, error: JsonError) -> E {
        let what = self.what.get();
        self.reject(match error {
            JsonError::DuplicateMember => DpopError::DuplicateMember(what),
            JsonError::TooManyMembers => DpopError::TooManyMembers(what),
            JsonError::TooDeep => DpopError::MalformedProof("JSON nesting depth"),
            JsonError::TooManyElements => DpopError::MalformedProof("JSON array size"),
            JsonError::Malformed => DpopError::MalformedProof(what),
        })
    }

    fn into_error(self, fallback: DpopError) -> DpopError {
        self.first.into_inner().unwrap_or(fallback)
    }
}

/// A JSON object with a fixed set of known members.
pub(crate) trait JsonObject<'de>: Default {
    /// Reads the value of the member `name`. Unknown names must be skipped with [`skip`].
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A, rejection: &Rejection) -> Result<(), A::Error>;
}

/// Parses `bytes` as one JSON object of type `T`, strictly, within [`Limits::PROOF`]. `what`
/// names the object in errors.
pub(crate) fn parse_object<'de, T: JsonObject<'de>>(bytes: &'de [u8], what: &'static str) -> Result<T, DpopError> {
    let rejection = Rejection::new(what);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = ObjectSeed::<T>::new(&rejection)
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
    let (level, outer) = (rejection.level.get(), rejection.what.get());
    let inner = level + 1;
    check_depth(inner, Limits::PROOF).map_err(|error| rejection.refuse::<A::Error>(error))?;
    rejection.level.set(inner);
    rejection.what.set(what);
    let object = map.next_value_seed(ObjectSeed::<T>::new(rejection));
    rejection.level.set(level);
    rejection.what.set(outer);
    object
}

/// Skips the value of an unknown member, applying the same rules (depth, member names,
/// sizes) to whatever it holds.
pub(crate) fn skip<'de, A: MapAccess<'de>>(map: &mut A, rejection: &Rejection) -> Result<(), A::Error> {
    map.next_value_seed(Skip { level: rejection.level.get() + 1, rejection })
}

/// Skips any JSON value at `level`.
#[derive(Clone, Copy)]
struct Skip<'r> {
    level: usize,
    rejection: &'r Rejection,
}

impl<'de> DeserializeSeed<'de> for Skip<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        check_depth(self.level, Limits::PROOF).map_err(|error| self.rejection.refuse::<D::Error>(error))?;
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

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let element = Skip { level: self.level + 1, ..self };
        let mut count = 0_usize;
        while seq.next_element_seed(element)?.is_some() {
            count += 1;
            if count > Limits::PROOF.max_elements {
                return Err(self.rejection.refuse(JsonError::TooManyElements));
            }
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut members = SkippedMembers { seen: SeenNames::new(), value: Skip { level: self.level + 1, ..self } };
        read_members(&mut map, &mut members, Limits::PROOF.max_members, |error| self.rejection.refuse(error))
    }
}

/// An object inside an unknown member: its names are checked, its values skipped.
struct SkippedMembers<'de, 'r> {
    seen: SeenNames<'de>,
    value: Skip<'r>,
}

impl<'de> Members<'de> for SkippedMembers<'de, '_> {
    fn has(&self, name: &str) -> bool {
        self.seen.has(name)
    }

    fn read<A: MapAccess<'de>>(&mut self, name: Cow<'de, str>, map: &mut A) -> Result<(), A::Error> {
        map.next_value_seed(self.value)?;
        self.seen.add(name);
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

/// Reads a NumericDate member by the one rule ([`MAX_NUMERIC_DATE`]); anything else is
/// [`DpopError::InvalidMember`].
pub(crate) fn numeric_date_member<'de, A: MapAccess<'de>>(
    map: &mut A,
    rejection: &Rejection,
    name: &'static str,
) -> Result<u64, A::Error> {
    map.next_value::<StreamedDate>()
        .map(|date| date.0)
        .map_err(|_: A::Error| rejection.reject(DpopError::InvalidMember(name)))
}

/// Reads one object of known members into `T`.
struct ObjectSeed<'r, T> {
    rejection: &'r Rejection,
    object: PhantomData<T>,
}

impl<'r, T> ObjectSeed<'r, T> {
    const fn new(rejection: &'r Rejection) -> Self {
        Self { rejection, object: PhantomData }
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
        let mut members = TypedMembers { object: T::default(), seen: SeenNames::new(), rejection: self.rejection };
        let rejection = self.rejection;
        read_members(&mut map, &mut members, Limits::PROOF.max_members, |error| rejection.refuse(error))?;
        Ok(members.object)
    }
}

/// An object of known members being read into `T`.
struct TypedMembers<'de, 'r, T> {
    object: T,
    seen: SeenNames<'de>,
    rejection: &'r Rejection,
}

impl<'de, T: JsonObject<'de>> Members<'de> for TypedMembers<'de, '_, T> {
    fn has(&self, name: &str) -> bool {
        self.seen.has(name)
    }

    fn read<A: MapAccess<'de>>(&mut self, name: Cow<'de, str>, map: &mut A) -> Result<(), A::Error> {
        self.object.member(&name, map, self.rejection)?;
        self.seen.add(name);
        Ok(())
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

// ---------------------------------------------------------------------------------------------
// The value reader (access tokens, JWK sets, introspection responses)

/// Parses `bytes` as one JSON object into a `serde_json` map, strictly: the same [`Value`] as
/// `serde_json::from_slice`, but a repeated member name at any depth, a value deeper than
/// `limits.max_depth`, an object or array larger than `limits` are refused.
///
/// # Errors
///
/// Why the document was refused; never any of its bytes.
pub fn parse_value_object(bytes: &[u8], limits: Limits) -> Result<Map<String, Value>, JsonError> {
    let failure = Cell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let top = StrictValue { level: 1, limits, failure: &failure };
    let parsed = de::Deserializer::deserialize_map(&mut deserializer, TopObject(top))
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
struct TopObject<'f>(StrictValue<'f>);

impl<'de> Visitor<'de> for TopObject<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.object(map)
    }
}

/// Deserializes any JSON value at `level`.
#[derive(Clone, Copy)]
struct StrictValue<'f> {
    level: usize,
    limits: Limits,
    failure: &'f Cell<Option<JsonError>>,
}

impl StrictValue<'_> {
    const fn child(self) -> Self {
        Self { level: self.level + 1, ..self }
    }

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Map<String, Value>, A::Error> {
        let mut members = ValueMembers { map: Map::new(), value: self.child() };
        read_members(&mut map, &mut members, self.limits.max_members, |error| fail(self.failure, error))?;
        Ok(members.map)
    }
}

/// An object being built as a `serde_json` map (which is its own record of names seen).
struct ValueMembers<'f> {
    map: Map<String, Value>,
    value: StrictValue<'f>,
}

impl<'de> Members<'de> for ValueMembers<'_> {
    fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    fn read<A: MapAccess<'de>>(&mut self, name: Cow<'de, str>, map: &mut A) -> Result<(), A::Error> {
        let value = map.next_value_seed(self.value)?;
        self.map.insert(name.into_owned(), value);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        check_depth(self.level, self.limits).map_err(|error| fail::<D::Error>(self.failure, error))?;
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
        let element = self.child();
        let mut elements = Vec::new();
        while let Some(value) = seq.next_element_seed(element)? {
            if elements.len() >= self.limits.max_elements {
                return Err(fail(self.failure, JsonError::TooManyElements));
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
    use crate::TokenClaims;
    use crate::proof::jws::parse_claims;

    fn value(text: &str) -> Result<Map<String, Value>, JsonError> {
        parse_value_object(text.as_bytes(), Limits::TOKEN)
    }

    /// What the proof reader says about claims `text`.
    fn proof(text: &str) -> Result<(), DpopError> {
        parse_claims(text.as_bytes()).map(|_| ())
    }

    #[test]
    fn parses_like_serde_json() {
        let text = r#"{"a":1,"b":[true,null,-2,1.5,"x\u00e9"],"c":{"d":{"e":"f"}},"g":18446744073709551615}"#;
        let strict = value(text).unwrap();
        let lax: Map<String, Value> = serde_json::from_str(text).unwrap();
        assert_eq!(strict, lax);
    }

    #[test]
    fn both_readers_reject_duplicates_at_any_depth() {
        for (text, proof_error) in [
            (r#"{"a":1,"a":1}"#, DpopError::DuplicateMember("claims")),
            (r#"{"a":{"b":1,"b":2}}"#, DpopError::DuplicateMember("claims")),
            (r#"{"a":[{"b":1},{"c":1,"c":1}]}"#, DpopError::DuplicateMember("claims")),
            // Escapes do not hide a duplicate: both names decode to "a".
            (r#"{"a":1,"\u0061":2}"#, DpopError::DuplicateMember("claims")),
            (r#"{"iat":1,"iat":2}"#, DpopError::DuplicateMember("claims")),
        ] {
            assert_eq!(value(text), Err(JsonError::DuplicateMember), "{text}");
            assert_eq!(proof(text), Err(proof_error), "{text}");
        }
        // The same names in different objects are not duplicates.
        let fine = r#"{"a":{"a":1},"b":[{"a":1},{"a":2}]}"#;
        assert!(value(fine).is_ok());
        assert_eq!(proof(fine), Ok(()));
    }

    #[test]
    fn both_readers_bound_members_at_any_depth() {
        let object = |n: usize| {
            let members: Vec<String> = (0..n).map(|i| format!(r#""m{i}":0"#)).collect();
            format!("{{{}}}", members.join(","))
        };
        assert!(value(&object(256)).is_ok());
        assert_eq!(value(&object(257)), Err(JsonError::TooManyMembers));
        assert_eq!(value(&format!(r#"{{"x":{}}}"#, object(257))), Err(JsonError::TooManyMembers));
        assert_eq!(proof(&object(32)), Ok(()));
        assert_eq!(proof(&object(33)), Err(DpopError::TooManyMembers("claims")));
        assert_eq!(proof(&format!(r#"{{"x":{}}}"#, object(33))), Err(DpopError::TooManyMembers("claims")));
    }

    #[test]
    fn both_readers_bound_depth_by_level() {
        // Objects nested `n` deep, the top one included, holding a scalar at level n + 1.
        let nested = |n: usize| format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n));
        assert!(value(&nested(15)).is_ok());
        assert_eq!(value(&nested(16)), Err(JsonError::TooDeep));
        let arrays = |n: usize| format!(r#"{{"a":{}1{}}}"#, "[".repeat(n), "]".repeat(n));
        assert!(value(&arrays(14)).is_ok());
        assert_eq!(value(&arrays(15)), Err(JsonError::TooDeep));
        assert_eq!(value(&arrays(10_000)), Err(JsonError::TooDeep));

        assert_eq!(proof(&nested(17)), Ok(()));
        assert_eq!(proof(&nested(18)), Err(DpopError::MalformedProof("JSON nesting depth")));
        assert_eq!(proof(&arrays(16)), Ok(()));
        assert_eq!(proof(&arrays(17)), Err(DpopError::MalformedProof("JSON nesting depth")));
    }

    #[test]
    fn both_readers_bound_elements() {
        let array = |n: usize| format!(r#"{{"a":[{}]}}"#, vec!["0"; n].join(","));
        assert!(value(&array(1024)).is_ok());
        assert_eq!(value(&array(1025)), Err(JsonError::TooManyElements));
        assert_eq!(proof(&array(256)), Ok(()));
        assert_eq!(proof(&array(257)), Err(DpopError::MalformedProof("JSON array size")));
    }

    #[test]
    fn rejects_non_objects_and_trailing_data() {
        for text in ["[]", "1", "\"a\"", "null", "{} {}", "{", "{\"a\":}", "", "{\"a\":1,}"] {
            assert_eq!(value(text), Err(JsonError::Malformed), "{text}");
            assert_eq!(proof(text), Err(DpopError::MalformedProof("claims")), "{text}");
        }
    }

    /// JSON number (and non-number) texts, and whether each is a NumericDate.
    const DATES: &[(&str, Option<u64>)] = &[
        ("0", Some(0)),
        ("-0", Some(0)),
        ("1.5", Some(1)),
        ("1.7e9", Some(1_700_000_000)),
        ("1700000000.999", Some(1_700_000_000)),
        ("9007199254740991", Some(MAX_NUMERIC_DATE)),
        ("9007199254740992", None),
        ("9007199254740993", None),
        ("9007199254740992.0", None),
        ("18446744073709551615", None),
        ("1e19", None),
        ("1e300", None),
        ("-1", None),
        ("-0.5", None),
        ("-1e300", None),
        ("\"1\"", None),
        ("true", None),
        ("null", None),
        ("[1]", None),
        ("{}", None),
    ];

    #[test]
    fn one_numeric_date_rule_for_proof_iat_and_token_exp() {
        for &(literal, expected) in DATES {
            // A proof's `iat`, streamed.
            let text = format!(r#"{{"iat":{literal}}}"#);
            match parse_claims(text.as_bytes()) {
                Ok(claims) => {
                    let iat = claims.iat.and_then(|iat| u64::try_from(iat).ok());
                    assert_eq!(iat, expected, "proof iat {literal}");
                }
                Err(error) => {
                    assert_eq!(error, DpopError::InvalidMember("iat"), "proof iat {literal}");
                    assert_eq!(expected, None, "proof iat {literal}");
                }
            }
            // A token's `exp`, from the value reader.
            let token = value(&format!(r#"{{"exp":{literal}}}"#)).unwrap();
            assert_eq!(token.get("exp").and_then(numeric_date), expected, "numeric_date {literal}");
            assert_eq!(TokenClaims::from_json(token).expires_at, expected, "expires_at {literal}");
        }
    }
}
