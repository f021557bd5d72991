//! MultiIssuerValidator: one resource, two authorization servers discovered over real HTTP on
//! 127.0.0.1.
#![cfg(feature = "fetch")]
// Test code: a failed unwrap or index is a failed test (as clippy.toml allows in #[test]s).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{AUDIENCE, AsKey, KID, NOW, TestAs, TestServer, claims, invalid_reason, jwks, unavailable_cause};
use dpop_core::{DpopKey, TokenValidator, clock::ManualClock};
use dpop_token::{ConfigError, JwkSet, JwtValidator, MultiIssuerValidator};
use serde_json::{Value, json};

const OAUTH: &str = "/.well-known/oauth-authorization-server";

/// A discoverable authorization server with one signing key (every AS here uses the same
/// `kid`, so that only the key material tells them apart).
struct Issuer {
    authorization_server: TestAs,
    server: TestServer,
    key: AsKey,
    issuer: String,
}

impl Issuer {
    async fn start() -> Self {
        let authorization_server = TestAs::default();
        let server = authorization_server.serve().await;
        let issuer = server.url("");
        let key = AsKey::new(KID);
        authorization_server.set(OAUTH, json!({ "issuer": issuer, "jwks_uri": server.url("/keys") }).to_string());
        authorization_server.set("/keys", jwks(&[&key]));
        Self { authorization_server, server, key, issuer }
    }

    fn validator(&self, clock: &ManualClock) -> JwtValidator {
        JwtValidator::builder(&self.issuer, AUDIENCE).discover().clock(clock.clone()).build().unwrap()
    }

    /// Claims from this issuer at [`NOW`].
    fn claims(&self) -> Value {
        let mut claims = claims(&DpopKey::generate().unwrap().thumbprint().to_string());
        claims["iss"] = json!(self.issuer);
        claims
    }

    fn token(&self) -> String {
        self.key.token(&self.claims())
    }

    fn requests(&self) -> usize {
        self.authorization_server.total_requests()
    }
}

#[tokio::test]
async fn each_token_is_verified_by_its_own_issuer() {
    let (a, b) = (Issuer::start().await, Issuer::start().await);
    let clock = ManualClock::at(NOW);
    let validator = MultiIssuerValidator::new([a.validator(&clock), b.validator(&clock)]).unwrap();
    assert_eq!(validator.issuers().collect::<Vec<_>>(), [a.issuer.as_str(), b.issuer.as_str()]);

    let claims = validator.validate(&a.token()).await.unwrap();
    assert_eq!(claims.issuer.as_deref(), Some(a.issuer.as_str()));
    assert_eq!((a.requests(), b.requests()), (2, 0), "only the token's issuer is asked");
    let claims = validator.validate(&b.token()).await.unwrap();
    assert_eq!(claims.issuer.as_deref(), Some(b.issuer.as_str()));
    assert_eq!((a.requests(), b.requests()), (2, 2));

    // Signed by A, claiming B: B's keys decide, and refuse.
    assert_eq!(invalid_reason(validator.validate(&a.key.token(&b.claims())).await), "invalid signature");
    // The picked validator checks everything else too.
    let mut claims = b.claims();
    claims["aud"] = json!("https://other.example.com/mcp");
    assert_eq!(invalid_reason(validator.validate(&b.key.token(&claims)).await), "wrong audience");
    claims = b.claims();
    claims["exp"] = json!(NOW - 3600);
    assert_eq!(invalid_reason(validator.validate(&b.key.token(&claims)).await), "token expired");
}

#[tokio::test]
async fn tokens_from_no_configured_issuer_are_refused_without_a_request() {
    let (a, b) = (Issuer::start().await, Issuer::start().await);
    let clock = ManualClock::at(NOW);
    let validator = MultiIssuerValidator::new([a.validator(&clock), b.validator(&clock)]).unwrap();

    let mut claims = a.claims();
    for (iss, reason) in [
        (json!("https://as.example.com"), "unknown issuer"),
        (json!(format!("{}/", a.issuer)), "unknown issuer"),
        (json!([a.issuer]), "invalid iss"),
        (json!(7), "invalid iss"),
    ] {
        claims["iss"] = iss;
        assert_eq!(invalid_reason(validator.validate(&a.key.token(&claims)).await), reason);
    }
    claims.as_object_mut().unwrap().remove("iss");
    assert_eq!(invalid_reason(validator.validate(&a.key.token(&claims)).await), "missing iss");
    assert_eq!(invalid_reason(validator.validate("not-a-jwt").await), "malformed token");
    assert_eq!(invalid_reason(validator.validate("e30.bm90IGpzb24.c2ln").await), "malformed claims");
    let duplicate = a.key.sign_raw(r#"{"alg":"ES256","typ":"at+jwt"}"#, r#"{"iss":"x","iss":"y"}"#);
    assert_eq!(invalid_reason(validator.validate(&duplicate).await), "duplicate claim member");
    assert_eq!(invalid_reason(validator.validate(&"a".repeat(dpop_token::MAX_TOKEN_LEN + 1)).await), "token too large");
    assert_eq!((a.requests(), b.requests()), (0, 0));
}

#[tokio::test]
async fn an_unavailable_issuer_is_503_for_its_tokens_only() {
    let (a, b) = (Issuer::start().await, Issuer::start().await);
    let clock = ManualClock::at(NOW);
    let validator = MultiIssuerValidator::new([a.validator(&clock), b.validator(&clock)]).unwrap();
    b.authorization_server.remove(OAUTH);

    let cause = unavailable_cause(validator.validate(&b.token()).await);
    assert!(cause.contains("AS metadata discovery failed"), "{cause}");
    validator.validate(&a.token()).await.unwrap();
    drop(b.server);
}

#[test]
fn configuration_errors() {
    assert_eq!(MultiIssuerValidator::new([]).unwrap_err(), ConfigError::NoValidators);
    let set = || JwkSet::from_json(&jwks(&[&AsKey::new(KID)])).unwrap();
    let validator = |issuer: &str| JwtValidator::builder(issuer, AUDIENCE).keys(set()).build().unwrap();
    let duplicate = MultiIssuerValidator::new([
        validator("https://a.example.com"),
        validator("https://b.example.com"),
        validator("https://a.example.com"),
    ]);
    assert_eq!(duplicate.unwrap_err(), ConfigError::DuplicateIssuer("https://a.example.com".to_owned()));
    assert!(
        MultiIssuerValidator::new([validator("https://a.example.com"), validator("https://a.example.com/")]).is_ok()
    );
}
