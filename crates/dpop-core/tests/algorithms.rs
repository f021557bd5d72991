//! Opt-in algorithms (EdDSA, ES384, RS256, PS256): accepted when allowed and the backend has
//! them, refused by the default ES256-only allow-list. Test proofs are signed with `ring`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{METHOD, NOW, URL, verifier_at};
use dpop_core::{Algorithm, DpopError, DpopVerifier, ProofRequest, Thumbprint, clock::ManualClock};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{Value, json};

/// A 2048-bit RSA test key (RFC 8017 RSAPrivateKey, DER), made for these tests only.
const RSA_DER: &[u8] = include_bytes!("data/rsa2048.der");

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS of the standard claims, signed by `sign`, with `jwk` in the header.
fn proof(alg: Algorithm, jwk: Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let header = json!({"typ": "dpop+jwt", "alg": alg.name(), "jwk": jwk});
    let claims = json!({"jti": format!("jti-{}", alg.name()), "htm": METHOD, "htu": URL, "iat": NOW});
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

fn eddsa_proof() -> (String, Value) {
    ed25519_key_proof(Algorithm::EdDSA)
}

/// A proof signed by a new Ed25519 key, under the JOSE name `alg` (`EdDSA` or `Ed25519`).
fn ed25519_key_proof(alg: Algorithm) -> (String, Value) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())});
    (proof(alg, jwk.clone(), |m| pair.sign(m).as_ref().to_vec()), jwk)
}

fn es384_proof() -> (String, Value) {
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P384_SHA384_FIXED_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-384", "x": b64(&point[1..49]), "y": b64(&point[49..])});
    (proof(Algorithm::ES384, jwk.clone(), |m| pair.sign(&rng, m).unwrap().as_ref().to_vec()), jwk)
}

fn rsa_proof(alg: Algorithm) -> (String, Value) {
    let pair = RsaKeyPair::from_der(RSA_DER).unwrap();
    let public: signature::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
    let jwk = json!({"kty": "RSA", "n": b64(&public.n), "e": b64(&public.e)});
    let padding: &'static dyn signature::RsaEncoding =
        if alg == Algorithm::RS256 { &signature::RSA_PKCS1_SHA256 } else { &signature::RSA_PSS_SHA256 };
    let proof = proof(alg, jwk.clone(), |m| {
        let mut sig = vec![0; pair.public().modulus_len()];
        pair.sign(padding, &SystemRandom::new(), m, &mut sig).unwrap();
        sig
    });
    (proof, jwk)
}

fn allowing(alg: Algorithm) -> DpopVerifier {
    DpopVerifier::builder().clock(ManualClock::at(NOW)).algorithms([Algorithm::ES256, alg]).build().unwrap()
}

async fn accepted_when_allowed(alg: Algorithm, (proof, jwk): (String, Value)) {
    let request = ProofRequest::new(METHOD, URL);
    let (default, _) = verifier_at(NOW);
    assert_eq!(default.verify([proof.as_bytes()], &request).await.unwrap_err(), DpopError::AlgorithmNotAllowed(alg));
    if !alg.is_supported() {
        let err = DpopVerifier::builder().algorithms([alg]).build().unwrap_err();
        assert_eq!(err, dpop_core::ConfigError::UnsupportedAlgorithm(alg));
        return;
    }
    let verifier = allowing(alg);
    let verified = verifier.verify([proof.as_bytes()], &request).await.unwrap();
    assert_eq!(verified.algorithm(), alg);
    assert_eq!(*verified.thumbprint(), Thumbprint::of_jwk_json(&jwk.to_string()).unwrap());

    // The same proof with one signature byte flipped fails.
    let mut forged = proof.into_bytes();
    let i = forged.len() - 10;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let err = allowing(alg).verify([&forged[..]], &request).await.unwrap_err();
    assert_eq!(err, DpopError::InvalidSignature);
}

#[tokio::test]
async fn eddsa() {
    accepted_when_allowed(Algorithm::EdDSA, eddsa_proof()).await;
}

/// RFC 9864 §2.2: `Ed25519` is the fully-specified name of EdDSA over Ed25519. Some clients sign
/// under it; an allow-list holding either name accepts both, and advertises both.
#[tokio::test]
async fn ed25519_is_eddsa_under_its_fully_specified_name() {
    let request = ProofRequest::new(METHOD, URL);
    let (proof, jwk) = ed25519_key_proof(Algorithm::Ed25519);
    assert_eq!(Algorithm::from_name("Ed25519"), Some(Algorithm::Ed25519));

    let (default, _) = verifier_at(NOW);
    let err = default.verify([proof.as_bytes()], &request).await.unwrap_err();
    assert_eq!(err, DpopError::AlgorithmNotAllowed(Algorithm::Ed25519));
    if !Algorithm::EdDSA.is_supported() {
        // One scheme under two names: the error may name either.
        let err = DpopVerifier::builder().algorithms([Algorithm::Ed25519]).build().unwrap_err();
        assert!(
            matches!(err, dpop_core::ConfigError::UnsupportedAlgorithm(alg) if alg.scheme() == Algorithm::EdDSA),
            "{err:?}"
        );
        return;
    }
    for allowed in [Algorithm::EdDSA, Algorithm::Ed25519] {
        // Each verifier on its own clock has its own replay store: the same proof is new to each.
        let verifier = DpopVerifier::builder().clock(ManualClock::at(NOW)).algorithms([allowed]).build().unwrap();
        assert_eq!(verifier.algorithms().to_space_separated(), "EdDSA Ed25519", "allowing {allowed}");
        let verified = verifier.verify([proof.as_bytes()], &request).await.unwrap();
        assert_eq!(verified.algorithm(), Algorithm::Ed25519, "allowing {allowed}");
        assert_eq!(*verified.thumbprint(), Thumbprint::of_jwk_json(&jwk.to_string()).unwrap());
    }

    // The same signature relabeled ES256, a name the Ed25519 key does not fit, is refused.
    let relabeled = {
        let (header, rest) = proof.split_once('.').unwrap();
        let header = String::from_utf8(URL_SAFE_NO_PAD.decode(header).unwrap())
            .unwrap()
            .replace(r#""alg":"Ed25519""#, r#""alg":"ES256""#);
        format!("{}.{rest}", b64(header.as_bytes()))
    };
    let err = allowing(Algorithm::Ed25519).verify([relabeled.as_bytes()], &request).await.unwrap_err();
    assert_eq!(err, DpopError::KeyAlgorithmMismatch);
}

#[tokio::test]
async fn es384() {
    accepted_when_allowed(Algorithm::ES384, es384_proof()).await;
}

#[tokio::test]
async fn rs256() {
    accepted_when_allowed(Algorithm::RS256, rsa_proof(Algorithm::RS256)).await;
}

#[tokio::test]
async fn ps256() {
    accepted_when_allowed(Algorithm::PS256, rsa_proof(Algorithm::PS256)).await;
}

#[tokio::test]
async fn an_rs256_signature_does_not_pass_as_ps256() {
    if !Algorithm::PS256.is_supported() {
        return;
    }
    let (proof, _) = rsa_proof(Algorithm::RS256);
    let relabeled = {
        let (header, rest) = proof.split_once('.').unwrap();
        let header = String::from_utf8(URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap().replace("RS256", "PS256");
        format!("{}.{rest}", b64(header.as_bytes()))
    };
    let err =
        allowing(Algorithm::PS256).verify([relabeled.as_bytes()], &ProofRequest::new(METHOD, URL)).await.unwrap_err();
    assert_eq!(err, DpopError::InvalidSignature);
}

#[tokio::test]
async fn an_eddsa_header_with_an_ec_key_is_rejected() {
    if !Algorithm::EdDSA.is_supported() {
        return;
    }
    let (proof, _) = es384_proof();
    let relabeled = {
        let (header, rest) = proof.split_once('.').unwrap();
        let header = String::from_utf8(URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap().replace("ES384", "EdDSA");
        format!("{}.{rest}", b64(header.as_bytes()))
    };
    let err =
        allowing(Algorithm::EdDSA).verify([relabeled.as_bytes()], &ProofRequest::new(METHOD, URL)).await.unwrap_err();
    assert_eq!(err, DpopError::KeyAlgorithmMismatch);
}
