//! Access tokens: what a validated token says, and the trait that validates one.
//!
//! A DPoP proof alone proves possession of a key, not authorization: the resource server must
//! also validate the access token and check that it is bound to the proof's key (RFC 9449 §6,
//! §7). Validators live behind [`TokenValidator`] (JWT per RFC 9068, introspection per RFC 7662,
//! or your own); [`DpopGuard`](crate::DpopGuard) enforces binding, downgrade and scopes.

pub(crate) mod binding;
pub mod endpoint;
mod validator_fn;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Map, Value};

pub use validator_fn::{ValidatorFn, validator_fn};

/// The validated content of an access token.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct TokenClaims {
    /// `sub`.
    pub subject: Option<String>,
    /// `iss`.
    pub issuer: Option<String>,
    /// `aud`, one entry per audience.
    pub audience: Vec<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// The granted scopes (`scope`, space-separated, RFC 8693 §4.2 / RFC 9068 §2.2.3).
    pub scopes: Vec<String>,
    /// `exp`, seconds since the epoch; `None` when absent or not a NumericDate (RFC 7519 §2:
    /// a number of seconds, fractions truncated, from 0 to 2^53 − 1; a validator refuses a token
    /// whose `exp` is anything else).
    pub expires_at: Option<u64>,
    /// `cnf.jkt` (RFC 9449 §6): the thumbprint of the key the token is bound to.
    pub cnf_jkt: Option<String>,
    /// Every claim as received, for handlers that need more.
    pub raw: Map<String, Value>,
}

impl TokenClaims {
    /// Reads the registered claims out of a JSON claims object (a JWT payload or an
    /// introspection response); the rest stays in [`raw`](Self::raw).
    #[must_use]
    pub fn from_json(raw: Map<String, Value>) -> Self {
        let text = |name: &str| raw.get(name).and_then(Value::as_str).map(str::to_owned);
        let audience = match raw.get("aud") {
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        let scopes = raw
            .get("scope")
            .and_then(Value::as_str)
            .map(|scope| scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        let cnf_jkt = raw.get("cnf").and_then(|cnf| cnf.get("jkt")).and_then(Value::as_str).map(str::to_owned);
        Self {
            subject: text("sub"),
            issuer: text("iss"),
            audience,
            client_id: text("client_id"),
            scopes,
            expires_at: raw.get("exp").and_then(crate::json::numeric_date),
            cnf_jkt,
            raw,
        }
    }

    /// The claim set as your own type (see [`Authentication::claims_as`](crate::Authentication::claims_as)).
    ///
    /// # Errors
    ///
    /// The claims do not fit `T`.
    pub fn deserialize_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&Value::Object(self.raw.clone()))
    }

    /// Whether the token carries a confirmation (`cnf`) at all: a bound token, even when the
    /// binding is not one this library reads. Such a token is never accepted as Bearer.
    #[must_use]
    pub fn is_bound(&self) -> bool {
        self.cnf_jkt.is_some() || self.raw.contains_key("cnf")
    }

    /// Whether the token grants `scope`.
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|granted| granted == scope)
    }
}

/// Why a validator refused an access token: one variant per fixed reason.
///
/// [`as_str`](Self::as_str) is the reason's text, sent to the client inside the `invalid_token`
/// challenge (`error_description="Invalid access token: token expired"`); it never contains
/// the token. Application validators with a reason of their own use [`Other`](Self::Other).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InvalidToken {
    /// The token is not three base64url parts separated by dots (for introspection: empty). Text: `malformed token`.
    Malformed,
    /// The token is longer than the validator accepts. Text: `token too large`.
    TooLarge,
    /// The JWS header is not base64url-encoded JSON. Text: `malformed token header`.
    MalformedHeader,
    /// The JWS header has the same member name twice. Text: `duplicate member in token header`.
    DuplicateHeaderMember,
    /// The JWS header has more members, elements or nesting than the strict reader allows. Text: `token header too complex`.
    HeaderTooComplex,
    /// The payload is not base64url-encoded JSON. Text: `malformed claims`.
    MalformedClaims,
    /// The claims have the same member name twice, at any depth. Text: `duplicate claim member`.
    DuplicateClaim,
    /// The claims have more members, elements or nesting than the strict reader allows. Text: `claims too complex`.
    ClaimsTooComplex,
    /// The JWS header has no `alg`. Text: `missing alg`.
    MissingAlgorithm,
    /// The JWS header's `alg` is not a string. Text: `invalid alg`.
    InvalidAlgorithm,
    /// The JWS header's `alg` is `none`. Text: `alg none is not allowed`.
    AlgorithmNone,
    /// The JWS header's `alg` is an HMAC algorithm (`HS256`, …). Text: `symmetric alg is not allowed`.
    SymmetricAlgorithm,
    /// The JWS header's `alg` is unknown or outside the allow-list. Text: `alg not allowed`.
    AlgorithmNotAllowed,
    /// The JWS header has a `crit` parameter. Text: `unsupported critical header`.
    CriticalHeader,
    /// The JWS header has no `kid` and the authorization server has several keys. Text: `missing kid`.
    MissingKeyId,
    /// The JWS header's `kid` is not a string. Text: `invalid kid`.
    InvalidKeyId,
    /// No key of the authorization server has this `kid` (after a refetch, when allowed). Text: `unknown signing key`.
    UnknownSigningKey,
    /// The key named by `kid` (or the only key) cannot verify the header's `alg`. Text: `signing key does not fit alg`.
    KeyAlgorithmMismatch,
    /// The signature does not verify. Text: `invalid signature`.
    InvalidSignature,
    /// The JWS header has no `typ` and the validator requires one (RFC 9068 §4). Text: `missing typ`.
    MissingType,
    /// The JWS header's `typ` is not `at+jwt` (nor `jwt`, when not required). Text: `wrong token type`.
    WrongType,
    /// `iss` is absent. Text: `missing iss`.
    MissingIssuer,
    /// `iss` is not a string. Text: `invalid iss`.
    InvalidIssuer,
    /// `iss` is not the expected issuer. Text: `wrong issuer`.
    WrongIssuer,
    /// `iss` names none of the trusted authorization servers. Text: `unknown issuer`.
    UnknownIssuer,
    /// `aud` is absent. Text: `missing aud`.
    MissingAudience,
    /// `aud` is neither a string nor an array of strings. Text: `invalid aud`.
    InvalidAudience,
    /// `aud` does not name this resource. Text: `wrong audience`.
    WrongAudience,
    /// `exp` is absent and the validator requires it. Text: `missing exp`.
    MissingExpiry,
    /// `exp` is not a NumericDate. Text: `invalid exp`.
    InvalidExpiry,
    /// `exp` has passed (after the allowed leeway). Text: `token expired`.
    Expired,
    /// `nbf` is not a NumericDate. Text: `invalid nbf`.
    InvalidNotBefore,
    /// `nbf` is in the future (beyond the allowed leeway). Text: `token not yet valid`.
    NotYetValid,
    /// `iat` is not a NumericDate. Text: `invalid iat`.
    InvalidIssuedAt,
    /// `iat` is in the future (beyond the allowed leeway). Text: `token issued in the future`.
    IssuedInFuture,
    /// `sub` is not a string. Text: `invalid sub`.
    InvalidSubject,
    /// `client_id` is not a string. Text: `invalid client_id`.
    InvalidClientId,
    /// `scope` is not a string. Text: `invalid scope`.
    InvalidScope,
    /// `cnf` is not an object with a non-empty string `jkt`. Text: `invalid cnf`.
    InvalidConfirmation,
    /// `cnf` binds the token to something other than a DPoP key (an mTLS certificate, …). Text: `unsupported confirmation method`.
    UnsupportedConfirmation,
    /// The introspection endpoint answered `"active": false` (RFC 7662 §2.2). Text: `token is not active`.
    Inactive,
    /// The introspection answer has `cnf.jkt` but a `token_type` other than `DPoP`. Text: `bound token with token_type other than DPoP`.
    BoundTokenNotDpop,
    /// The introspection answer says `token_type` `DPoP` without `cnf.jkt`. Text: `DPoP token without cnf.jkt`.
    DpopTokenWithoutJkt,
    /// The introspection answer's `token_type` is not a string. Text: `invalid token_type`.
    InvalidTokenType,
    /// A reason of an application's own validator (a [`validator_fn`] or a [`TokenValidator`]
    /// implementation): a fixed text such as `"unknown token"`, sent to the client as it is, so
    /// it must never contain the token or other secrets.
    Other(&'static str),
}

impl InvalidToken {
    /// The reason as sent in `error_description` after `Invalid access token: `.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed token",
            Self::TooLarge => "token too large",
            Self::MalformedHeader => "malformed token header",
            Self::DuplicateHeaderMember => "duplicate member in token header",
            Self::HeaderTooComplex => "token header too complex",
            Self::MalformedClaims => "malformed claims",
            Self::DuplicateClaim => "duplicate claim member",
            Self::ClaimsTooComplex => "claims too complex",
            Self::MissingAlgorithm => "missing alg",
            Self::InvalidAlgorithm => "invalid alg",
            Self::AlgorithmNone => "alg none is not allowed",
            Self::SymmetricAlgorithm => "symmetric alg is not allowed",
            Self::AlgorithmNotAllowed => "alg not allowed",
            Self::CriticalHeader => "unsupported critical header",
            Self::MissingKeyId => "missing kid",
            Self::InvalidKeyId => "invalid kid",
            Self::UnknownSigningKey => "unknown signing key",
            Self::KeyAlgorithmMismatch => "signing key does not fit alg",
            Self::InvalidSignature => "invalid signature",
            Self::MissingType => "missing typ",
            Self::WrongType => "wrong token type",
            Self::MissingIssuer => "missing iss",
            Self::InvalidIssuer => "invalid iss",
            Self::WrongIssuer => "wrong issuer",
            Self::UnknownIssuer => "unknown issuer",
            Self::MissingAudience => "missing aud",
            Self::InvalidAudience => "invalid aud",
            Self::WrongAudience => "wrong audience",
            Self::MissingExpiry => "missing exp",
            Self::InvalidExpiry => "invalid exp",
            Self::Expired => "token expired",
            Self::InvalidNotBefore => "invalid nbf",
            Self::NotYetValid => "token not yet valid",
            Self::InvalidIssuedAt => "invalid iat",
            Self::IssuedInFuture => "token issued in the future",
            Self::InvalidSubject => "invalid sub",
            Self::InvalidClientId => "invalid client_id",
            Self::InvalidScope => "invalid scope",
            Self::InvalidConfirmation => "invalid cnf",
            Self::UnsupportedConfirmation => "unsupported confirmation method",
            Self::Inactive => "token is not active",
            Self::BoundTokenNotDpop => "bound token with token_type other than DPoP",
            Self::DpopTokenWithoutJkt => "DPoP token without cnf.jkt",
            Self::InvalidTokenType => "invalid token_type",
            Self::Other(text) => text,
        }
    }
}

impl fmt::Display for InvalidToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a token was not accepted.
#[derive(Debug)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is invalid, expired, not for this resource, or unknown: 401 `invalid_token`.
    Invalid(InvalidToken),
    /// The validator could not decide (the authorization server or its keys are unreachable):
    /// the request is refused with 503, never let through.
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(why) => write!(f, "invalid access token: {why}"),
            Self::Unavailable(cause) => write!(f, "access token validation unavailable: {cause}"),
        }
    }
}

impl std::error::Error for TokenError {}

/// The future a [`TokenValidator`] returns. Claims are shared (`Arc`): a cached token hands out
/// the same claims to every request that presents it, without copying them.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<Arc<TokenClaims>, TokenError>> + Send + 'a>>;

/// An access token with its SHA-256 digest, hashed once per request: the digest is both what a
/// proof's `ath` must encode (RFC 9449 §4.2) and what a validator cache
/// (`dpop_token::CachedValidator`) keys on.
///
/// Made only by hashing the text, so the digest always belongs to the token.
#[derive(Clone, Copy)]
pub struct AccessToken<'a> {
    text: &'a str,
    sha256: [u8; 32],
}

impl<'a> AccessToken<'a> {
    /// Hashes `text`.
    #[must_use]
    pub fn new(text: &'a str) -> Self {
        Self { text, sha256: crate::crypto::sha256(text.as_bytes()) }
    }

    /// `text` with the digest this crate computed from it earlier in the same request (the
    /// pending authorization keeps both).
    pub(crate) const fn hashed_before(text: &'a str, sha256: [u8; 32]) -> Self {
        Self { text, sha256 }
    }

    /// The token as presented.
    #[must_use]
    pub const fn as_str(&self) -> &'a str {
        self.text
    }

    /// SHA-256 of the token's ASCII text.
    #[must_use]
    pub const fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }
}

impl<'a> From<&'a str> for AccessToken<'a> {
    fn from(text: &'a str) -> Self {
        Self::new(text)
    }
}

impl fmt::Debug for AccessToken<'_> {
    /// Never the token: it is a credential.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken").finish_non_exhaustive()
    }
}

/// Validates access tokens for this resource server.
///
/// An implementation checks the token itself (signature or introspection, issuer, audience,
/// lifetime) and reports its claims; the guard then enforces the DPoP binding (`cnf.jkt`), the
/// Bearer downgrade rule and the required scopes.
pub trait TokenValidator: Send + Sync + 'static {
    /// Validates `token`.
    fn validate<'a>(&'a self, token: &'a str) -> TokenFuture<'a>;

    /// Validates a token the guard has already hashed (for `ath`). A validator that needs the
    /// token's SHA-256 — a cache keyed by it — uses [`AccessToken::sha256`] instead of hashing
    /// again; the default validates [`AccessToken::as_str`]. The guard calls this one.
    fn validate_hashed<'a>(&'a self, token: AccessToken<'a>) -> TokenFuture<'a> {
        self.validate(token.as_str())
    }
}

impl<V: TokenValidator + ?Sized> TokenValidator for Arc<V> {
    fn validate<'a>(&'a self, token: &'a str) -> TokenFuture<'a> {
        (**self).validate(token)
    }

    fn validate_hashed<'a>(&'a self, token: AccessToken<'a>) -> TokenFuture<'a> {
        (**self).validate_hashed(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_token_reason_is_its_fixed_text() {
        assert_eq!(InvalidToken::Expired.as_str(), "token expired");
        assert_eq!(InvalidToken::WrongAudience.to_string(), "wrong audience");
        assert_eq!(InvalidToken::Other("unknown token").as_str(), "unknown token");
        let error = TokenError::Invalid(InvalidToken::UnknownSigningKey);
        assert_eq!(error.to_string(), "invalid access token: unknown signing key");
    }
}
