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
    PreparedKey::new(alg, key)?.verify(signing_input, signature)
}

/// A public key made ready to verify one algorithm's signatures: checked to fit it and, where
/// the backend can keep a parsed key (aws-lc-rs, RustCrypto), parsed and validated once — so a
/// key kept for a client's next proof costs only the signature then.
pub(crate) struct PreparedKey(backend::PreparedKey);

impl PreparedKey {
    /// Prepares `key` for `alg`.
    ///
    /// # Errors
    ///
    /// [`DpopError::KeyAlgorithmMismatch`] when the key does not fit `alg` or the backend lacks
    /// it; [`DpopError::InvalidKey`] for a point the backend refuses.
    pub(crate) fn new(alg: Algorithm, key: &PublicKey) -> Result<Self, DpopError> {
        if !key.fits(alg) || !supports(alg) {
            return Err(DpopError::KeyAlgorithmMismatch);
        }
        backend::prepare(alg, key).map(Self)
    }

    /// Verifies `signature` over `signing_input`.
    ///
    /// # Errors
    ///
    /// [`DpopError::InvalidSignature`].
    pub(crate) fn verify(&self, signing_input: &[u8], signature: &[u8]) -> Result<(), DpopError> {
        backend::verify(&self.0, signing_input, signature)
    }
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

/// A failure inside the crypto backend while making keys, nonces or signatures.
///
/// None of these depends on request data: each means the platform's random generator or the
/// backend itself failed, or a key handed to [`DpopKey`](crate::DpopKey) is not a P-256 pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CryptoError {
    /// The operating system's secure random generator failed.
    RandomGenerator,
    /// The backend could not generate a key pair.
    KeyGeneration,
    /// The private scalar and public point do not form a P-256 key pair.
    InvalidKeyPair,
    /// A key could not be encoded or decoded the way this library expects (the backend's
    /// public point or private scalar export).
    KeyEncoding,
    /// The backend could not sign.
    Signing,
}

impl CryptoError {
    /// A short, fixed description: `"random generator failed"`, `"signing failed"`, ….
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RandomGenerator => "random generator failed",
            Self::KeyGeneration => "key generation failed",
            Self::InvalidKeyPair => "invalid P-256 key pair",
            Self::KeyEncoding => "unexpected key encoding",
            Self::Signing => "signing failed",
        }
    }
}

impl std::fmt::Display for CryptoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "crypto backend error: {}", self.as_str())
    }
}

impl std::error::Error for CryptoError {}

/// Fills `buf` with bytes from the operating system's secure random generator.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    backend::fill_random(buf)
}

#[cfg(test)]
mod tests {
    use super::CryptoError;

    #[test]
    fn crypto_errors_display_their_fixed_text() {
        let all = [
            CryptoError::RandomGenerator,
            CryptoError::KeyGeneration,
            CryptoError::InvalidKeyPair,
            CryptoError::KeyEncoding,
            CryptoError::Signing,
        ];
        for (i, error) in all.iter().enumerate() {
            assert_eq!(error.to_string(), format!("crypto backend error: {}", error.as_str()));
            assert!(all[..i].iter().all(|other| other.as_str() != error.as_str()), "{error:?}");
        }
    }
}
