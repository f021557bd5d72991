//! DPoP (RFC 9449) for Rust HTTP servers, above all MCP servers.
//!
//! A stolen access token is useless without the client's private key; a stolen proof is useless
//! after one use. This facade re-exports the framework-free core, [`dpop_core`]; cargo features
//! pick the crypto backend (and, as they land, the framework adapters and Redis).
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

#![forbid(unsafe_code)]

pub use dpop_core::*;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
