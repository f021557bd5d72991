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

/// The README's examples, compiled and run as doctests (they use every framework feature).
#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "axum", feature = "actix", feature = "tokens", feature = "redis", feature = "mcp"))]
pub struct ReadmeDoctests;
