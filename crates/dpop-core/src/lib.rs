//! Framework-free DPoP (RFC 9449) proof verification.
//!
//! [`DpopVerifier`] runs every check of RFC 9449 §4.3 on a `DPoP` header value against the
//! request's method, target URI and access token, and records accepted proofs in a
//! [`ReplayStore`](replay::ReplayStore) so none is accepted twice. [`DpopGuard`] makes the whole
//! decision for one HTTP request. Rejections are [`DpopError`] values that know their RFC error
//! code and render the exact `WWW-Authenticate` challenge.
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

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// The layout follows the architecture: `proof` is RFC 9449 §4 (every §4.3 check in
// `proof::checks`), `guard` the per-request HTTP decision, `token` access tokens (§6 binding,
// validators, the token endpoint), `replay` and `nonce` the server state (§11.1, §8), `signer`
// the client side's proofs.
pub mod clock;
mod crypto;
mod error;
mod guard;
pub mod headers;
#[doc(hidden)]
pub mod json;
pub mod nonce;
mod proof;
pub mod replay;
mod signer;
mod token;

pub use crypto::CryptoError;
pub use error::{ConfigError, DpopError, ErrorCode};
pub use guard::cors;
pub use guard::{
    Admission, AuthScheme, Authentication, DpopGuard, DpopGuardBuilder, NoncePolicy, NoncePredicate,
    PendingAuthorization, ProofOnlyAuthentication, Rejection, Reply, RequestUri,
};
pub use proof::algorithm::{Algorithm, AlgorithmSet};
pub use proof::inspect;
pub use proof::jwk::{EcCurve, MAX_RSA_BITS, MIN_RSA_BITS, PublicKey, Thumbprint};
pub use proof::verifier::{
    DEFAULT_IAT_WINDOW, DEFAULT_MAX_JTI_LEN, DEFAULT_MAX_PROOF_LEN, DpopVerifier, DpopVerifierBuilder, MAX_IAT_WINDOW,
    ProofRequest, UnrecordedProof, VerifiedProof,
};
pub use signer::{DpopKey, KeyError, ProofBuilder};
pub use token::binding::{access_token_hash, check_key_binding};
pub use token::endpoint as token_endpoint;
pub use token::{
    AccessToken, InvalidToken, TokenClaims, TokenError, TokenFuture, TokenValidator, ValidatorFn, validator_fn,
};

/// Building blocks the tests, the fuzz targets and the CLI reach into: the `Authorization`
/// parser, challenge rendering, `htu` normalization. Not a stable API.
#[doc(hidden)]
pub mod internals {
    pub use crate::guard::authorization::{Credentials, parse_authorization};
    pub use crate::guard::challenge::{Challenge, ErrorScheme, quoted_string, www_authenticate};
    pub use crate::proof::htu::{htu_matches, normalize_htu};
}

/// The crypto backend compiled in: `"aws-lc-rs"`, `"ring"` or `"rustcrypto"`.
#[must_use]
pub const fn crypto_backend() -> &'static str {
    crypto::BACKEND
}
