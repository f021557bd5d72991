//! The RustCrypto backend (pure Rust, `p256`): ES256 only.

use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use rand_core::OsRng;

use super::CryptoError;
use crate::error::DpopError;
use crate::proof::algorithm::Algorithm;
use crate::proof::jwk::PublicKey;

pub(super) const NAME: &str = "rustcrypto";

pub(super) fn supports(alg: Algorithm) -> bool {
    alg.scheme() == Algorithm::ES256
}

/// A P-256 point parsed (and validated) once.
pub(super) struct PreparedKey(VerifyingKey);

pub(super) fn prepare(alg: Algorithm, key: &PublicKey) -> Result<PreparedKey, DpopError> {
    let (Algorithm::ES256, PublicKey::Ec { point, .. }) = (alg.scheme(), key) else {
        return Err(DpopError::KeyAlgorithmMismatch);
    };
    VerifyingKey::from_sec1_bytes(point).map(PreparedKey).map_err(|_| DpopError::InvalidKey("not a point on the curve"))
}

pub(super) fn verify(key: &PreparedKey, message: &[u8], sig: &[u8]) -> Result<(), DpopError> {
    let sig = Signature::from_slice(sig).map_err(|_| DpopError::InvalidSignature)?;
    key.0.verify(message, &sig).map_err(|_| DpopError::InvalidSignature)
}

/// An ES256 key pair for signing proofs.
pub(crate) struct Es256KeyPair(SigningKey);

impl Es256KeyPair {
    pub(crate) fn generate() -> Result<Self, CryptoError> {
        Ok(Self(SigningKey::random(&mut OsRng)))
    }

    pub(crate) fn from_private_key(d: &[u8], public_point: &[u8]) -> Result<Self, CryptoError> {
        let key = SigningKey::from_slice(d).map_err(|_| CryptoError::InvalidKeyPair)?;
        let pair = Self(key);
        if pair.public_point() != public_point {
            return Err(CryptoError::InvalidKeyPair);
        }
        Ok(pair)
    }

    pub(crate) fn public_point(&self) -> Vec<u8> {
        self.0.verifying_key().to_encoded_point(false).as_bytes().to_vec()
    }

    pub(crate) fn private_scalar(&self) -> Result<Vec<u8>, CryptoError> {
        Ok(self.0.to_bytes().to_vec())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let sig: Signature = self.0.try_sign(message).map_err(|_| CryptoError::Signing)?;
        Ok(sig.to_bytes().to_vec())
    }
}

pub(super) fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    use rand_core::RngCore as _;
    OsRng.try_fill_bytes(buf).map_err(|_| CryptoError::RandomGenerator)
}
