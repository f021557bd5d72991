//! IntrospectionValidator against a real RFC 7662 endpoint on 127.0.0.1.
#![cfg(feature = "fetch")]
// Test code: a failed unwrap or index is a failed test (as clippy.toml allows in #[test]s).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{TestServer, closed_port_url, invalid_reason, unavailable_cause};
use dpop_core::{TokenValidator, clock::ManualClock};
use dpop_token::{ConfigError, IntrospectionValidator, IntrospectionValidatorBuilder};
use serde_json::{Value, json};

const CLIENT_ID: &str = "mcp-server";
/// Needs form-encoding before Basic encoding (RFC 6749 §2.3.1).
const CLIENT_SECRET: &str = "s3cr3t:+/ é";
/// RFC 9449 §6.2 example: between Figure 11's `nbf` and `exp`.
const NOW: u64 = 1_562_262_700;
/// Figure 11's `iss`.
const ISSUER: &str = "https://server.example.com";
/// This resource's canonical URI.
const RESOURCE: &str = "https://mcp.example.com/mcp";

/// A builder for `url` with the issuer and resource every test uses.
fn builder(url: impl Into<String>, secret: &str) -> IntrospectionValidatorBuilder {
    IntrospectionValidator::builder(url, CLIENT_ID, secret).issuer(ISSUER).audience(RESOURCE)
}

/// RFC 9449 §6.2 Figure 11.
fn figure_11() -> Value {
    json!({
        "active": true,
        "sub": "someone@example.com",
        "iss": "https://server.example.com",
        "nbf": 1_562_262_611,
        "exp": 1_562_266_216,
        "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}
    })
}

/// The `Authorization` header the server expects.
fn expected_basic() -> String {
    // form-urlencoded: ':' -> %3A, '+' -> %2B, '/' -> %2F, ' ' -> '+', 'é' -> %C3%A9.
    let credentials = "mcp-server:s3cr3t%3A%2B%2F+%C3%A9";
    format!("Basic {}", STANDARD.encode(credentials))
}

/// An introspection endpoint answering canned JSON per (form-encoded) token.
#[derive(Clone, Default)]
struct Endpoint {
    answers: Arc<Mutex<HashMap<String, (u16, String)>>>,
    requests: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<String>>>,
    content_types: Arc<Mutex<Vec<String>>>,
}

impl Endpoint {
    fn answer(&self, token: &str, status: u16, body: impl Into<String>) {
        self.answers.lock().unwrap().insert(token.to_owned(), (status, body.into()));
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    async fn serve(&self) -> TestServer {
        let endpoint = self.clone();
        let router = axum::Router::new().route(
            "/introspect",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let endpoint = endpoint.clone();
                async move { endpoint.handle(&headers, body) }
            }),
        );
        TestServer::start(router).await
    }

    fn handle(
        &self,
        headers: &HeaderMap,
        body: String,
    ) -> (StatusCode, [(header::HeaderName, &'static str); 1], String) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let json = [(header::CONTENT_TYPE, "application/json")];
        let content_type =
            headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        self.content_types.lock().unwrap().push(content_type);
        self.bodies.lock().unwrap().push(body.clone());
        let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if authorization != expected_basic() {
            return (StatusCode::UNAUTHORIZED, json, r#"{"error":"invalid_client"}"#.to_owned());
        }
        let token = body.split('&').find_map(|pair| pair.strip_prefix("token=")).unwrap_or_default();
        match self.answers.lock().unwrap().get(token) {
            Some((status, answer)) => (StatusCode::from_u16(*status).unwrap(), json, answer.clone()),
            None => (StatusCode::OK, json, r#"{"active":false}"#.to_owned()),
        }
    }
}

struct Fixture {
    endpoint: Endpoint,
    server: TestServer,
    validator: IntrospectionValidator,
}

async fn fixture() -> Fixture {
    let endpoint = Endpoint::default();
    let server = endpoint.serve().await;
    let validator = builder(server.url("/introspect"), CLIENT_SECRET).clock(ManualClock::at(NOW)).build().unwrap();
    Fixture { endpoint, server, validator }
}

#[tokio::test]
async fn active_bound_token_figure_11() {
    let f = fixture().await;
    f.endpoint.answer("tok-1", 200, figure_11().to_string());
    let claims = f.validator.validate("tok-1").await.unwrap();
    assert_eq!(claims.cnf_jkt.as_deref(), Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"));
    assert_eq!(claims.subject.as_deref(), Some("someone@example.com"));
    assert_eq!(claims.issuer.as_deref(), Some("https://server.example.com"));
    assert_eq!(claims.expires_at, Some(1_562_266_216));
    assert_eq!(claims.raw["active"], true);

    // What the server saw: the token form-encoded with the hint, and Basic credentials.
    assert_eq!(f.endpoint.requests(), 1);
    assert_eq!(f.endpoint.bodies.lock().unwrap()[0], "token=tok-1&token_type_hint=access_token");
    assert_eq!(f.endpoint.content_types.lock().unwrap()[0], "application/x-www-form-urlencoded");
}

#[tokio::test]
async fn token_is_form_encoded() {
    let f = fixture().await;
    let token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU+/=&x y";
    let encoded = "Kz%7E8mXK1EalYznwH-LC-1fBAo.4Ljp%7EzsPE_NeO.gxU%2B%2F%3D%26x+y";
    f.endpoint.answer(encoded, 200, json!({"active": true, "sub": "s"}).to_string());
    let claims = f.validator.validate(token).await.unwrap();
    assert_eq!(claims.subject.as_deref(), Some("s"));
    assert_eq!(f.endpoint.bodies.lock().unwrap()[0], format!("token={encoded}&token_type_hint=access_token"));
}

#[tokio::test]
async fn inactive_token_is_invalid() {
    let f = fixture().await;
    f.endpoint.answer("gone", 200, r#"{"active":false}"#);
    assert_eq!(invalid_reason(f.validator.validate("gone").await), "token is not active");
    // Unknown to the AS: also {"active":false}.
    assert_eq!(invalid_reason(f.validator.validate("never-issued").await), "token is not active");
}

#[tokio::test]
async fn bearer_token_type_with_cnf_is_invalid() {
    let f = fixture().await;
    let mut answer = figure_11();
    answer["token_type"] = json!("Bearer");
    f.endpoint.answer("mixed", 200, answer.to_string());
    assert_eq!(invalid_reason(f.validator.validate("mixed").await), "bound token with token_type other than DPoP");

    answer["token_type"] = json!("dpop");
    f.endpoint.answer("dpop", 200, answer.to_string());
    assert!(f.validator.validate("dpop").await.is_ok());

    f.endpoint.answer("unbound-dpop", 200, json!({"active": true, "token_type": "DPoP"}).to_string());
    assert_eq!(invalid_reason(f.validator.validate("unbound-dpop").await), "DPoP token without cnf.jkt");
    f.endpoint.answer("bearer", 200, json!({"active": true, "token_type": "Bearer"}).to_string());
    assert_eq!(f.validator.validate("bearer").await.unwrap().cnf_jkt, None);
}

#[tokio::test]
async fn expiry_and_shape_checks() {
    let f = fixture().await;
    let mut expired = figure_11();
    expired["exp"] = json!(NOW - 61);
    f.endpoint.answer("expired", 200, expired.to_string());
    assert_eq!(invalid_reason(f.validator.validate("expired").await), "token expired");

    let mut early = figure_11();
    early["nbf"] = json!(NOW + 600);
    f.endpoint.answer("early", 200, early.to_string());
    assert_eq!(invalid_reason(f.validator.validate("early").await), "token not yet valid");

    let mut bad_cnf = figure_11();
    bad_cnf["cnf"] = json!({"jkt": ["a"]});
    f.endpoint.answer("bad-cnf", 200, bad_cnf.to_string());
    assert_eq!(invalid_reason(f.validator.validate("bad-cnf").await), "invalid cnf");

    assert_eq!(invalid_reason(f.validator.validate("").await), "malformed token");
    assert_eq!(
        invalid_reason(f.validator.validate(&"a".repeat(dpop_token::MAX_TOKEN_LEN + 1)).await),
        "token too large"
    );
    assert_eq!(f.endpoint.requests(), 3, "refused before asking");
}

/// Figure 11 with `aud` (or without it when `None`).
fn with_aud(aud: Option<Value>) -> Value {
    let mut answer = figure_11();
    if let Some(aud) = aud {
        answer["aud"] = aud;
    }
    answer
}

#[tokio::test]
async fn audience_is_checked_when_present() {
    let f = fixture().await;
    let cases = [
        ("aud-right", Some(json!(RESOURCE)), None),
        ("aud-among", Some(json!(["https://other.example.com", RESOURCE])), None),
        ("aud-absent", None, None),
        // A token the same authorization server issued for another resource.
        ("aud-other", Some(json!("https://other.example.com/mcp")), Some("wrong audience")),
        ("aud-others", Some(json!(["https://a.example.com", "https://b.example.com"])), Some("wrong audience")),
        ("aud-empty", Some(json!([])), Some("wrong audience")),
        // Exact comparison: no normalization, no prefix match.
        ("aud-slash", Some(json!(format!("{RESOURCE}/"))), Some("wrong audience")),
        ("aud-prefix", Some(json!("https://mcp.example.com")), Some("wrong audience")),
        ("aud-number", Some(json!(1)), Some("invalid aud")),
        ("aud-mixed", Some(json!([RESOURCE, 1])), Some("invalid aud")),
    ];
    for (token, aud, refusal) in cases {
        f.endpoint.answer(token, 200, with_aud(aud).to_string());
        let result = f.validator.validate(token).await;
        match refusal {
            None => assert!(result.is_ok(), "{token}: {result:?}"),
            Some(reason) => assert_eq!(invalid_reason(result), reason, "{token}"),
        }
    }
}

#[tokio::test]
async fn issuer_is_checked_when_present() {
    let f = fixture().await;
    let cases = [
        ("iss-right", Some(json!(ISSUER)), None),
        ("iss-absent", None, None),
        ("iss-other", Some(json!("https://evil.example.com")), Some("wrong issuer")),
        ("iss-slash", Some(json!(format!("{ISSUER}/"))), Some("wrong issuer")),
        ("iss-case", Some(json!(ISSUER.to_uppercase())), Some("wrong issuer")),
        ("iss-array", Some(json!([ISSUER])), Some("invalid iss")),
    ];
    for (token, iss, refusal) in cases {
        let mut answer = with_aud(Some(json!(RESOURCE)));
        match iss {
            Some(iss) => answer["iss"] = iss,
            None => _ = answer.as_object_mut().unwrap().remove("iss"),
        }
        f.endpoint.answer(token, 200, answer.to_string());
        let result = f.validator.validate(token).await;
        match refusal {
            None => assert!(result.is_ok(), "{token}: {result:?}"),
            Some(reason) => assert_eq!(invalid_reason(result), reason, "{token}"),
        }
    }
}

#[tokio::test]
async fn required_audience_and_issuer_must_be_present() {
    let endpoint = Endpoint::default();
    let server = endpoint.serve().await;
    let require = |audience: bool, issuer: bool| {
        builder(server.url("/introspect"), CLIENT_SECRET)
            .require_audience(audience)
            .require_issuer(issuer)
            .clock(ManualClock::at(NOW))
            .build()
            .unwrap()
    };
    let mut no_iss = with_aud(Some(json!(RESOURCE)));
    no_iss.as_object_mut().unwrap().remove("iss");
    endpoint.answer("no-aud", 200, with_aud(None).to_string());
    endpoint.answer("no-iss", 200, no_iss.to_string());
    endpoint.answer("both", 200, with_aud(Some(json!([RESOURCE]))).to_string());
    endpoint.answer("wrong-aud", 200, with_aud(Some(json!("https://other.example.com"))).to_string());

    let audience = require(true, false);
    assert_eq!(invalid_reason(audience.validate("no-aud").await), "missing aud");
    assert!(audience.validate("no-iss").await.is_ok());
    assert!(audience.validate("both").await.is_ok());
    assert_eq!(invalid_reason(audience.validate("wrong-aud").await), "wrong audience");

    let issuer = require(false, true);
    assert_eq!(invalid_reason(issuer.validate("no-iss").await), "missing iss");
    assert!(issuer.validate("no-aud").await.is_ok());
    assert!(issuer.validate("both").await.is_ok());

    let both = require(true, true);
    assert_eq!(invalid_reason(both.validate("no-aud").await), "missing aud");
    assert_eq!(invalid_reason(both.validate("no-iss").await), "missing iss");
    assert!(both.validate("both").await.is_ok());
}

#[test]
fn issuer_and_audience_are_required_configuration() {
    let url = "https://as.example.com/introspect";
    let bare = || IntrospectionValidator::builder(url, CLIENT_ID, "secret");
    assert_eq!(bare().audience(RESOURCE).build().map(|_| ()), Err(ConfigError::MissingIssuer));
    assert_eq!(bare().issuer(ISSUER).build().map(|_| ()), Err(ConfigError::MissingAudience));
    assert_eq!(bare().issuer("").audience(RESOURCE).build().map(|_| ()), Err(ConfigError::EmptyIssuer));
    assert_eq!(bare().issuer(ISSUER).audience("").build().map(|_| ()), Err(ConfigError::EmptyAudience));
    assert_eq!(bare().issuer(ISSUER).audience(RESOURCE).build().map(|_| ()), Ok(()));
}

#[tokio::test]
async fn wrong_client_credentials_are_unavailable() {
    let f = fixture().await;
    f.endpoint.answer("tok-1", 200, figure_11().to_string());
    let wrong = builder(f.server.url("/introspect"), "wrong").clock(ManualClock::at(NOW)).build().unwrap();
    let cause = unavailable_cause(wrong.validate("tok-1").await);
    assert!(cause.contains("401"), "{cause}");
    assert!(!cause.contains("tok-1"));
}

#[tokio::test]
async fn server_errors_and_garbage_are_unavailable() {
    let f = fixture().await;
    f.endpoint.answer("e500", 500, figure_11().to_string());
    f.endpoint.answer("html", 200, "<html></html>");
    f.endpoint.answer("no-active", 200, r#"{"sub":"x"}"#);
    f.endpoint.answer("string-active", 200, r#"{"active":"true"}"#);
    f.endpoint.answer("dup", 200, r#"{"active":false,"active":true}"#);
    f.endpoint.answer("array", 200, "[]");
    for token in ["e500", "html", "no-active", "string-active", "dup", "array"] {
        let cause = unavailable_cause(f.validator.validate(token).await);
        assert!(cause.contains("introspection"), "{token}: {cause}");
    }
}

#[tokio::test]
async fn server_down_is_unavailable() {
    let validator =
        builder(closed_port_url("/introspect").await, CLIENT_SECRET).timeout(Duration::from_secs(2)).build().unwrap();
    unavailable_cause(validator.validate("tok-1").await);

    let f = fixture().await;
    f.endpoint.answer("tok-1", 200, figure_11().to_string());
    f.validator.validate("tok-1").await.unwrap();
    f.server.stop().await;
    unavailable_cause(f.validator.validate("tok-1").await);
}

#[tokio::test]
async fn build_cached_introspects_once() {
    let endpoint = Endpoint::default();
    let server = endpoint.serve().await;
    let clock = ManualClock::at(NOW);
    let validator = builder(server.url("/introspect"), CLIENT_SECRET).clock(clock.clone()).build_cached().unwrap();
    endpoint.answer("tok-1", 200, figure_11().to_string());
    for _ in 0..5 {
        validator.validate("tok-1").await.unwrap();
    }
    assert_eq!(endpoint.requests(), 1);
    // Introspection results are kept at most 5 minutes (revocation takes effect).
    clock.advance(300);
    validator.validate("tok-1").await.unwrap();
    assert_eq!(endpoint.requests(), 2);
}

#[test]
fn endpoint_and_credentials_config() {
    let build = |url: &str, id: &str| {
        IntrospectionValidator::builder(url, id, "secret").issuer(ISSUER).audience(RESOURCE).build().map(|_| ())
    };
    assert_eq!(build("http://as.example.com/introspect", CLIENT_ID), Err(ConfigError::InsecureUrl));
    assert_eq!(build("https://as.example.com/introspect", ""), Err(ConfigError::MissingCredentials));
    assert_eq!(build("https://as.example.com/introspect", CLIENT_ID), Ok(()));
}
