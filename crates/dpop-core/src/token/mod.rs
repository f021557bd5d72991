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

/// Why a token was not accepted.
#[derive(Debug)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is invalid, expired, not for this resource, or unknown: 401 `invalid_token`.
    /// The text is a fixed, human reason; it never contains the token.
    Invalid(&'static str),
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

/// Validates access tokens for this resource server.
///
/// An implementation checks the token itself (signature or introspection, issuer, audience,
/// lifetime) and reports its claims; the guard then enforces the DPoP binding (`cnf.jkt`), the
/// Bearer downgrade rule and the required scopes.
pub trait TokenValidator: Send + Sync + 'static {
    /// Validates `token`.
    fn validate<'a>(&'a self, token: &'a str) -> TokenFuture<'a>;
}

impl<V: TokenValidator + ?Sized> TokenValidator for Arc<V> {
    fn validate<'a>(&'a self, token: &'a str) -> TokenFuture<'a> {
        (**self).validate(token)
    }
}
