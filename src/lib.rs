//! DPoP (RFC 9449) for Rust HTTP servers, above all MCP servers.
//!
//! A stolen access token is useless without the client's private key; a stolen proof is useless
//! after one use. Pick the framework with a cargo feature:
//!
//! | feature | module | you write |
//! |---|---|---|
//! | `tower` (default) | [`tower`] | `ServiceBuilder::new().layer(DpopLayer::new(validator))` |
//! | `axum` | [`axum`] | `Router::new().route(..).layer(DpopLayer::new(validator))` |
//! | `actix` | [`actix`] | `App::new().wrap(Dpop::new(validator))` |
//! | `tokens` | [`token`] | `DpopGuard::builder().token_validator(JwtValidator::builder(iss, aud)…)` |
//! | `redis` | [`redis`] | `DpopVerifier::builder().replay_store(RedisReplayStore::connect(url).await?)` |
//! | `mcp` | [`mcp`] | `caller.require_scope("tools:write")?`, `.layer(SessionBindingLayer::new(..))` |
//! | `client`, `client-rmcp`, `client-oauth`, `client-tower` | [`client`] | a `DpopSession` that signs every request |
//!
//! Every decision is made by [`DpopGuard`], so every framework answers alike. The framework-free
//! core is re-exported at the crate root:
//!
//! ```
//! use dpop_guard::{DpopKey, DpopVerifier, ProofRequest};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = DpopVerifier::new();
//! let key = DpopKey::generate()?;
//! let proof = key.proof("POST", "https://mcp.example.com/mcp").sign()?;
//! let request = ProofRequest::new("POST", "https://mcp.example.com/mcp");
//! let verified = verifier.verify([proof.as_bytes()], &request).await?;
//! println!("request signed by key {}", verified.jkt());
//! # Ok(())
//! # }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

pub use dpop_core::*;

/// The tower layer, for any `Service<http::Request<B>>` (hyper, tonic, …).
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower {
    pub use dpop_tower::*;
}

/// The axum layer (reads `OriginalUri` for nested routers) and the `Authenticated` extractor.
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum {
    pub use dpop_axum::*;
}

/// The actix-web middleware (`.wrap(Dpop::new(validator))`) and the `Authenticated` extractor.
#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix {
    pub use dpop_actix::*;
}

/// Access-token validators: JWT (RFC 9068) with a static or fetched JWK Set, introspection
/// (RFC 7662), and a cache so a reused token costs no second signature check.
#[cfg(feature = "tokens")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokens")))]
pub mod token {
    pub use dpop_token::*;
}

/// A replay store on Redis / Valkey, shared by every instance of a service.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis {
    pub use dpop_redis::*;
}

/// rmcp integration: the verified caller in tools (`Caller`), per-tool scopes, MCP sessions
/// bound to the key that opened them (`SessionBindingLayer`).
#[cfg(feature = "mcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "mcp")))]
pub mod mcp {
    pub use dpop_mcp::*;
}

/// The client side: a session that owns the key, signs every request with a fresh proof and
/// follows nonces and clock skew; reqwest middleware, rmcp's streamable-HTTP client, a tower
/// client layer, OAuth token requests with DPoP.
#[cfg(any(feature = "client", feature = "client-tower"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "client", feature = "client-tower"))))]
pub mod client {
    pub use dpop_client::*;
}

/// Every configuration error the facade's features can return, so one function can build a
/// guard, its token validator and its replay store with `?`.
///
/// Each variant holds the error it came from (also returned by [`source`](std::error::Error::source));
/// variants exist only with the feature that exposes their error type.
///
/// ```
/// # #[cfg(all(feature = "tokens", feature = "redis"))]
/// # mod example {
/// use dpop_guard::redis::RedisReplayStore;
/// use dpop_guard::token::{CachedValidator, JwkSet, JwtValidator};
/// use dpop_guard::{DpopGuard, DpopVerifier};
///
/// pub async fn guard(jwks: &str, redis_url: Option<&str>) -> Result<DpopGuard, dpop_guard::Error> {
///     let keys = JwkSet::from_json(jwks)?; // token::JwksError
///     let tokens = JwtValidator::builder("https://auth.example.com", "https://mcp.example.com/mcp")
///         .keys(keys)
///         .build()?; // token::ConfigError
///     let mut verifier = DpopVerifier::builder();
///     if let Some(url) = redis_url {
///         verifier = verifier.replay_store(RedisReplayStore::connect(url).await?); // redis::ConnectError
///     }
///     let guard = DpopGuard::builder()
///         .verifier(verifier.build()?) // ConfigError
///         .resource("https://mcp.example.com/mcp")
///         .token_validator(CachedValidator::new(tokens))
///         .build()?; // ConfigError
///     Ok(guard)
/// }
/// # }
/// # #[cfg(all(feature = "tokens", feature = "redis"))]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # use example::guard;
/// # use dpop_guard::Error;
/// let error = guard("not JSON", None).await.err();
/// assert!(matches!(error, Some(Error::Jwks(_))), "{error:?}");
/// let error = guard(r#"{"keys": []}"#, None).await.err();
/// assert!(matches!(error, Some(Error::TokenConfig(_))), "{error:?}");
/// let jwks = format!(r#"{{"keys": [{}]}}"#, dpop_guard::DpopKey::generate().unwrap().public_jwk());
/// let error = guard(&jwks, Some("not a URL")).await.err();
/// assert!(matches!(error, Some(Error::RedisConnect(_))), "{error:?}");
/// assert!(guard(&jwks, None).await.is_ok());
/// # }
/// # #[cfg(not(all(feature = "tokens", feature = "redis")))]
/// # fn main() {}
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A guard or verifier configuration that cannot work ([`DpopGuardBuilder::build`],
    /// [`DpopVerifierBuilder::build`]).
    Config(ConfigError),
    /// A nonce key that does not parse ([`nonce::NonceKey::from_text`]).
    NonceKey(nonce::NonceKeyError),
    /// A token validator configuration that cannot work (`JwtValidatorBuilder::build`,
    /// `IntrospectionValidatorBuilder::build`, `MultiIssuerValidator::new`, …).
    #[cfg(feature = "tokens")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokens")))]
    TokenConfig(token::ConfigError),
    /// A JWK Set that does not parse or holds an unusable key (`JwkSet::from_json`).
    #[cfg(feature = "tokens")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokens")))]
    Jwks(token::JwksError),
    /// A Redis replay store that could not be built or connected (`RedisReplayStore::connect`).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    RedisConnect(redis::ConnectError),
    /// A client-side error: a key file that cannot be read or is not a key, a failed key
    /// generation, an OAuth or HTTP failure.
    #[cfg(any(feature = "client", feature = "client-tower"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "client", feature = "client-tower"))))]
    Client(client::ClientError),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(error) => write!(f, "DPoP configuration: {error}"),
            Self::NonceKey(error) => write!(f, "DPoP nonce key: {error}"),
            #[cfg(feature = "tokens")]
            Self::TokenConfig(error) => write!(f, "access-token validator configuration: {error}"),
            #[cfg(feature = "tokens")]
            Self::Jwks(error) => write!(f, "JWK Set: {error}"),
            #[cfg(feature = "redis")]
            Self::RedisConnect(error) => write!(f, "Redis replay store: {error}"),
            // ClientError's own message already starts with "DPoP client:".
            #[cfg(any(feature = "client", feature = "client-tower"))]
            Self::Client(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(error) => Some(error),
            Self::NonceKey(error) => Some(error),
            #[cfg(feature = "tokens")]
            Self::TokenConfig(error) => Some(error),
            #[cfg(feature = "tokens")]
            Self::Jwks(error) => Some(error),
            #[cfg(feature = "redis")]
            Self::RedisConnect(error) => Some(error),
            #[cfg(any(feature = "client", feature = "client-tower"))]
            Self::Client(error) => Some(error),
        }
    }
}

impl From<ConfigError> for Error {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}

impl From<nonce::NonceKeyError> for Error {
    fn from(error: nonce::NonceKeyError) -> Self {
        Self::NonceKey(error)
    }
}

#[cfg(feature = "tokens")]
impl From<token::ConfigError> for Error {
    fn from(error: token::ConfigError) -> Self {
        Self::TokenConfig(error)
    }
}

#[cfg(feature = "tokens")]
impl From<token::JwksError> for Error {
    fn from(error: token::JwksError) -> Self {
        Self::Jwks(error)
    }
}

#[cfg(feature = "redis")]
impl From<redis::ConnectError> for Error {
    fn from(error: redis::ConnectError) -> Self {
        Self::RedisConnect(error)
    }
}

#[cfg(any(feature = "client", feature = "client-tower"))]
impl From<client::ClientError> for Error {
    fn from(error: client::ClientError) -> Self {
        Self::Client(error)
    }
}

/// The README's examples, compiled and run as doctests (they use every framework feature).
#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "axum", feature = "actix", feature = "tokens", feature = "redis", feature = "mcp"))]
pub struct ReadmeDoctests;
