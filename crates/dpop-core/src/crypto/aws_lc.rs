//! The aws-lc-rs backend.

use aws_lc_rs::encoding::AsBigEndian as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, ParsedPublicKey, RsaPublicKeyComponents};

use super::CryptoError;
use crate::error::DpopError;
use crate::proof::algorithm::Algorithm;
use crate::proof::jwk::PublicKey;

pub(super) const NAME: &str = "aws-lc-rs";

pub(super) fn supports(_alg: Algorithm) -> bool {
    true
}

/// A key parsed once: EC points and Ed25519 keys as aws-lc keys (validated on parsing), RSA
/// keys as their components.
pub(super) enum PreparedKey {
    Parsed(ParsedPublicKey),
    Rsa { params: &'static signature::RsaParameters, n: Box<[u8]>, e: Box<[u8]> },
}

pub(super) fn prepare(alg: Algorithm, key: &PublicKey) -> Result<PreparedKey, DpopError> {
    match (alg.scheme(), key) {
        (Algorithm::RS256 | Algorithm::PS256, PublicKey::Rsa { n, e }) => {
            let params = if alg == Algorithm::RS256 {
                &signature::RSA_PKCS1_2048_8192_SHA256
            } else {
                &signature::RSA_PSS_2048_8192_SHA256
            };
            Ok(PreparedKey::Rsa { params, n: n.clone(), e: e.clone() })
        }
        (_, PublicKey::Ec { point, .. }) => parse(alg, point).map(PreparedKey::Parsed),
        (_, PublicKey::Ed25519 { x }) => parse(alg, x).map(PreparedKey::Parsed),
        _ => Err(DpopError::KeyAlgorithmMismatch),
    }
}

pub(super) fn verify(key: &PreparedKey, message: &[u8], sig: &[u8]) -> Result<(), DpopError> {
    let verified = match key {
        PreparedKey::Parsed(parsed) => parsed.verify_sig(message, sig),
        PreparedKey::Rsa { params, n, e } => RsaPublicKeyComponents { n: &**n, e: &**e }.verify(params, message, sig),
    };
    verified.map_err(|_| DpopError::InvalidSignature)
}

/// Parses an EC point or Ed25519 key; an off-curve point is refused here.
fn parse(alg: Algorithm, bytes: &[u8]) -> Result<ParsedPublicKey, DpopError> {
    let algorithm: &'static dyn signature::VerificationAlgorithm = match alg.scheme() {
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        Algorithm::ES512 => &signature::ECDSA_P521_SHA512_FIXED,
        Algorithm::EdDSA | Algorithm::Ed25519 => &signature::ED25519,
        Algorithm::RS256 | Algorithm::PS256 => return Err(DpopError::KeyAlgorithmMismatch),
    };
    ParsedPublicKey::new(algorithm, bytes).map_err(|_| DpopError::InvalidKey("not a point on the curve"))
}

/// An ES256 key pair for signing proofs.
pub(crate) struct Es256KeyPair(EcdsaKeyPair);

impl Es256KeyPair {
    pub(crate) fn generate() -> Result<Self, CryptoError> {
        EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
            .map(Self)
            .map_err(|_| CryptoError::KeyGeneration)
    }

    pub(crate) fn from_private_key(d: &[u8], public_point: &[u8]) -> Result<Self, CryptoError> {
        EcdsaKeyPair::from_private_key_and_public_key(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, d, public_point)
            .map(Self)
            .map_err(|_| CryptoError::InvalidKeyPair)
    }

    /// The uncompressed public point `04 || x || y`.
    pub(crate) fn public_point(&self) -> Vec<u8> {
        self.0.public_key().as_ref().to_vec()
    }

    /// The 32-byte private scalar.
    pub(crate) fn private_scalar(&self) -> Result<Vec<u8>, CryptoError> {
        let bin = self.0.private_key().as_be_bytes().map_err(|_| CryptoError::KeyEncoding)?;
        Ok(bin.as_ref().to_vec())
    }

    /// Signs `message`, returning the 64-byte `r || s` JWS signature.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.0.sign(&SystemRandom::new(), message).map(|sig| sig.as_ref().to_vec()).map_err(|_| CryptoError::Signing)
    }
}

pub(super) fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    aws_lc_rs::rand::fill(buf).map_err(|_| CryptoError::RandomGenerator)
}
