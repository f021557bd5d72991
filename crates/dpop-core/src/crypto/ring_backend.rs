//! The ring backend.

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaPublicKeyComponents, UnparsedPublicKey};

use super::CryptoError;
use crate::error::DpopError;
use crate::proof::algorithm::Algorithm;
use crate::proof::jwk::PublicKey;

pub(super) const NAME: &str = "ring";

pub(super) fn supports(alg: Algorithm) -> bool {
    alg.scheme() != Algorithm::ES512
}

/// ring parses a key inside each verification, so a prepared key is the key itself.
pub(super) struct PreparedKey {
    alg: Algorithm,
    key: PublicKey,
}

pub(super) fn prepare(alg: Algorithm, key: &PublicKey) -> Result<PreparedKey, DpopError> {
    Ok(PreparedKey { alg, key: key.clone() })
}

pub(super) fn verify(prepared: &PreparedKey, message: &[u8], sig: &[u8]) -> Result<(), DpopError> {
    let PreparedKey { alg, key } = prepared;
    let verified = match (alg.scheme(), key) {
        (Algorithm::RS256 | Algorithm::PS256, PublicKey::Rsa { n, e }) => {
            let params = if *alg == Algorithm::RS256 {
                &signature::RSA_PKCS1_2048_8192_SHA256
            } else {
                &signature::RSA_PSS_2048_8192_SHA256
            };
            RsaPublicKeyComponents { n: &**n, e: &**e }.verify(params, message, sig)
        }
        // ring validates the point inside verify, so an off-curve key reads as a bad signature.
        (Algorithm::ES256, PublicKey::Ec { point, .. }) => {
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(message, sig)
        }
        (Algorithm::ES384, PublicKey::Ec { point, .. }) => {
            UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point).verify(message, sig)
        }
        (Algorithm::EdDSA, PublicKey::Ed25519 { x }) => {
            UnparsedPublicKey::new(&signature::ED25519, x).verify(message, sig)
        }
        _ => return Err(DpopError::KeyAlgorithmMismatch),
    };
    verified.map_err(|_| DpopError::InvalidSignature)
}

/// An ES256 key pair for signing proofs. ring hides the private scalar, so the PKCS#8
/// document it generated is kept to export it.
pub(crate) struct Es256KeyPair {
    pair: EcdsaKeyPair,
    private_scalar: Vec<u8>,
}

impl Es256KeyPair {
    pub(crate) fn generate() -> Result<Self, CryptoError> {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).map_err(|_| CryptoError::KeyGeneration)?;
        let private_scalar = scalar_from_pkcs8(pkcs8.as_ref())?;
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).map_err(|_| CryptoError::KeyGeneration)?;
        Ok(Self { pair, private_scalar })
    }

    pub(crate) fn from_private_key(d: &[u8], public_point: &[u8]) -> Result<Self, CryptoError> {
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        EcdsaKeyPair::from_private_key_and_public_key(alg, d, public_point, &SystemRandom::new())
            .map(|pair| Self { pair, private_scalar: d.to_vec() })
            .map_err(|_| CryptoError::InvalidKeyPair)
    }

    pub(crate) fn public_point(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    pub(crate) fn private_scalar(&self) -> Result<Vec<u8>, CryptoError> {
        Ok(self.private_scalar.clone())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.pair.sign(&SystemRandom::new(), message).map(|sig| sig.as_ref().to_vec()).map_err(|_| CryptoError::Signing)
    }
}

/// The private scalar inside ring's PKCS#8 v1 P-256 document: the RFC 5915 ECPrivateKey
/// starts `INTEGER 1, OCTET STRING (32 bytes)`, i.e. `02 01 01 04 20` then the scalar.
fn scalar_from_pkcs8(pkcs8: &[u8]) -> Result<Vec<u8>, CryptoError> {
    const MARKER: [u8; 5] = [0x02, 0x01, 0x01, 0x04, 0x20];
    let start = pkcs8.windows(MARKER.len()).position(|w| w == MARKER).ok_or(CryptoError::KeyEncoding)? + MARKER.len();
    pkcs8.get(start..start + 32).map(<[u8]>::to_vec).ok_or(CryptoError::KeyEncoding)
}

pub(super) fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    use ring::rand::SecureRandom as _;
    SystemRandom::new().fill(buf).map_err(|_| CryptoError::RandomGenerator)
}
