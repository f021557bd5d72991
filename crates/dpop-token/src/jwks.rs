//! JWK sets (RFC 7517 §5): the authorization server's token signing keys.

use std::fmt;
use std::str::FromStr;

use dpop_core::json::{self, JsonError, Limits};
use dpop_core::{Algorithm, DpopError, PublicKey};
use serde_json::Value;

/// Most keys a set may hold; real sets have one to a handful.
pub const MAX_JWKS_KEYS: usize = 100;

/// Largest JWK set document accepted, in bytes.
pub const MAX_JWKS_LEN: usize = 256 * 1024;

const JWKS_LIMITS: Limits = Limits { max_depth: 8, max_members: 64, max_elements: MAX_JWKS_KEYS };

/// A set of public signature verification keys, parsed from `{"keys":[...]}`.
///
/// Parsing is strict about the document (duplicate member names anywhere, oversize, a key
/// with private members: the whole set is refused, since an authorization server publishing
/// private keys makes every token forgeable) and lenient about individual keys, as RFC 7517 §5
/// asks: a key that is not for signatures (`use` other than `sig`, `key_ops` without
/// `verify`), has an algorithm this library does not verify, or does not parse is skipped with
/// a warning. Keys are found by `kid`.
#[derive(Clone, Default)]
pub struct JwkSet {
    keys: Vec<SigningKey>,
}

#[derive(Clone)]
struct SigningKey {
    kid: Option<String>,
    /// The JWK's `alg`, if it restricts the key to one algorithm (RFC 7517 §4.4).
    alg: Option<Algorithm>,
    key: PublicKey,
}

impl SigningKey {
    fn fits(&self, alg: Algorithm) -> bool {
        self.alg.is_none_or(|only| only == alg) && self.key.fits(alg)
    }
}

/// The key for a token, or why there is none.
pub(crate) enum Selection<'a> {
    /// Verify with this key.
    Key(&'a PublicKey),
    /// No key has the token's `kid` (or the set is empty): refetching may help.
    Unknown,
    /// The token has no `kid` and the set has several keys.
    NoKid,
    /// The key named by `kid` cannot verify the token's `alg`.
    Unfit,
}

impl JwkSet {
    /// Parses a JWK set document.
    ///
    /// # Errors
    ///
    /// The document is not strict JSON, has no `keys` array, is larger than [`MAX_JWKS_LEN`]
    /// or has more than [`MAX_JWKS_KEYS`] keys, or a key has private members.
    pub fn from_json(json: &str) -> Result<Self, JwksError> {
        Self::from_slice(json.as_bytes())
    }

    /// Parses a JWK set document given as bytes (an HTTP response body).
    ///
    /// # Errors
    ///
    /// As [`from_json`](Self::from_json).
    pub fn from_slice(json: &[u8]) -> Result<Self, JwksError> {
        if json.len() > MAX_JWKS_LEN {
            return Err(JwksError("JWK set too large"));
        }
        let document = json::parse_value_object(json, JWKS_LIMITS).map_err(|error| match error {
            JsonError::DuplicateMember => JwksError("duplicate member name in JWK set"),
            JsonError::TooManyMembers | JsonError::TooDeep | JsonError::TooManyElements => {
                JwksError("JWK set too large or too deeply nested")
            }
            _ => JwksError("JWK set is not a JSON object"),
        })?;
        let Some(Value::Array(entries)) = document.get("keys") else {
            return Err(JwksError("JWK set has no keys array"));
        };
        let mut keys = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            if let Some(key) = parse_key(index, entry)? {
                keys.push(key);
            }
        }
        Ok(Self { keys })
    }

    /// The number of usable signing keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no usable signing key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids of the usable keys (keys without `kid` are not listed).
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(|key| key.kid.as_deref())
    }

    /// Chooses the key for a token with header `kid` and `alg`.
    pub(crate) fn select(&self, kid: Option<&str>, alg: Algorithm) -> Selection<'_> {
        let fitting = |key: &&SigningKey| key.fits(alg);
        match kid {
            Some(kid) => {
                let mut named = self.keys.iter().filter(|key| key.kid.as_deref() == Some(kid)).peekable();
                if named.peek().is_none() {
                    return Selection::Unknown;
                }
                named.find(fitting).map_or(Selection::Unfit, |key| Selection::Key(&key.key))
            }
            None => match self.keys.as_slice() {
                [] => Selection::Unknown,
                [only] if only.fits(alg) => Selection::Key(&only.key),
                [_] => Selection::Unfit,
                _ => Selection::NoKid,
            },
        }
    }
}

/// Reads one entry of `keys`: `Ok(None)` skips it.
fn parse_key(index: usize, entry: &Value) -> Result<Option<SigningKey>, JwksError> {
    let Value::Object(members) = entry else {
        tracing::warn!(index, "JWK set entry skipped: not an object");
        return Ok(None);
    };
    let jwk_text = serde_json::to_string(entry).map_err(|_| JwksError("unreadable JWK"))?;
    let key = match PublicKey::from_jwk(&jwk_text) {
        Ok((key, _thumbprint)) => key,
        Err(DpopError::PrivateKey) => {
            tracing::error!(index, "JWK set refused: it contains private key material");
            return Err(JwksError("JWK set contains a private or symmetric key"));
        }
        Err(error) => {
            tracing::warn!(index, %error, "JWK set entry skipped: not a usable public key");
            return Ok(None);
        }
    };
    let kid = match members.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => {
            tracing::warn!(index, "JWK set entry skipped: kid is not a string");
            return Ok(None);
        }
    };
    match members.get("use") {
        None => {}
        Some(Value::String(usage)) if usage == "sig" => {}
        Some(_) => {
            tracing::debug!(index, kid = kid.as_deref(), "JWK set entry skipped: not a signature key");
            return Ok(None);
        }
    }
    match members.get("key_ops") {
        None => {}
        Some(Value::Array(ops)) if ops.iter().any(|op| op.as_str() == Some("verify")) => {}
        Some(_) => {
            tracing::debug!(index, kid = kid.as_deref(), "JWK set entry skipped: key_ops lacks verify");
            return Ok(None);
        }
    }
    let alg = match members.get("alg") {
        None => None,
        Some(Value::String(name)) => match Algorithm::from_name(name) {
            Some(alg) => Some(alg),
            None => {
                tracing::warn!(index, kid = kid.as_deref(), alg = %name, "JWK set entry skipped: unsupported alg");
                return Ok(None);
            }
        },
        Some(_) => {
            tracing::warn!(index, kid = kid.as_deref(), "JWK set entry skipped: alg is not a string");
            return Ok(None);
        }
    };
    if alg.is_some_and(|alg| !key.fits(alg)) {
        tracing::warn!(index, kid = kid.as_deref(), "JWK set entry skipped: key does not fit its alg");
        return Ok(None);
    }
    Ok(Some(SigningKey { kid, alg, key }))
}

impl FromStr for JwkSet {
    type Err = JwksError;

    fn from_str(json: &str) -> Result<Self, JwksError> {
        Self::from_json(json)
    }
}

impl fmt::Debug for JwkSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<(Option<&str>, &PublicKey)> =
            self.keys.iter().map(|key| (key.kid.as_deref(), &key.key)).collect();
        f.debug_struct("JwkSet").field("keys", &keys).finish()
    }
}

/// Why a JWK set document was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JwksError(&'static str);

impl JwksError {
    /// The reason, a fixed text.
    #[must_use]
    pub const fn reason(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JWK set: {}", self.0)
    }
}

impl std::error::Error for JwksError {}

#[cfg(test)]
mod tests {
    use dpop_core::DpopKey;
    use serde_json::json;

    use super::*;

    fn jwk(kid: &str) -> Value {
        let key = DpopKey::generate().unwrap();
        let mut jwk = key.public_jwk();
        jwk["kid"] = json!(kid);
        jwk
    }

    #[test]
    fn keys_by_kid_and_skipping() {
        let mut enc = jwk("enc");
        enc["use"] = json!("enc");
        let mut ops = jwk("ops");
        ops["key_ops"] = json!(["sign"]);
        let mut hs = jwk("hs");
        hs["alg"] = json!("HS256");
        let mut rs = jwk("rs");
        rs["alg"] = json!("RS256");
        let bad = json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA", "kid": "bad"});
        let mut sig = jwk("sig");
        sig["use"] = json!("sig");
        sig["alg"] = json!("ES256");
        let doc = json!({"keys": [jwk("a"), enc, ops, hs, rs, bad, 17, sig]});
        let set = JwkSet::from_json(&doc.to_string()).unwrap();
        assert_eq!(set.kids().collect::<Vec<_>>(), ["a", "sig"]);
        assert!(matches!(set.select(Some("a"), Algorithm::ES256), Selection::Key(_)));
        assert!(matches!(set.select(Some("a"), Algorithm::RS256), Selection::Unfit));
        assert!(matches!(set.select(Some("enc"), Algorithm::ES256), Selection::Unknown));
        assert!(matches!(set.select(None, Algorithm::ES256), Selection::NoKid));
    }

    #[test]
    fn single_key_without_kid() {
        let key = DpopKey::generate().unwrap();
        let set = JwkSet::from_json(&json!({"keys": [key.public_jwk()]}).to_string()).unwrap();
        assert!(matches!(set.select(None, Algorithm::ES256), Selection::Key(_)));
        assert!(matches!(set.select(Some("x"), Algorithm::ES256), Selection::Unknown));
    }

    #[test]
    fn refuses_private_keys_and_bad_documents() {
        let key = DpopKey::generate().unwrap();
        let private = json!({"keys": [jwk("a"), key.private_jwk().unwrap()]}).to_string();
        assert_eq!(JwkSet::from_json(&private).unwrap_err().reason(), "JWK set contains a private or symmetric key");
        let oct = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}).to_string();
        assert!(JwkSet::from_json(&oct).is_err());
        assert!(JwkSet::from_json("{}").is_err());
        assert!(JwkSet::from_json("not json").is_err());
        assert!(JwkSet::from_json(r#"{"keys":[],"keys":[]}"#).is_err());
        let many: Vec<Value> = (0..=MAX_JWKS_KEYS).map(|_| json!({})).collect();
        assert!(JwkSet::from_json(&json!({ "keys": many }).to_string()).is_err());
        let big = format!(r#"{{"keys":[],"pad":"{}"}}"#, "a".repeat(MAX_JWKS_LEN));
        assert_eq!(JwkSet::from_json(&big).unwrap_err().reason(), "JWK set too large");
    }
}
