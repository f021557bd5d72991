//! One negative test per RFC 9449 check: start from a valid proof made with the proof builder,
//! change one thing, and expect exactly the error of the check that must catch it. Deleting any
//! check makes its test fail (the mutated proof then verifies, or fails later with another error).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use common::{Fixture, METHOD, NOW, TOKEN, URL, verifier_at};
use dpop_core::{Algorithm, DpopError, DpopKey, DpopVerifier, ProofRequest, clock::ManualClock};
use serde_json::{Value, json};

async fn rejects(f: &Fixture, proof: &str, expected: DpopError) {
    assert_eq!(f.verify(proof).await.unwrap_err(), expected);
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

// --- the baseline: what every mutation starts from ---

#[tokio::test]
async fn the_unmutated_proof_verifies() {
    let f = Fixture::new();
    let verified = f.verify(&f.valid()).await.unwrap();
    assert_eq!(verified.thumbprint(), &f.key.thumbprint());
    assert_eq!(verified.algorithm(), Algorithm::ES256);
    assert_eq!(verified.issued_at(), NOW as i64);
}

// --- §4.3 check 1: exactly one DPoP header field ---

#[tokio::test]
async fn no_dpop_header_is_rejected() {
    let f = Fixture::new();
    assert_eq!(f.verify_values(&[]).await.unwrap_err(), DpopError::MissingProof);
}

#[tokio::test]
async fn two_dpop_headers_are_rejected() {
    let f = Fixture::new();
    let (a, b) = (f.valid(), f.valid());
    let err = f.verify_values(&[a.as_bytes(), b.as_bytes()]).await.unwrap_err();
    assert_eq!(err, DpopError::MultipleProofs);
}

#[tokio::test]
async fn a_comma_list_of_proofs_in_one_field_is_rejected() {
    let f = Fixture::new();
    let list = format!("{}, {}", f.valid(), f.valid());
    assert!(matches!(f.verify(&list).await.unwrap_err(), DpopError::MalformedProof(_)));
}

// --- size bound, before decoding ---

#[tokio::test]
async fn a_proof_over_the_default_8_kib_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["padding"] = json!("x".repeat(8 * 1024)));
    rejects(&f, &proof, DpopError::ProofTooLarge { limit: 8 * 1024 }).await;
}

#[tokio::test]
async fn the_size_limit_is_configurable() {
    let clock = ManualClock::at(NOW);
    let verifier = DpopVerifier::builder().clock(clock.clone()).max_proof_len(200).build().unwrap();
    let f = Fixture::with_verifier(verifier, clock);
    rejects(&f, &f.valid(), DpopError::ProofTooLarge { limit: 200 }).await;
}

// --- §4.3 check 2: one well-formed compact JWS ---

#[tokio::test]
async fn two_segments_are_rejected() {
    let f = Fixture::new();
    let proof = f.valid();
    let two = &proof[..proof.rfind('.').unwrap()];
    assert!(matches!(f.verify(two).await.unwrap_err(), DpopError::MalformedProof(_)));
}

#[tokio::test]
async fn four_segments_are_rejected() {
    let f = Fixture::new();
    let four = format!("{}.AAAA", f.valid());
    assert!(matches!(f.verify(&four).await.unwrap_err(), DpopError::MalformedProof(_)));
}

#[tokio::test]
async fn an_empty_signature_segment_is_rejected() {
    let f = Fixture::new();
    let proof = f.valid();
    let unsigned = &proof[..=proof.rfind('.').unwrap()];
    assert!(matches!(f.verify(unsigned).await.unwrap_err(), DpopError::MalformedProof(_)));
}

#[tokio::test]
async fn base64_padding_is_rejected() {
    let f = Fixture::new();
    let padded = format!("{}=", f.valid());
    rejects(&f, &padded, DpopError::MalformedProof("signature")).await;
}

#[tokio::test]
async fn whitespace_inside_the_jws_is_rejected() {
    let f = Fixture::new();
    let proof = f.valid();
    let spaced = format!("{} {}", &proof[..10], &proof[10..]);
    rejects(&f, &spaced, DpopError::MalformedProof("header")).await;
}

#[tokio::test]
async fn the_standard_base64_alphabet_is_rejected() {
    let f = Fixture::new();
    // "~~~" encodes to "fn5+" in the standard alphabet: a `+` that base64url never has.
    let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": f.key.public_jwk(), "z": "~~~~~~"}).to_string();
    let standard = STANDARD_NO_PAD.encode(&header);
    assert!(standard.contains('+') || standard.contains('/'), "precondition: {standard}");
    let proof = f.valid();
    let rest = &proof[proof.find('.').unwrap()..];
    rejects(&f, &format!("{standard}{rest}"), DpopError::MalformedProof("header")).await;
}

#[tokio::test]
async fn non_utf8_bytes_are_rejected() {
    let f = Fixture::new();
    let mut bytes = f.valid().into_bytes();
    bytes[5] = 0xff;
    let err = f.verify_values(&[&bytes]).await.unwrap_err();
    assert_eq!(err, DpopError::MalformedProof("encoding"));
}

#[tokio::test]
async fn a_header_that_is_not_json_is_rejected() {
    let f = Fixture::new();
    rejects(&f, &f.raw("not json", &f.claims_text()), DpopError::MalformedProof("header")).await;
}

#[tokio::test]
async fn a_header_that_is_a_json_array_is_rejected() {
    let f = Fixture::new();
    rejects(&f, &f.raw("[1,2]", &f.claims_text()), DpopError::MalformedProof("header")).await;
}

#[tokio::test]
async fn trailing_bytes_after_the_claims_object_are_rejected() {
    let f = Fixture::new();
    let claims = format!("{}{{}}", f.claims_text());
    rejects(&f, &f.raw(&f.header_text(), &claims), DpopError::MalformedProof("claims")).await;
}

// --- duplicate and excess JSON members ---

#[tokio::test]
async fn a_duplicate_header_member_is_rejected() {
    let f = Fixture::new();
    let header = f.header_text().replacen('{', r#"{"typ":"dpop+jwt","#, 1);
    rejects(&f, &f.raw(&header, &f.claims_text()), DpopError::DuplicateMember("header")).await;
}

#[tokio::test]
async fn a_duplicate_claim_is_rejected() {
    let f = Fixture::new();
    // A second `htu` after the first: a last-wins parser would read another resource.
    let claims = f.claims_text().replacen('}', r#","htu":"https://evil.example/mcp"}"#, 1);
    rejects(&f, &f.raw(&f.header_text(), &claims), DpopError::DuplicateMember("claims")).await;
}

#[tokio::test]
async fn a_duplicate_jwk_member_is_rejected() {
    let f = Fixture::new();
    let header = f.header_text().replacen(r#""kty":"EC""#, r#""kty":"EC","kty":"EC""#, 1);
    rejects(&f, &f.raw(&header, &f.claims_text()), DpopError::DuplicateMember("jwk")).await;
}

#[tokio::test]
async fn a_duplicate_unknown_member_is_rejected() {
    let f = Fixture::new();
    let claims = f.claims_text().replacen('{', r#"{"x":1,"x":2,"#, 1);
    rejects(&f, &f.raw(&f.header_text(), &claims), DpopError::DuplicateMember("claims")).await;
}

#[tokio::test]
async fn a_duplicate_member_spelled_with_escapes_is_rejected() {
    let f = Fixture::new();
    let claims = f.claims_text().replacen('{', r#"{"ht\u0075":"https://evil.example/mcp","#, 1);
    rejects(&f, &f.raw(&f.header_text(), &claims), DpopError::DuplicateMember("claims")).await;
}

#[tokio::test]
async fn too_many_claims_are_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| {
        for i in 0..40 {
            c[format!("extra{i}")] = json!(i);
        }
    });
    rejects(&f, &proof, DpopError::TooManyMembers("claims")).await;
}

#[tokio::test]
async fn deeply_nested_json_is_rejected_without_recursing_unboundedly() {
    let f = Fixture::new();
    // Skipping unknown members counts depth: 16 levels pass, 17 do not.
    let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let deep = f.claims_text().replacen('{', &format!("{{\"deep\":{},", nested(1000)), 1);
    rejects(&f, &f.raw(&f.header_text(), &deep), DpopError::MalformedProof("JSON nesting depth")).await;
    let too_deep = f.claims_text().replacen('{', &format!("{{\"deep\":{},", nested(17)), 1);
    rejects(&f, &f.raw(&f.header_text(), &too_deep), DpopError::MalformedProof("JSON nesting depth")).await;
    let objects = f.header_text().replacen('{', &format!("{{\"x\":{}1{},", "{\"a\":".repeat(17), "}".repeat(17)), 1);
    rejects(&f, &f.raw(&objects, &f.claims_text()), DpopError::MalformedProof("JSON nesting depth")).await;
    let fine = f.claims_text().replacen('{', &format!("{{\"deep\":{},", nested(16)), 1);
    f.verify(&f.raw(&f.header_text(), &fine)).await.unwrap();
}

// --- §4.3 check 3: required claims with the right JSON types ---

#[tokio::test]
async fn a_missing_jti_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| _ = c.as_object_mut().unwrap().remove("jti"));
    rejects(&f, &proof, DpopError::MissingMember("jti")).await;
}

#[tokio::test]
async fn a_missing_htm_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| _ = c.as_object_mut().unwrap().remove("htm"));
    rejects(&f, &proof, DpopError::MissingMember("htm")).await;
}

#[tokio::test]
async fn a_missing_htu_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| _ = c.as_object_mut().unwrap().remove("htu"));
    rejects(&f, &proof, DpopError::MissingMember("htu")).await;
}

#[tokio::test]
async fn a_missing_iat_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| _ = c.as_object_mut().unwrap().remove("iat"));
    rejects(&f, &proof, DpopError::MissingMember("iat")).await;
}

#[tokio::test]
async fn iat_as_a_string_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["iat"] = json!(NOW.to_string()));
    rejects(&f, &proof, DpopError::InvalidMember("iat")).await;
}

#[tokio::test]
async fn iat_as_a_boolean_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["iat"] = json!(true));
    rejects(&f, &proof, DpopError::InvalidMember("iat")).await;
}

#[tokio::test]
async fn an_astronomical_iat_is_rejected() {
    let f = Fixture::new();
    let claims = f.claims_text().replacen(&format!("\"iat\":{NOW}"), "\"iat\":1e300", 1);
    rejects(&f, &f.raw(&f.header_text(), &claims), DpopError::InvalidMember("iat")).await;
}

#[tokio::test]
async fn a_fractional_iat_is_a_numeric_date() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["iat"] = json!(NOW as f64 + 0.5));
    assert_eq!(f.verify(&proof).await.unwrap().issued_at(), NOW as i64);
}

#[tokio::test]
async fn htu_as_a_number_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["htu"] = json!(42));
    rejects(&f, &proof, DpopError::InvalidMember("htu")).await;
}

#[tokio::test]
async fn htm_as_an_array_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["htm"] = json!(["POST"]));
    rejects(&f, &proof, DpopError::InvalidMember("htm")).await;
}

#[tokio::test]
async fn jti_as_a_number_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["jti"] = json!(7));
    rejects(&f, &proof, DpopError::InvalidMember("jti")).await;
}

#[tokio::test]
async fn an_empty_jti_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["jti"] = json!(""));
    rejects(&f, &proof, DpopError::InvalidMember("jti")).await;
}

#[tokio::test]
async fn a_jti_over_256_bytes_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["jti"] = json!("j".repeat(257)));
    rejects(&f, &proof, DpopError::JtiTooLong { limit: 256 }).await;
    let at_limit = f.mutated(|_, c| c["jti"] = json!("j".repeat(256)));
    f.verify(&at_limit).await.unwrap();
}

// --- §4.3 check 4: typ ---

#[tokio::test]
async fn a_missing_typ_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|h, _| _ = h.as_object_mut().unwrap().remove("typ"));
    rejects(&f, &proof, DpopError::MissingMember("typ")).await;
}

#[tokio::test]
async fn typ_jwt_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|h, _| h["typ"] = json!("JWT"));
    rejects(&f, &proof, DpopError::WrongType).await;
}

#[tokio::test]
async fn typ_access_token_jwt_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|h, _| h["typ"] = json!("at+jwt"));
    rejects(&f, &proof, DpopError::WrongType).await;
}

// --- §4.3 check 5: alg ---

#[tokio::test]
async fn alg_none_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|h, _| h["alg"] = json!("none"));
    rejects(&f, &proof, DpopError::UnsupportedAlgorithm).await;
}

#[tokio::test]
async fn a_symmetric_alg_is_rejected() {
    let f = Fixture::new();
    for alg in ["HS256", "HS384", "HS512"] {
        let proof = f.mutated(|h, _| h["alg"] = json!(alg));
        rejects(&f, &proof, DpopError::UnsupportedAlgorithm).await;
    }
}

#[tokio::test]
async fn an_alg_in_the_wrong_case_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|h, _| h["alg"] = json!("es256"));
    rejects(&f, &proof, DpopError::UnsupportedAlgorithm).await;
}

#[tokio::test]
async fn a_missing_alg_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|h, _| _ = h.as_object_mut().unwrap().remove("alg"));
    rejects(&f, &proof, DpopError::MissingMember("alg")).await;
}

#[tokio::test]
async fn a_known_alg_outside_the_allow_list_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|h, _| h["alg"] = json!("RS256"));
    rejects(&f, &proof, DpopError::AlgorithmNotAllowed(Algorithm::RS256)).await;
}

// --- RFC 7515 §4.1.11: crit ---

#[tokio::test]
async fn a_crit_header_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|h, _| {
        h["crit"] = json!(["exp"]);
        h["exp"] = json!(1);
    });
    rejects(&f, &proof, DpopError::CriticalHeader).await;
}

// --- §4.3 check 7 and §4.2 jwk: the key ---

#[tokio::test]
async fn a_missing_jwk_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|h, _| _ = h.as_object_mut().unwrap().remove("jwk"));
    rejects(&f, &proof, DpopError::MissingMember("jwk")).await;
}

#[tokio::test]
async fn a_kid_instead_of_a_jwk_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|h, _| {
        h.as_object_mut().unwrap().remove("jwk");
        h["kid"] = json!("key-1");
    });
    rejects(&f, &proof, DpopError::MissingMember("jwk")).await;
}

#[tokio::test]
async fn a_jku_or_x5u_or_x5c_key_reference_is_rejected() {
    let f = Fixture::new();
    for (name, value) in
        [("jku", json!("https://evil.example/jwks")), ("x5u", json!("https://evil.example/c")), ("x5c", json!(["MII"]))]
    {
        let proof = f.mutated(|h, _| h[name] = value);
        rejects(&f, &proof, DpopError::ExternalKeyReference).await;
    }
}

#[tokio::test]
async fn a_jwk_with_the_private_key_is_rejected() {
    let f = Fixture::new();
    let private = f.key.private_jwk().unwrap();
    let proof = f.mutated(|h, _| h["jwk"] = private);
    rejects(&f, &proof, DpopError::PrivateKey).await;
}

#[tokio::test]
async fn each_rsa_private_member_is_rejected() {
    let f = Fixture::new();
    for member in ["p", "q", "dp", "dq", "qi", "oth"] {
        let proof = f.mutated(|h, _| h["jwk"][member] = json!("AQAB"));
        rejects(&f, &proof, DpopError::PrivateKey).await;
    }
}

#[tokio::test]
async fn a_symmetric_jwk_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|h, _| h["jwk"] = json!({"kty": "oct", "k": "c2VjcmV0"}));
    rejects(&f, &proof, DpopError::PrivateKey).await;
}

#[tokio::test]
async fn a_p384_key_with_es256_is_rejected() {
    let f = Fixture::new();
    let coordinate = b64(&[7u8; 48]);
    let proof = f.mutated(|h, _| h["jwk"] = json!({"kty": "EC", "crv": "P-384", "x": coordinate, "y": coordinate}));
    rejects(&f, &proof, DpopError::KeyAlgorithmMismatch).await;
}

#[tokio::test]
async fn an_rsa_key_with_es256_is_rejected() {
    let f = Fixture::new();
    let n = b64(&[0xc5u8; 256]);
    let proof = f.mutated(|h, _| h["jwk"] = json!({"kty": "RSA", "n": n, "e": "AQAB"}));
    rejects(&f, &proof, DpopError::KeyAlgorithmMismatch).await;
}

#[tokio::test]
async fn an_ed25519_key_with_es256_is_rejected() {
    let f = Fixture::new();
    let x = b64(&[9u8; 32]);
    let proof = f.mutated(|h, _| h["jwk"] = json!({"kty": "OKP", "crv": "Ed25519", "x": x}));
    rejects(&f, &proof, DpopError::KeyAlgorithmMismatch).await;
}

#[tokio::test]
async fn a_coordinate_of_the_wrong_size_is_rejected() {
    let f = Fixture::new();
    let short = b64(&[7u8; 31]);
    let proof = f.mutated(|h, _| h["jwk"]["x"] = json!(short));
    rejects(&f, &proof, DpopError::InvalidKey("wrong coordinate size")).await;
}

#[tokio::test]
async fn an_unknown_curve_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|h, _| h["jwk"]["crv"] = json!("secp256k1"));
    rejects(&f, &proof, DpopError::InvalidKey("unsupported curve")).await;
}

#[tokio::test]
async fn an_unknown_key_type_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|h, _| h["jwk"]["kty"] = json!("XYZ"));
    rejects(&f, &proof, DpopError::InvalidKey("unsupported key type")).await;
}

#[tokio::test]
async fn a_point_off_the_curve_is_rejected() {
    let f = Fixture::new();
    // (1, 1) is not on P-256: y² = 1 but x³ - 3x + b ≠ 1.
    let mut one = [0u8; 32];
    one[31] = 1;
    let proof = f.mutated(|h, _| {
        h["jwk"]["x"] = json!(b64(&one));
        h["jwk"]["y"] = json!(b64(&one));
    });
    let err = f.verify(&proof).await.unwrap_err();
    if dpop_core::crypto_backend() == "ring" {
        // ring validates the point inside verification and does not say which failed.
        assert_eq!(err, DpopError::InvalidSignature);
    } else {
        assert_eq!(err, DpopError::InvalidKey("not a point on the curve"));
    }
}

fn rsa_verifier() -> Option<Fixture> {
    if !Algorithm::RS256.is_supported() {
        return None;
    }
    let clock = ManualClock::at(NOW);
    let verifier =
        DpopVerifier::builder().clock(clock.clone()).algorithms([Algorithm::ES256, Algorithm::RS256]).build().unwrap();
    Some(Fixture::with_verifier(verifier, clock))
}

#[tokio::test]
async fn an_rsa_modulus_under_2048_bits_is_rejected() {
    let Some(f) = rsa_verifier() else { return };
    let n = b64(&[0xc5u8; 128]);
    let proof = f.mutated(|h, _| {
        h.as_object_mut()
            .unwrap()
            .extend([("alg".into(), json!("RS256")), ("jwk".into(), json!({"kty": "RSA", "n": n, "e": "AQAB"}))])
    });
    rejects(&f, &proof, DpopError::InvalidKey("RSA modulus too small")).await;
}

#[tokio::test]
async fn an_rsa_modulus_over_4096_bits_is_rejected() {
    let Some(f) = rsa_verifier() else { return };
    let n = b64(&[0xc5u8; 1024]);
    let proof = f.mutated(|h, _| {
        h.as_object_mut()
            .unwrap()
            .extend([("alg".into(), json!("RS256")), ("jwk".into(), json!({"kty": "RSA", "n": n, "e": "AQAB"}))])
    });
    rejects(&f, &proof, DpopError::InvalidKey("RSA modulus too large")).await;
}

#[tokio::test]
async fn an_even_rsa_exponent_is_rejected() {
    let Some(f) = rsa_verifier() else { return };
    let n = b64(&[0xc5u8; 256]);
    let proof = f.mutated(|h, _| {
        h.as_object_mut()
            .unwrap()
            .extend([("alg".into(), json!("RS256")), ("jwk".into(), json!({"kty": "RSA", "n": n, "e": "AQAA"}))])
    });
    rejects(&f, &proof, DpopError::InvalidKey("invalid RSA exponent")).await;
}

#[tokio::test]
async fn a_2048_bit_rsa_key_with_a_forged_signature_reaches_signature_verification() {
    let Some(f) = rsa_verifier() else { return };
    let n = b64(&[0xc5u8; 256]);
    let proof = f.mutated(|h, _| {
        h.as_object_mut()
            .unwrap()
            .extend([("alg".into(), json!("RS256")), ("jwk".into(), json!({"kty": "RSA", "n": n, "e": "AQAB"}))])
    });
    rejects(&f, &proof, DpopError::InvalidSignature).await;
}

// --- §4.3 check 6: the signature ---

#[tokio::test]
async fn a_signature_by_another_key_is_rejected() {
    let f = Fixture::new();
    let other = DpopKey::generate().unwrap();
    let (header, claims) = f.parts();
    let proof = other.sign_jws(&header.to_string(), &claims.to_string()).unwrap();
    rejects(&f, &proof, DpopError::InvalidSignature).await;
}

#[tokio::test]
async fn altered_claims_under_the_original_signature_are_rejected() {
    let f = Fixture::new();
    let proof = f.valid();
    let parts: Vec<&str> = proof.split('.').collect();
    let (_, mut claims) = f.parts();
    claims["jti"] = json!("another-jti");
    let forged = format!("{}.{}.{}", parts[0], b64(claims.to_string().as_bytes()), parts[2]);
    rejects(&f, &forged, DpopError::InvalidSignature).await;
}

#[tokio::test]
async fn a_truncated_signature_is_rejected() {
    let f = Fixture::new();
    let proof = f.valid();
    let truncated = &proof[..proof.len() - 6]; // 80 base64 characters: 60 whole bytes
    rejects(&f, truncated, DpopError::InvalidSignature).await;
}

#[tokio::test]
async fn a_der_encoded_ecdsa_signature_is_rejected() {
    let f = Fixture::new();
    let proof = f.valid();
    let (input, sig) = proof.rsplit_once('.').unwrap();
    let raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    // SEQUENCE { INTEGER r, INTEGER s } with both high bits cleared: DER, not JOSE r || s.
    let mut der = vec![0x30, 68, 0x02, 32];
    der.extend_from_slice(&raw[..32]);
    der.extend_from_slice(&[0x02, 32]);
    der.extend_from_slice(&raw[32..]);
    rejects(&f, &format!("{input}.{}", b64(&der)), DpopError::InvalidSignature).await;
}

// --- a header seen before: the verifier recalls its header checks, never the rest ---

#[tokio::test]
async fn a_header_recalled_from_an_earlier_proof_still_has_its_signature_and_claims_checked() {
    let f = Fixture::new();
    // The first proof's header (the fixture key's, byte for byte) is kept once it verified.
    f.verify(&f.valid()).await.unwrap();

    let (header, claims) = f.parts();
    let by_other_key = DpopKey::generate().unwrap().sign_jws(&header.to_string(), &claims.to_string()).unwrap();
    rejects(&f, &by_other_key, DpopError::InvalidSignature).await;

    let proof = f.valid();
    let parts: Vec<&str> = proof.split('.').collect();
    let mut altered = claims.clone();
    altered["jti"] = json!("another-jti");
    let forged = format!("{}.{}.{}", parts[0], b64(altered.to_string().as_bytes()), parts[2]);
    rejects(&f, &forged, DpopError::InvalidSignature).await;

    rejects(&f, &f.mutated(|_, c| c["htm"] = json!("GET")), DpopError::MethodMismatch).await;
    rejects(&f, &f.mutated(|_, c| c["ath"] = json!(b64(&[0u8; 32]))), DpopError::AccessTokenHashMismatch).await;
    f.verify(&f.valid()).await.unwrap();
}

// --- §4.3 check 8: htm ---

#[tokio::test]
async fn another_method_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["htm"] = json!("GET"));
    rejects(&f, &proof, DpopError::MethodMismatch).await;
}

#[tokio::test]
async fn the_method_is_case_sensitive() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["htm"] = json!("post"));
    rejects(&f, &proof, DpopError::MethodMismatch).await;
}

// --- §4.3 check 9: htu ---

#[tokio::test]
async fn another_path_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["htu"] = json!("https://mcp.example.com/admin"));
    rejects(&f, &proof, DpopError::UriMismatch).await;
}

#[tokio::test]
async fn another_host_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["htu"] = json!("https://evil.example.com/mcp"));
    rejects(&f, &proof, DpopError::UriMismatch).await;
}

#[tokio::test]
async fn a_trailing_slash_is_another_resource() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["htu"] = json!("https://mcp.example.com/mcp/"));
    rejects(&f, &proof, DpopError::UriMismatch).await;
}

#[tokio::test]
async fn htu_with_userinfo_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["htu"] = json!("https://user@mcp.example.com/mcp"));
    rejects(&f, &proof, DpopError::InvalidUri).await;
}

#[tokio::test]
async fn a_relative_htu_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["htu"] = json!("/mcp"));
    rejects(&f, &proof, DpopError::InvalidUri).await;
}

#[tokio::test]
async fn a_non_http_htu_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["htu"] = json!("wss://mcp.example.com/mcp"));
    rejects(&f, &proof, DpopError::InvalidUri).await;
}

#[tokio::test]
async fn htu_query_and_fragment_are_ignored() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["htu"] = json!("HTTPS://MCP.example.com:443/./mcp?session=1#frag"));
    f.verify(&proof).await.unwrap();
}

// --- §4.3 check 11: iat window ---

#[tokio::test]
async fn iat_one_second_past_the_window_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["iat"] = json!(NOW - 301));
    rejects(&f, &proof, DpopError::IssuedTooLongAgo).await;
}

#[tokio::test]
async fn iat_one_second_beyond_the_future_skew_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["iat"] = json!(NOW + 301));
    rejects(&f, &proof, DpopError::IssuedInFuture).await;
}

#[tokio::test]
async fn iat_at_both_window_edges_is_accepted() {
    let f = Fixture::new();
    f.verify(&f.mutated(|_, c| c["iat"] = json!(NOW - 300))).await.unwrap();
    f.verify(&f.mutated(|_, c| c["iat"] = json!(NOW + 300))).await.unwrap();
}

#[tokio::test]
async fn a_negative_iat_is_not_a_numeric_date() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["iat"] = json!(-1));
    rejects(&f, &proof, DpopError::InvalidMember("iat")).await;
}

#[tokio::test]
async fn the_window_is_configurable_both_ways() {
    let clock = ManualClock::at(NOW);
    let verifier = DpopVerifier::builder()
        .clock(clock.clone())
        .max_age(Duration::from_secs(60))
        .max_clock_skew(Duration::from_secs(5))
        .build()
        .unwrap();
    let f = Fixture::with_verifier(verifier, clock);
    rejects(&f, &f.mutated(|_, c| c["iat"] = json!(NOW - 61)), DpopError::IssuedTooLongAgo).await;
    rejects(&f, &f.mutated(|_, c| c["iat"] = json!(NOW + 6)), DpopError::IssuedInFuture).await;
    f.verify(&f.mutated(|_, c| c["iat"] = json!(NOW - 60))).await.unwrap();
    f.verify(&f.mutated(|_, c| c["iat"] = json!(NOW + 5))).await.unwrap();
}

#[tokio::test]
async fn the_clock_is_read_at_verification_time() {
    let f = Fixture::new();
    let proof = f.valid();
    f.clock.advance(301);
    rejects(&f, &proof, DpopError::IssuedTooLongAgo).await;
}

// --- §4.3 check 12: ath ---

#[tokio::test]
async fn a_missing_ath_with_an_access_token_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| _ = c.as_object_mut().unwrap().remove("ath"));
    rejects(&f, &proof, DpopError::MissingAccessTokenHash).await;
}

#[tokio::test]
async fn the_ath_of_another_token_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["ath"] = json!(dpop_core::access_token_hash("another-token")));
    rejects(&f, &proof, DpopError::AccessTokenHashMismatch).await;
}

#[tokio::test]
async fn a_truncated_ath_is_rejected() {
    let f = Fixture::new();
    let ath = dpop_core::access_token_hash(TOKEN);
    let proof = f.mutated(|_, c| c["ath"] = json!(ath[..42]));
    rejects(&f, &proof, DpopError::AccessTokenHashMismatch).await;
}

#[tokio::test]
async fn ath_as_a_number_is_rejected() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["ath"] = json!(1));
    rejects(&f, &proof, DpopError::InvalidMember("ath")).await;
}

#[tokio::test]
async fn without_an_access_token_ath_is_not_required() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| _ = c.as_object_mut().unwrap().remove("ath"));
    let request = ProofRequest::new(METHOD, URL);
    f.verifier.verify([proof.as_bytes()], &request).await.unwrap();
}

// --- token binding (§6, §7.2) ---

#[tokio::test]
async fn key_binding_requires_the_proof_key_thumbprint() {
    let f = Fixture::new();
    let verified = f.verify(&f.valid()).await.unwrap();
    verified.check_key_binding(Some(&f.key.thumbprint().to_string())).unwrap();
    let other = DpopKey::generate().unwrap().thumbprint().to_string();
    assert_eq!(verified.check_key_binding(Some(&other)), Err(DpopError::KeyBindingMismatch));
    assert_eq!(verified.check_key_binding(Some("not base64!")), Err(DpopError::KeyBindingMismatch));
    assert_eq!(verified.check_key_binding(None), Err(DpopError::TokenNotBound));
}

#[test]
fn any_confirmation_makes_a_token_bound_for_the_bearer_rule() {
    // RFC 9449 §7.2: the guard refuses a bound token as Bearer; `is_bound` is that rule.
    let claims = |value: serde_json::Value| dpop_core::TokenClaims::from_json(value.as_object().unwrap().clone());
    assert!(claims(json!({"cnf": {"jkt": "abc"}})).is_bound());
    assert!(claims(json!({"cnf": {"x5t#S256": "abc"}})).is_bound(), "a binding this library cannot read");
    assert!(!claims(json!({"sub": "alice"})).is_bound());
}

// --- replay is the last check ---

#[tokio::test]
async fn the_same_proof_twice_is_a_replay() {
    let f = Fixture::new();
    let proof = f.valid();
    f.verify(&proof).await.unwrap();
    rejects(&f, &proof, DpopError::Replayed).await;
}

#[tokio::test]
async fn a_rejected_proof_is_not_recorded() {
    let f = Fixture::new();
    let proof = f.valid();
    let wrong_method = ProofRequest::new("GET", URL).access_token(TOKEN);
    let err = f.verifier.verify([proof.as_bytes()], &wrong_method).await.unwrap_err();
    assert_eq!(err, DpopError::MethodMismatch);
    f.verify(&proof).await.unwrap();
}

#[tokio::test]
async fn a_proof_checked_but_not_recorded_is_not_a_replay() {
    let f = Fixture::new();
    let proof = f.valid();
    let request = ProofRequest::new(METHOD, URL).access_token(TOKEN);
    let _unrecorded = f.verifier.check([proof.as_bytes()], &request).unwrap();
    let checked = f.verifier.check([proof.as_bytes()], &request).unwrap();
    f.verifier.record(checked).await.unwrap();
    let again = f.verifier.check([proof.as_bytes()], &request).unwrap();
    assert_eq!(f.verifier.record(again).await.unwrap_err(), DpopError::Replayed);
}

// --- configuration ---

#[test]
fn an_empty_allow_list_is_a_configuration_error() {
    let err = DpopVerifier::builder().algorithms([]).build().unwrap_err();
    assert_eq!(err, dpop_core::ConfigError::NoAlgorithms);
}

#[test]
fn an_algorithm_the_backend_lacks_is_a_configuration_error() {
    for alg in Algorithm::ALL {
        let result = DpopVerifier::builder().algorithms([alg]).build();
        assert_eq!(result.is_ok(), alg.is_supported(), "{alg}");
    }
    assert!(Algorithm::ES256.is_supported());
}

#[test]
fn zero_limits_are_configuration_errors() {
    assert!(DpopVerifier::builder().max_proof_len(0).build().is_err());
    assert!(DpopVerifier::builder().max_jti_len(0).build().is_err());
}

#[tokio::test]
async fn the_default_verifier_uses_the_system_clock_and_es256() {
    let verifier = DpopVerifier::new();
    assert_eq!(verifier.algorithms().to_space_separated(), "ES256");
    let key = DpopKey::generate().unwrap();
    let proof = key.proof("GET", URL).sign().unwrap();
    verifier.verify([proof.as_bytes()], &ProofRequest::new("GET", URL)).await.unwrap();
    let (stale_verifier, _) = verifier_at(NOW);
    let err = stale_verifier.verify([proof.as_bytes()], &ProofRequest::new("GET", URL)).await.unwrap_err();
    assert_eq!(err, DpopError::IssuedInFuture);
}

#[test]
fn descriptions_never_echo_the_request() {
    let all = [
        DpopError::MalformedProof("header"),
        DpopError::InvalidMember("htu"),
        DpopError::UriMismatch,
        DpopError::Replayed,
    ];
    for err in all {
        let text = err.description();
        assert!(!text.contains("evil"), "{text}");
        assert!(text.is_ascii());
    }
    let _unused: Value = json!(null);
}
