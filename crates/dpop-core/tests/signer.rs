//! The client side: keys and proofs made by [`DpopKey`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{METHOD, NOW, URL, verifier_at};
use dpop_core::{DpopKey, ProofRequest, Thumbprint};

#[test]
fn a_private_jwk_round_trips() {
    let key = DpopKey::generate().unwrap();
    let private = key.private_jwk().unwrap();
    assert!(private.get("d").is_some());
    let loaded = DpopKey::from_jwk(&private.to_string()).unwrap();
    assert_eq!(loaded.thumbprint(), key.thumbprint());
    assert_eq!(loaded.public_jwk(), key.public_jwk());
}

#[test]
fn the_thumbprint_is_that_of_the_public_jwk() {
    let key = DpopKey::generate().unwrap();
    assert_eq!(Thumbprint::of_jwk_json(&key.public_jwk().to_string()).unwrap(), key.thumbprint());
}

#[test]
fn a_private_key_that_does_not_match_its_public_key_is_refused() {
    let (a, b) = (DpopKey::generate().unwrap(), DpopKey::generate().unwrap());
    let mut mixed = a.private_jwk().unwrap();
    mixed["d"] = b.private_jwk().unwrap()["d"].clone();
    assert!(DpopKey::from_jwk(&mixed.to_string()).is_err());
}

#[test]
fn non_p256_keys_are_refused() {
    assert!(DpopKey::from_jwk(r#"{"kty":"OKP","crv":"Ed25519","x":"AA","d":"AA"}"#).is_err());
    assert!(DpopKey::from_jwk("not json").is_err());
    assert!(DpopKey::from_jwk(r#"{"kty":"EC","crv":"P-256"}"#).is_err());
}

#[tokio::test]
async fn a_loaded_key_signs_verifiable_proofs_with_nonce_and_token() {
    let key = DpopKey::from_jwk(&DpopKey::generate().unwrap().private_jwk().unwrap().to_string()).unwrap();
    let proof =
        key.proof(METHOD, URL).access_token("tok").nonce("n-1").issued_at(NOW as i64).jti("j-1").sign().unwrap();
    let (verifier, _) = verifier_at(NOW);
    let verified =
        verifier.verify([proof.as_bytes()], &ProofRequest::new(METHOD, URL).access_token("tok")).await.unwrap();
    assert_eq!(verified.nonce(), Some("n-1"));
    assert_eq!(verified.jti(), "j-1");
}

#[test]
fn default_jtis_are_unique() {
    let key = DpopKey::generate().unwrap();
    let a = key.proof(METHOD, URL).claims().unwrap();
    let b = key.proof(METHOD, URL).claims().unwrap();
    assert_ne!(a["jti"], b["jti"]);
    assert!(a["jti"].as_str().unwrap().len() >= 22);
}

#[test]
fn htu_leaves_out_query_and_fragment() {
    let key = DpopKey::generate().unwrap();
    let claims = key.proof("GET", "https://mcp.example.com/mcp?session=1#top").claims().unwrap();
    assert_eq!(claims["htu"], "https://mcp.example.com/mcp");
}
