//! One NumericDate rule (RFC 7519 §2) everywhere: the same JSON number is a date, or is not,
//! for a DPoP proof's `iat`, a JWT access token's `exp`, `nbf` and `iat`, an introspection
//! response's `exp` and `nbf`, and `TokenClaims::expires_at`.
// Test code: a failed unwrap or index is a failed test (as clippy.toml allows in #[test]s).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{AUDIENCE, AsKey, ISSUER, KID, NOW, claims};
use dpop_core::{
    DpopError, DpopKey, DpopVerifier, ProofRequest, TokenClaims, TokenError, TokenValidator, clock::ManualClock,
};
use dpop_token::JwtValidator;
use serde_json::{Map, Value, json};

/// JSON number (and non-number) texts, and whether each is a NumericDate.
const TABLE: &[(&str, bool)] = &[
    ("0", true),
    ("1", true),
    ("1.5", true),
    ("1700000000.75", true),
    ("1.7e9", true),
    // 2^53 - 1, the largest: every integer up to it is exactly an f64.
    ("9007199254740991", true),
    ("9007199254740991.0", true),
    // 2^53, 2^53 + 1 and beyond.
    ("9007199254740992", false),
    ("9007199254740993", false),
    ("9007199254740992.0", false),
    ("18446744073709551615", false),
    ("18446744073709551616", false),
    ("1e300", false),
    // Before 1970.
    ("-1", false),
    ("-0.5", false),
    ("-9223372036854775808", false),
    ("-1e300", false),
    // Not numbers.
    (r#""1""#, false),
    (r#""1700000000""#, false),
    ("true", false),
    ("null", false),
    ("[1]", false),
    (r#"{"s":1}"#, false),
];

const URL: &str = "https://mcp.example.com/mcp";

/// Whether a proof whose `iat` is `literal` gets past JSON parsing: any refusal but
/// `InvalidMember("iat")` (the proof is far outside the `iat` window) means it was read.
async fn proof_iat_is_a_date(verifier: &DpopVerifier, key: &DpopKey, index: usize, literal: &str) -> bool {
    let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()}).to_string();
    let claims = format!(r#"{{"jti":"numeric-date-{index}","htm":"GET","htu":"{URL}","iat":{literal}}}"#);
    let proof = key.sign_jws(&header, &claims).unwrap();
    match verifier.verify([proof.as_bytes()], &ProofRequest::new("GET", URL)).await {
        Err(DpopError::InvalidMember("iat")) => false,
        Err(DpopError::IssuedTooLongAgo | DpopError::IssuedInFuture) => true,
        other => panic!("{literal}: unexpected {other:?}"),
    }
}

/// Whether a JWT whose claim `name` is `literal` is not refused as `invalid <name>`.
async fn jwt_claim_is_a_date(validator: &JwtValidator, as_key: &AsKey, name: &str, literal: &str) -> bool {
    let mut claims = claims("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
    claims.as_object_mut().unwrap().remove(name);
    let text = claims.to_string();
    let text = format!(r#"{},"{name}":{literal}}}"#, text.strip_suffix('}').unwrap());
    let token = as_key.sign_raw(&as_key.header().to_string(), &text);
    match validator.validate(&token).await {
        Err(TokenError::Invalid(reason)) => reason.as_str() != format!("invalid {name}"),
        _ => true,
    }
}

#[tokio::test]
async fn one_numeric_date_rule_for_proofs_tokens_and_claims() {
    let verifier = DpopVerifier::new();
    let client = DpopKey::generate().unwrap();
    let as_key = AsKey::new(KID);
    let validator = common::validator_trusting(&as_key);

    for (index, &(literal, expected)) in TABLE.iter().enumerate() {
        let value: Value = serde_json::from_str(literal).unwrap();
        assert_eq!(dpop_core::json::numeric_date(&value).is_some(), expected, "numeric_date({literal})");

        let mut raw = Map::new();
        raw.insert("exp".into(), value);
        assert_eq!(TokenClaims::from_json(raw).expires_at.is_some(), expected, "expires_at {literal}");

        assert_eq!(proof_iat_is_a_date(&verifier, &client, index, literal).await, expected, "proof iat {literal}");
        for name in ["exp", "nbf", "iat"] {
            let verdict = jwt_claim_is_a_date(&validator, &as_key, name, literal).await;
            assert_eq!(verdict, expected, "JWT {name} {literal}");
        }
    }
}

#[test]
fn dates_are_whole_seconds() {
    for (literal, seconds) in [
        ("1.5", 1),
        ("1700000000.75", 1_700_000_000),
        ("1.7e9", 1_700_000_000),
        ("9007199254740991", dpop_core::json::MAX_NUMERIC_DATE),
    ] {
        let value: Value = serde_json::from_str(literal).unwrap();
        assert_eq!(dpop_core::json::numeric_date(&value), Some(seconds), "{literal}");
    }
}

#[cfg(feature = "fetch")]
mod introspection {
    use axum::routing::post;
    use common::TestServer;
    use dpop_token::IntrospectionValidator;

    use super::*;

    /// An endpoint answering token `t<i>` with `exp` and `nbf` set to `TABLE[i]`.
    async fn endpoint(claim: &'static str) -> TestServer {
        let router = axum::Router::new().route(
            "/introspect",
            post(move |body: String| async move {
                let index = body
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("token=t"))
                    .and_then(|index| index.parse::<usize>().ok())
                    .unwrap();
                format!(r#"{{"active":true,"{claim}":{}}}"#, TABLE[index].0)
            }),
        );
        TestServer::start(router).await
    }

    #[tokio::test]
    async fn introspection_dates_follow_the_same_rule() {
        for claim in ["exp", "nbf"] {
            let server = endpoint(claim).await;
            let validator = IntrospectionValidator::builder(server.url("/introspect"), "rs", "secret")
                .issuer(ISSUER)
                .audience(AUDIENCE)
                .clock(ManualClock::at(NOW))
                .build()
                .unwrap();
            for (index, &(literal, expected)) in TABLE.iter().enumerate() {
                let verdict = match validator.validate(&format!("t{index}")).await {
                    Err(TokenError::Invalid(reason)) => reason.as_str() != format!("invalid {claim}"),
                    Err(TokenError::Unavailable(cause)) => panic!("{literal}: {cause}"),
                    _ => true,
                };
                assert_eq!(verdict, expected, "introspection {claim} {literal}");
            }
        }
    }
}
