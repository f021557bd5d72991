//! Signature verification, hashing and ES256 signing behind one small interface.
//!
//! Exactly one backend is compiled in, chosen by cargo feature with a fixed priority so that
//! feature unification never breaks the build: `aws-lc-rs` > `ring` > `rustcrypto`. What each
//! backend verifies: the table in the [crate docs](crate#crypto-backends).

#[cfg(not(any(feature = "aws-lc-rs", feature = "ring", feature = "rustcrypto")))]
compile_error!("dpop-core needs one crypto backend feature: `aws-lc-rs` (default), `ring` or `rustcrypto`");

#[cfg(feature = "aws-lc-rs")]
mod aws_lc;
#[cfg(feature = "aws-lc-rs")]
use aws_lc as backend;

#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
mod ring_backend;
#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
use ring_backend as backend;

#[cfg(all(feature = "rustcrypto", not(any(feature = "aws-lc-rs", feature = "ring"))))]
mod rustcrypto;
#[cfg(all(feature = "rustcrypto", not(any(feature = "aws-lc-rs", feature = "ring"))))]
use rustcrypto as backend;

pub(crate) use backend::Es256KeyPair;

use sha2::Digest as _;

use crate::error::DpopError;
use crate::proof::algorithm::Algorithm;
use crate::proof::jwk::PublicKey;

/// The name of the compiled-in backend: `"aws-lc-rs"`, `"ring"` or `"rustcrypto"`.
pub(crate) const BACKEND: &str = backend::NAME;

/// Whether the backend can verify `alg`.
pub(crate) fn supports(alg: Algorithm) -> bool {
    backend::supports(alg)
}

/// Verifies a JWS signature (RFC 7515 §5.2 step 8). The key must already fit `alg`.
///
/// ECDSA signatures are the raw `r || s` form of RFC 7518 §3.4.
pub(crate) fn verify_signature(
    alg: Algorithm,
    key: &PublicKey,
    signing_input: &[u8],
    signature: &[u8],
) -> Result<(), DpopError> {
    if !key.fits(alg) || !supports(alg) {
        return Err(DpopError::KeyAlgorithmMismatch);
    }
    backend::verify(alg, key, signing_input, signature)
}

/// SHA-256.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

/// SHA-256 of the concatenation of `parts`, without building it.
pub(crate) fn sha256_concat(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = sha2::Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// A failure inside the crypto backend while making keys or signatures (client side only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoError(pub(crate) &'static str);

impl std::fmt::Display for CryptoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "crypto backend error: {}", self.0)
    }
}

impl std::error::Error for CryptoError {}

/// Fills `buf` with bytes from the operating system's secure random generator.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    backend::fill_random(buf)
}
