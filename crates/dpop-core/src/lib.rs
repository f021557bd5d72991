//! Framework-free DPoP (RFC 9449) proof verification.
//!
//! [`DpopVerifier`] runs every check of RFC 9449 §4.3 on a `DPoP` header value against the
//! request's method, target URI and access token, and records accepted proofs in a
//! [`ReplayStore`] so none is accepted twice. Rejections are [`DpopError`] values that know their
//! RFC error code and render the exact `WWW-Authenticate` challenge ([`Challenge`]).
//!
//! HTTP frameworks are adapters around this crate: it takes plain `&str` and bytes.
//!
//! ```
//! use dpop_core::{DpopKey, DpopVerifier, ProofRequest};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = DpopVerifier::new();
//!
//! // A client signs a proof for one request...
//! let key = DpopKey::generate()?;
//! let proof = key.proof("GET", "https://mcp.example.com/mcp").access_token("tok").sign()?;
//!
//! // ...and the server verifies it against what it received.
//! let request = ProofRequest::new("GET", "https://mcp.example.com/mcp").access_token("tok");
//! let verified = verifier.verify([proof.as_bytes()], &request).await?;
//! assert_eq!(verified.thumbprint(), &key.thumbprint());
//!
//! // The same proof again is a replay.
//! let again = verifier.verify([proof.as_bytes()], &request).await;
//! assert_eq!(again.unwrap_err().code().as_str(), "invalid_dpop_proof");
//! # Ok(())
//! # }
//! ```
//!
//! # Crypto backends
//!
//! One cargo feature picks the signature backend: `aws-lc-rs` (default), `ring` or
//! `rustcrypto`. With several enabled (feature unification), the first of that list wins and
//! the build never fails because of it — so **`features = ["ring"]` without
//! `default-features = false` keeps aws-lc-rs**. [`crypto_backend`] names the one compiled in.
//! This table is the one place the backends are described; the facade and the adapters link
//! here.
//!
//! | algorithm | aws-lc-rs | ring | rustcrypto |
//! |-----------|-----------|------|------------|
//! | ES256     | yes       | yes  | yes        |
//! | ES384     | yes       | yes  | no         |
//! | ES512     | yes       | no   | no         |
//! | EdDSA (also named Ed25519, RFC 9864) | yes | yes | no |
//! | RS256     | yes       | yes  | no         |
//! | PS256     | yes       | yes  | no         |
//!
//! Only ES256 is allowed unless a verifier opts in with
//! [`DpopVerifierBuilder::algorithms`]; an algorithm the backend lacks is a
//! [`ConfigError`] when the verifier is built, never a surprise at request time.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod access_token;
mod algorithm;
mod authorization;
mod challenge;
pub mod clock;
pub mod cors;
mod crypto;
mod error;
mod guard;
pub mod headers;
mod htu;
pub mod inspect;
#[doc(hidden)]
pub mod json;
mod jwk;
pub mod metadata;
pub mod nonce;
mod proof;
pub mod replay;
mod signer;
mod target;
mod token;
pub mod token_endpoint;
mod validator_fn;
mod verifier;

pub use access_token::{TokenClaims, TokenError, TokenFuture, TokenValidator};
pub use algorithm::{Algorithm, AlgorithmSet};
pub use authorization::{Credentials, parse_authorization};
pub use challenge::{Challenge, ErrorScheme, quoted_string, www_authenticate};
pub use clock::{Clock, ManualClock, SystemClock};
pub use crypto::CryptoError;
pub use error::{ConfigError, DpopError, ErrorCode};
pub use guard::{
    Admission, AuthScheme, Authentication, DpopGuard, DpopGuardBuilder, NoncePolicy, NoncePredicate,
    PendingAuthorization, ProofOnlyAuthentication, Rejection, Reply,
};
pub use headers::HeaderValues;
pub use htu::{htu_matches, normalize_htu};
pub use jwk::{EcCurve, MAX_RSA_BITS, MIN_RSA_BITS, PublicKey, Thumbprint};
pub use nonce::{NonceIssuer, NonceKey};
pub use replay::{InMemoryReplayStore, ReplayStore};
pub use signer::{DpopKey, KeyError, ProofBuilder};
pub use target::RequestUri;
pub use token::{access_token_hash, check_key_binding};
pub use validator_fn::{ValidatorFn, validator_fn};
pub use verifier::{
    DEFAULT_IAT_WINDOW, DEFAULT_MAX_JTI_LEN, DEFAULT_MAX_PROOF_LEN, DpopVerifier, DpopVerifierBuilder, MAX_IAT_WINDOW,
    ProofRequest, UnrecordedProof, VerifiedProof,
};

/// The crypto backend compiled in: `"aws-lc-rs"`, `"ring"` or `"rustcrypto"`.
#[must_use]
pub const fn crypto_backend() -> &'static str {
    crypto::BACKEND
}
