//! Access-token validators for dpop-guard: implementations of
//! [`dpop_core::TokenValidator`] for RFC 9068 JWT access tokens ([`JwtValidator`], with a
//! static [`JwkSet`] or one fetched from the authorization server, found by RFC 8414 / OpenID
//! Connect discovery or given; [`MultiIssuerValidator`] for several authorization servers),
//! for RFC 7662 token introspection (`IntrospectionValidator`, feature `fetch`), and a cache in
//! front of any of them ([`CachedValidator`]).
//!
//! The validators check the token itself: signature or introspection, issuer, audience,
//! lifetime, and that a `cnf` claim is a well-formed `jkt`. The DPoP binding (the proof's key
//! matches `cnf.jkt`), the Bearer downgrade rule and scopes are enforced by
//! [`DpopGuard`](dpop_core::DpopGuard) on the returned [`TokenClaims`](dpop_core::TokenClaims).
//!
//! ```
//! use std::time::Duration;
//! use dpop_core::{Algorithm, InvalidToken, TokenError, TokenValidator};
//! use dpop_token::{CachedValidator, JwkSet, JwtValidator};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let as_key = dpop_core::DpopKey::generate()?;
//! # let mut jwk = as_key.public_jwk();
//! # jwk["kid"] = "k1".into();
//! # let jwks_json = serde_json::json!({ "keys": [jwk] }).to_string();
//! let validator = JwtValidator::builder("https://as.example.com", "https://mcp.example.com/mcp")
//!     .keys(JwkSet::from_json(&jwks_json)?) // or .jwks_url("https://as.example.com/jwks")
//!     .algorithms([Algorithm::ES256])
//!     .leeway(Duration::from_secs(30))
//!     .build()?;
//! let validator = CachedValidator::new(validator);
//!
//! let refused = validator.validate("not-a-jwt").await;
//! assert!(matches!(refused, Err(TokenError::Invalid(InvalidToken::Malformed))));
//! # Ok(())
//! # }
//! ```
//!
//! # Failing closed
//!
//! Every refusal is [`TokenError::Invalid`](dpop_core::TokenError::Invalid) with its reason,
//! an [`InvalidToken`](dpop_core::InvalidToken) variant (never the token), and a `tracing` event. When a validator cannot decide (the JWKS or
//! introspection endpoint is down, times out, answers garbage or with an error status) it
//! returns [`TokenError::Unavailable`](dpop_core::TokenError::Unavailable): the request is
//! refused with 503, never let through.
//!
//! JSON (token headers and claims, JWK sets, introspection responses) is parsed strictly, by
//! the same reader and rules as DPoP proofs in dpop-core: duplicate member names at any depth
//! are refused, as are oversize documents and deep nesting. Every NumericDate (`exp`, `nbf`,
//! `iat`) follows dpop-core's one rule, the one applied to a proof's `iat`: a JSON number of
//! seconds from 0 to 2^53 − 1, fractions truncated; anything else is refused as
//! `invalid exp` (or `nbf`, `iat`). Tokens longer than [`MAX_TOKEN_LEN`] bytes are refused
//! before any decoding.
//!
//! # Why not `jsonwebtoken`
//!
//! The `jsonwebtoken` crate (12.0, the current release when this was written) was tried as the
//! verifier and is not used, for these reasons:
//!
//! - **A panic reachable from request data.** Its crypto provider is process-wide and chosen
//!   at the first signature check: with both its `aws_lc_rs` and `rust_crypto` features (which
//!   cargo's feature unification can turn on behind an application's back), or with neither,
//!   the first `decode` panics ("Could not automatically determine the process-level
//!   CryptoProvider"). Reproduced with 12.0.0 in both configurations.
//! - **Installing a provider does not fix it for a library.** `CryptoProvider::install_default`
//!   can succeed once per process: a validator installing one takes the slot from the
//!   application (whose own later call then fails), and which provider runs depends on
//!   start-up order. A provider backed by this crate's crypto would be plain `fn` pointers with
//!   no state, so every verification would rebuild a [`dpop_core::PublicKey`] from the raw key
//!   bytes of its `DecodingKey` (dpop-core only parses keys from JWK text), behind an extra
//!   trait layer (`signature` 3's `Verifier`): the same signature check as today, slower.
//! - **Checks it does not make**, each verified against 12.0.0: it accepts `iss` as an array
//!   when one element matches; duplicate claims it does not validate itself are read
//!   last-wins (`{"cnf":{"jkt":"A"},"cnf":{"jkt":"B"}}` binds to `B` — a parser differential on
//!   the DPoP binding), with no member or element bounds; `typ` is not checked (a DPoP proof
//!   or an ID token passes for an access token); a future `iat` is accepted. All of these
//!   checks would have to stay here anyway.
//! - **Dependencies**: `jsonwebtoken`, `signature` 3, `rand_core` 0.10, and the `serde_derive`
//!   and `zeroize_derive` proc macros, none of which this crate needs otherwise; built alone
//!   without crypto features it takes 21 s on two cores, 67 s with both crypto features.
//!
//! So this crate verifies JWS signatures with [`dpop_core::PublicKey::verify`], whose backend
//! is fixed at compile time with a priority order and never panics when several are enabled,
//! and checks the header and claims itself, with dpop-core's strict JSON reader.
//!
//! # Features
//!
//! - `aws-lc-rs` (default), `ring`, `rustcrypto`: dpop-core's signature backend (with several,
//!   aws-lc-rs > ring > rustcrypto). The default algorithm allow-list follows it.
//! - `fetch` (default): the HTTP client (reqwest with rustls) for
//!   `JwtValidatorBuilder::jwks_url`, `JwtValidator::from_issuer` /
//!   `JwtValidatorBuilder::discover` and `IntrospectionValidator`. Endpoints must be
//!   `https`, except plain `http` to a loopback address.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod cache;
mod claims;
#[cfg(feature = "fetch")]
mod discovery;
#[cfg(feature = "fetch")]
mod http;
#[cfg(feature = "fetch")]
mod introspection;
mod issuers;
mod jwks;
mod jwt;
#[cfg(feature = "fetch")]
mod remote;

use std::fmt;

use dpop_core::Algorithm;

pub use cache::{CachedValidator, DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_MAX_TTL};
#[cfg(feature = "fetch")]
#[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
pub use http::{DEFAULT_FETCH_TIMEOUT, MAX_RESPONSE_LEN};
#[cfg(feature = "fetch")]
#[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
pub use introspection::{IntrospectionValidator, IntrospectionValidatorBuilder};
pub use issuers::MultiIssuerValidator;
pub use jwks::{JwkSet, JwksError, MAX_JWKS_KEYS, MAX_JWKS_LEN};
pub use jwt::{DEFAULT_ALGORITHMS, DEFAULT_LEEWAY, JwtValidator, JwtValidatorBuilder, MAX_TOKEN_LEN};
#[cfg(feature = "fetch")]
#[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
pub use remote::{DEFAULT_JWKS_MAX_AGE, DEFAULT_REFETCH_INTERVAL};

/// A validator configuration that cannot work.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The issuer is empty.
    EmptyIssuer,
    /// The audience is empty.
    EmptyAudience,
    /// No issuer was given (`IntrospectionValidatorBuilder::issuer` is required).
    MissingIssuer,
    /// No audience was given (`IntrospectionValidatorBuilder::audience` is required).
    MissingAudience,
    /// None of [`keys`](JwtValidatorBuilder::keys), `jwks_url` or `discover` was given.
    NoKeySource,
    /// More than one of [`keys`](JwtValidatorBuilder::keys), `jwks_url` and `discover` was
    /// given.
    ConflictingKeySources,
    /// The static key set has no usable signing key.
    EmptyKeySet,
    /// The algorithm list is empty.
    NoAlgorithms,
    /// The compiled crypto backend cannot verify this algorithm.
    UnsupportedAlgorithm(Algorithm),
    /// The endpoint URL does not parse, has credentials in it, or is not `http(s)`.
    InvalidUrl,
    /// The endpoint URL is plain `http` to a host that is not a loopback address.
    InsecureUrl,
    /// The introspection client id is empty or the credentials cannot form a header.
    MissingCredentials,
    /// The HTTP client could not be built.
    HttpClient(String),
    /// A [`MultiIssuerValidator`] was given no validator.
    NoValidators,
    /// A [`MultiIssuerValidator`] was given two validators for this issuer.
    DuplicateIssuer(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyIssuer => f.write_str("the issuer is empty"),
            Self::EmptyAudience => f.write_str("the audience is empty"),
            Self::MissingIssuer => f.write_str("no issuer given: the authorization server's issuer is required"),
            Self::MissingAudience => f.write_str("no audience given: this resource's canonical URI is required"),
            Self::NoKeySource => f.write_str("no key source: give keys, a JWKS URL, or discover them"),
            Self::ConflictingKeySources => {
                f.write_str("give one key source: static keys, a JWKS URL, or discovery from the issuer")
            }
            Self::EmptyKeySet => f.write_str("the key set has no usable signing key"),
            Self::NoAlgorithms => f.write_str("the algorithm list is empty"),
            Self::UnsupportedAlgorithm(alg) => {
                write!(f, "the {} crypto backend cannot verify {alg}", dpop_core::crypto_backend())
            }
            Self::InvalidUrl => f.write_str("the endpoint or issuer URL is not a valid http(s) URL"),
            Self::InsecureUrl => f.write_str("the endpoint URL must be https (plain http only to loopback)"),
            Self::MissingCredentials => f.write_str("invalid introspection client credentials"),
            Self::HttpClient(why) => write!(f, "cannot build the HTTP client: {why}"),
            Self::NoValidators => f.write_str("no validator given: give one per issuer"),
            Self::DuplicateIssuer(issuer) => write!(f, "two validators for the issuer `{issuer}`"),
        }
    }
}

impl std::error::Error for ConfigError {}
