//! DPoP (RFC 9449) for HTTP clients.
//!
//! A [`DpopSession`] owns the key ([`dpop_core::DpopKey`], ES256) and what each server said:
//! per origin, the newest nonce from any response (`DPoP-Nonce`, newest wins) and the server's
//! clock offset (from `Date`). Every request gets a fresh proof: unique `jti`, `htm`, `htu`
//! (the URL without query and fragment), `iat` by the origin's clock, the nonce, and `ath` when
//! an access token goes with it.
//!
//! Integrations are thin layers over the session:
//!
//! | feature | what |
//! |---|---|
//! | `reqwest` (default) | [`DpopMiddleware`] for `reqwest-middleware` |
//! | `tower` | [`tower::DpopLayer`] for clients that are `Service<http::Request<B>>` (hyper-util's) |
//! | `rmcp` | [`rmcp::DpopMcpClient`]: rmcp's streamable-HTTP client trait, for MCP servers behind DPoP |
//! | `oauth` | [`oauth`]: token requests with proofs, PKCE, `dpop_jkt`, MCP discovery, registration |
//!
//! Each integration retries **once** when a server asks for a nonce (`use_dpop_nonce`) or
//! refuses `iat` while showing another clock, and only when the request body can be sent again.
//!
//! Keys are kept in files readable by their owner only: [`keys`].
//!
//! ```
//! use dpop_client::DpopSession;
//! use dpop_core::DpopKey;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let session = DpopSession::new(DpopKey::generate()?);
//! let proof = session.proof("POST", "https://as.example.com/token", None)?;
//! assert_eq!(proof.split('.').count(), 3);
//! # Ok(())
//! # }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod challenge;
mod error;
pub mod keys;
#[cfg(feature = "oauth")]
#[cfg_attr(docsrs, doc(cfg(feature = "oauth")))]
pub mod oauth;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest;
#[cfg(feature = "rmcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "rmcp")))]
pub mod rmcp;
mod session;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;

#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use crate::reqwest::DpopMiddleware;
pub use error::ClientError;
pub use session::{
    DEFAULT_CLOCK_SKEW_THRESHOLD, DEFAULT_MAX_ORIGINS, DpopSession, DpopSessionBuilder, ResponseInfo, RetryReason,
    Verdict,
};
