//! The RFC 9449 and RFC 7638 examples, verified as published (signatures are real).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use dpop_core::{
    Algorithm, AlgorithmSet, DpopError, DpopVerifier, ProofRequest, Thumbprint, access_token_hash, clock::ManualClock,
    internals::Challenge, internals::ErrorScheme, internals::www_authenticate,
};

const TOKEN_URL: &str = "https://server.example.com/token";
const RESOURCE_URL: &str = "https://resource.example.org/protectedresource";

async fn verify_figure_13(
    now: u64,
    method: &str,
    url: &str,
    token: &str,
) -> Result<dpop_core::VerifiedProof, DpopError> {
    let (verifier, _) = verifier_at(now);
    let request = ProofRequest::new(method, url).access_token(token);
    verifier.verify([RFC_FIGURE_13.as_bytes()], &request).await
}

#[tokio::test]
async fn figure_2_token_request_proof_verifies_without_a_token() {
    let (verifier, _) = verifier_at(RFC_FIGURE_2_IAT + 1);
    let proof = verifier.verify([RFC_FIGURE_2.as_bytes()], &ProofRequest::new("POST", TOKEN_URL)).await.unwrap();
    assert_eq!(proof.jkt(), RFC_JKT);
    assert_eq!(proof.jti(), "-BwC3ESc6acc2lTc");
    assert_eq!(proof.issued_at(), RFC_FIGURE_2_IAT as i64);
    assert_eq!(proof.algorithm(), Algorithm::ES256);
    assert_eq!(proof.nonce(), None);
}

#[tokio::test]
async fn figure_2_with_an_access_token_lacks_ath() {
    let (verifier, _) = verifier_at(RFC_FIGURE_2_IAT + 1);
    let request = ProofRequest::new("POST", TOKEN_URL).access_token(RFC_ACCESS_TOKEN);
    let err = verifier.verify([RFC_FIGURE_2.as_bytes()], &request).await.unwrap_err();
    assert_eq!(err, DpopError::MissingAccessTokenHash);
}

#[tokio::test]
async fn figure_7_refresh_proof_verifies() {
    let (verifier, _) = verifier_at(RFC_FIGURE_7_IAT);
    let proof = verifier.verify([RFC_FIGURE_7.as_bytes()], &ProofRequest::new("POST", TOKEN_URL)).await.unwrap();
    assert_eq!(proof.jkt(), RFC_JKT);
}

#[tokio::test]
async fn figure_7_reuses_the_jti_of_figure_2_and_is_a_replay() {
    // A window wide enough to hold both iats (44:40 apart).
    let clock = ManualClock::at(RFC_FIGURE_7_IAT);
    let verifier = DpopVerifier::builder().clock(clock).max_age(Duration::from_secs(3600)).build().unwrap();
    let request = ProofRequest::new("POST", TOKEN_URL);
    verifier.verify([RFC_FIGURE_2.as_bytes()], &request).await.unwrap();
    let err = verifier.verify([RFC_FIGURE_7.as_bytes()], &request).await.unwrap_err();
    assert_eq!(err, DpopError::Replayed);
}

// The expected outcomes listed for Figure 13, clock at 1562262619.

const AT: u64 = RFC_FIGURE_13_IAT + 1;

#[tokio::test]
async fn figure_13_verifies_for_its_request() {
    let proof = verify_figure_13(AT, "GET", RESOURCE_URL, RFC_ACCESS_TOKEN).await.unwrap();
    assert_eq!(proof.jkt(), RFC_JKT);
    proof.check_key_binding(Some(RFC_JKT)).unwrap();
}

#[tokio::test]
async fn figure_13_ignores_the_query() {
    let url = format!("{RESOURCE_URL}?a=b");
    verify_figure_13(AT, "GET", &url, RFC_ACCESS_TOKEN).await.unwrap();
}

#[tokio::test]
async fn figure_13_matches_after_normalization() {
    let url = "https://RESOURCE.example.org:443/protectedresource";
    verify_figure_13(AT, "GET", url, RFC_ACCESS_TOKEN).await.unwrap();
}

#[tokio::test]
async fn figure_13_rejects_another_method() {
    let err = verify_figure_13(AT, "POST", RESOURCE_URL, RFC_ACCESS_TOKEN).await.unwrap_err();
    assert_eq!(err, DpopError::MethodMismatch);
    assert_eq!(err.code().as_str(), "invalid_dpop_proof");
}

#[tokio::test]
async fn figure_13_rejects_another_uri() {
    let err = verify_figure_13(AT, "GET", "https://resource.example.org/other", RFC_ACCESS_TOKEN).await.unwrap_err();
    assert_eq!(err, DpopError::UriMismatch);
}

#[tokio::test]
async fn figure_13_rejects_another_token() {
    let err = verify_figure_13(AT, "GET", RESOURCE_URL, "another-token").await.unwrap_err();
    assert_eq!(err, DpopError::AccessTokenHashMismatch);
}

#[tokio::test]
async fn figure_13_with_a_token_bound_to_another_key_is_figure_16() {
    let proof = verify_figure_13(AT, "GET", RESOURCE_URL, RFC_ACCESS_TOKEN).await.unwrap();
    let err = proof.check_key_binding(Some(RFC7638_THUMBPRINT)).unwrap_err();
    assert_eq!(err, DpopError::KeyBindingMismatch);
    assert_eq!(err.status(), 401);
    assert_eq!(
        www_authenticate(&err, AlgorithmSet::only(Algorithm::ES256)),
        r#"DPoP error="invalid_token", error_description="Invalid DPoP key binding", algs="ES256""#
    );
}

#[test]
fn figure_13_token_sent_as_bearer_is_a_downgrade() {
    // Figure 11: the token is bound (`cnf.jkt`), so the Bearer scheme must not accept it.
    let claims = serde_json::json!({"sub": "someone@example.com", "cnf": {"jkt": RFC_JKT}});
    assert!(dpop_core::TokenClaims::from_json(claims.as_object().unwrap().clone()).is_bound());
    assert_eq!(DpopError::BoundTokenAsBearer.code().as_str(), "invalid_token");
}

#[tokio::test]
async fn figure_13_presented_twice_is_a_replay() {
    let (verifier, _) = verifier_at(AT);
    let request = ProofRequest::new("GET", RESOURCE_URL).access_token(RFC_ACCESS_TOKEN);
    verifier.verify([RFC_FIGURE_13.as_bytes()], &request).await.unwrap();
    let err = verifier.verify([RFC_FIGURE_13.as_bytes()], &request).await.unwrap_err();
    assert_eq!(err, DpopError::Replayed);
}

#[tokio::test]
async fn figure_13_is_stale_301_seconds_later() {
    let err = verify_figure_13(RFC_FIGURE_13_IAT + 301, "GET", RESOURCE_URL, RFC_ACCESS_TOKEN).await.unwrap_err();
    assert_eq!(err, DpopError::IssuedTooLongAgo);
    // MCP conformance probes at ±303 s.
    let err = verify_figure_13(RFC_FIGURE_13_IAT + 303, "GET", RESOURCE_URL, RFC_ACCESS_TOKEN).await.unwrap_err();
    assert_eq!(err, DpopError::IssuedTooLongAgo);
    let err = verify_figure_13(RFC_FIGURE_13_IAT - 303, "GET", RESOURCE_URL, RFC_ACCESS_TOKEN).await.unwrap_err();
    assert_eq!(err, DpopError::IssuedInFuture);
    verify_figure_13(RFC_FIGURE_13_IAT + 300, "GET", RESOURCE_URL, RFC_ACCESS_TOKEN).await.unwrap();
}

#[tokio::test]
async fn figure_13_in_two_header_fields_is_rejected() {
    let (verifier, _) = verifier_at(AT);
    let request = ProofRequest::new("GET", RESOURCE_URL).access_token(RFC_ACCESS_TOKEN);
    let values = [RFC_FIGURE_13.as_bytes(), RFC_FIGURE_13.as_bytes()];
    assert_eq!(verifier.verify(values, &request).await.unwrap_err(), DpopError::MultipleProofs);
}

#[test]
fn figure_13_ath_is_the_token_hash() {
    assert_eq!(access_token_hash(RFC_ACCESS_TOKEN), RFC_ATH);
}

// Thumbprints.

#[test]
fn rfc_9449_example_key_thumbprint() {
    assert_eq!(Thumbprint::of_jwk_json(RFC_JWK).unwrap().to_string(), RFC_JKT);
}

#[test]
fn rfc_7638_rsa_thumbprint() {
    let thumbprint = Thumbprint::of_jwk_json(RFC7638_JWK).unwrap();
    assert_eq!(thumbprint.to_string(), RFC7638_THUMBPRINT);
    let expected: [u8; 32] = [
        55, 54, 203, 177, 120, 124, 184, 48, 156, 119, 238, 140, 55, 5, 197, 225, 111, 251, 158, 133, 151, 21, 144, 31,
        30, 76, 89, 177, 17, 130, 245, 123,
    ];
    assert_eq!(thumbprint.as_bytes(), &expected);
}

#[test]
fn thumbprints_ignore_member_order_whitespace_and_extra_members() {
    let reordered = r#" { "crv" : "P-256", "y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
        "use":"sig", "kid":"k1", "alg":"ES256", "future":{"x":[1]},
        "x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs", "kty":"EC" } "#;
    assert_eq!(Thumbprint::of_jwk_json(reordered).unwrap().to_string(), RFC_JKT);
}

#[test]
fn an_ed25519_thumbprint_uses_crv_kty_x() {
    // RFC 8037 Appendix A.3.
    let jwk = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
    assert_eq!(Thumbprint::of_jwk_json(jwk).unwrap().to_string(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
}

#[test]
fn a_thumbprint_matches_its_jkt_only() {
    let thumbprint = Thumbprint::of_jwk_json(RFC_JWK).unwrap();
    assert!(thumbprint.matches_jkt(RFC_JKT));
    assert!(!thumbprint.matches_jkt(RFC7638_THUMBPRINT));
    assert!(!thumbprint.matches_jkt(&RFC_JKT[..42]));
    assert!(!thumbprint.matches_jkt(""));
}

// Challenges: RFC 9449 §7.1 figures.

fn es256_ps256() -> AlgorithmSet {
    [Algorithm::ES256, Algorithm::PS256].into_iter().collect()
}

#[test]
fn figure_15_no_authentication() {
    assert_eq!(Challenge::new(es256_ps256()).render(), r#"DPoP algs="ES256 PS256""#);
}

#[test]
fn figure_17_bearer_and_dpop() {
    assert_eq!(Challenge::new(es256_ps256()).with_bearer(true).render(), r#"Bearer, DPoP algs="ES256 PS256""#);
}

#[test]
fn figure_18_invalid_bearer_token() {
    let rendered = Challenge::new(es256_ps256())
        .with_bearer(true)
        .error_code(dpop_core::ErrorCode::InvalidToken, "Invalid token", ErrorScheme::Bearer)
        .render();
    assert_eq!(rendered, r#"Bearer error="invalid_token", error_description="Invalid token", DPoP algs="ES256 PS256""#);
}

#[test]
fn figure_19_both_schemes_carry_invalid_request() {
    let description = "Multiple methods used to include access token";
    let rendered = Challenge::new(es256_ps256())
        .with_bearer(true)
        .error_code(dpop_core::ErrorCode::InvalidRequest, description, ErrorScheme::Both)
        .render();
    assert_eq!(
        rendered,
        format!(
            r#"Bearer error="invalid_request", error_description="{description}", DPoP error="invalid_request", error_description="{description}", algs="ES256 PS256""#
        )
    );
}

#[test]
fn figure_24_use_dpop_nonce_and_rfc_9728_resource_metadata() {
    let rendered = Challenge::new(AlgorithmSet::default())
        .error_code(
            dpop_core::ErrorCode::UseDpopNonce,
            "Resource server requires nonce in DPoP proof",
            ErrorScheme::Dpop,
        )
        .resource_metadata("https://resource.example.com/.well-known/oauth-protected-resource")
        .render();
    assert_eq!(
        rendered,
        r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", algs="ES256", resource_metadata="https://resource.example.com/.well-known/oauth-protected-resource""#
    );
}

#[test]
fn challenge_values_are_quoted_and_escaped() {
    let rendered = Challenge::new(AlgorithmSet::default())
        .error_code(dpop_core::ErrorCode::InsufficientScope, "say \"hi\" \\ \u{7}é", ErrorScheme::Dpop)
        .scope("a \"b\"\r\n")
        .render();
    assert_eq!(
        rendered,
        r#"DPoP error="insufficient_scope", error_description="say 'hi' / ??", scope="a \"b\"??", algs="ES256""#
    );
}
