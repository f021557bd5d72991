//! JwtValidator finding its keys by RFC 8414 / OpenID Connect discovery, against test
//! authorization servers over real HTTP on 127.0.0.1.
#![cfg(feature = "fetch")]
// Test code: a failed unwrap or index is a failed test (as clippy.toml allows in #[test]s).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{AUDIENCE, AsKey, KID, NOW, TestAs, TestServer, claims, invalid_reason, jwks, unavailable_cause};
use dpop_core::{DpopKey, TokenValidator, clock::ManualClock};
use dpop_token::{ConfigError, JwkSet, JwtValidator};
use serde_json::{Value, json};

const OAUTH: &str = "/.well-known/oauth-authorization-server";
const OIDC: &str = "/.well-known/openid-configuration";

/// A running test AS; its issuer is its URL plus `issuer_path`.
struct Setup {
    authorization_server: TestAs,
    server: TestServer,
    issuer: String,
}

impl Setup {
    async fn new(issuer_path: &str) -> Self {
        let authorization_server = TestAs::default();
        let server = authorization_server.serve().await;
        let issuer = server.url(issuer_path);
        Self { authorization_server, server, issuer }
    }

    /// Metadata naming `issuer` and `jwks_uri` (a path on this server).
    fn metadata(&self, issuer: &str, jwks_path: &str) -> String {
        json!({
            "issuer": issuer,
            "jwks_uri": self.server.url(jwks_path),
            "token_endpoint": self.server.url("/token"),
            "response_types_supported": ["code"],
        })
        .to_string()
    }

    fn validator(&self, clock: &ManualClock) -> JwtValidator {
        JwtValidator::builder(&self.issuer, AUDIENCE).discover().clock(clock.clone()).build().unwrap()
    }

    /// A token from this issuer, at [`NOW`].
    fn token(&self, key: &AsKey) -> String {
        let mut claims = claims(&DpopKey::generate().unwrap().thumbprint().to_string());
        claims["iss"] = json!(self.issuer);
        key.token(&claims)
    }
}

#[tokio::test]
async fn rfc_8414_metadata_is_read_at_the_first_validation_then_cached() {
    let setup = Setup::new("").await;
    let key = AsKey::new(KID);
    let authorization_server = &setup.authorization_server;
    authorization_server.set(OAUTH, setup.metadata(&setup.issuer, "/keys"));
    authorization_server.set("/keys", jwks(&[&key]));
    let clock = ManualClock::at(NOW);

    let validator = setup.validator(&clock);
    assert_eq!(authorization_server.total_requests(), 0, "nothing fetched at construction");

    let claims = validator.validate(&setup.token(&key)).await.unwrap();
    assert_eq!(claims.issuer.as_deref(), Some(setup.issuer.as_str()));
    assert_eq!((authorization_server.requests(OAUTH), authorization_server.requests("/keys")), (1, 1));
    for _ in 0..3 {
        validator.validate(&setup.token(&key)).await.unwrap();
    }
    assert_eq!(authorization_server.total_requests(), 2, "metadata and keys are cached");
    assert_eq!(authorization_server.requests(OIDC), 0);

    // The discovered keys verify: another key with the same kid does not.
    let forged = AsKey::new(KID);
    assert_eq!(invalid_reason(validator.validate(&setup.token(&forged)).await), "invalid signature");
}

#[tokio::test]
async fn an_issuer_with_a_path_and_the_openid_connect_fallback() {
    // RFC 8414 §3.1: the well-known suffix goes between the host and the issuer's path.
    let setup = Setup::new("/tenants/a").await;
    let key = AsKey::new(KID);
    let authorization_server = &setup.authorization_server;
    authorization_server.set(&format!("{OAUTH}/tenants/a"), setup.metadata(&setup.issuer, "/keys"));
    authorization_server.set("/keys", jwks(&[&key]));
    let clock = ManualClock::at(NOW);
    setup.validator(&clock).validate(&setup.token(&key)).await.unwrap();
    assert_eq!(authorization_server.requests(&format!("{OAUTH}/tenants/a")), 1);
    assert_eq!(authorization_server.requests(&format!("/tenants/a{OIDC}")), 0);

    // Only an OpenID Connect configuration (at issuer + suffix): RFC 8414 is tried first.
    let setup = Setup::new("/realms/b").await;
    let authorization_server = &setup.authorization_server;
    authorization_server.set(&format!("/realms/b{OIDC}"), setup.metadata(&setup.issuer, "/keys"));
    authorization_server.set("/keys", jwks(&[&key]));
    setup.validator(&clock).validate(&setup.token(&key)).await.unwrap();
    assert_eq!(authorization_server.requests(&format!("{OAUTH}/realms/b")), 1);
    assert_eq!(authorization_server.requests(&format!("/realms/b{OIDC}")), 1);
    assert_eq!(authorization_server.requests(OIDC), 0, "not at the root: the issuer has a path");
}

#[tokio::test]
async fn metadata_for_another_issuer_is_refused() {
    let key = AsKey::new(KID);
    let clock = ManualClock::at(NOW);
    let setup = Setup::new("").await;
    let authorization_server = &setup.authorization_server;
    // A different issuer, and the same one with a trailing slash: RFC 8414 §3.3 wants identical.
    for published in ["https://as.example.com".to_owned(), format!("{}/", setup.issuer)] {
        authorization_server.set(OAUTH, setup.metadata(&published, "/keys"));
        // A correct OpenID Connect configuration is not consulted after a mix-up.
        authorization_server.set(OIDC, setup.metadata(&setup.issuer, "/keys"));
        authorization_server.set("/keys", jwks(&[&key]));
        let cause = unavailable_cause(setup.validator(&clock).validate(&setup.token(&key)).await);
        assert!(cause.contains("AS metadata refused") && cause.contains(&published), "{cause}");
    }
    assert_eq!(authorization_server.requests("/keys"), 0);
    assert_eq!(authorization_server.requests(OIDC), 0);
}

#[tokio::test]
async fn unusable_metadata_is_unavailable() {
    let key = AsKey::new(KID);
    let clock = ManualClock::at(NOW);
    let setup = Setup::new("").await;
    let authorization_server = &setup.authorization_server;
    authorization_server.set("/keys", jwks(&[&key]));
    let issuer = setup.issuer.as_str();
    let cases: [(Value, &str); 5] = [
        (json!({ "issuer": issuer }), "no jwks_uri"),
        (json!({ "jwks_uri": setup.server.url("/keys") }), "no issuer"),
        (json!({ "issuer": issuer, "jwks_uri": 7 }), "no jwks_uri"),
        (json!({ "issuer": issuer, "jwks_uri": "http://as.example.com/keys" }), "https"),
        (json!({ "issuer": issuer, "jwks_uri": "/keys" }), "valid http(s) URL"),
    ];
    for (document, reason) in cases {
        authorization_server.set(OAUTH, document.to_string());
        let cause = unavailable_cause(setup.validator(&clock).validate(&setup.token(&key)).await);
        assert!(cause.contains(reason), "{document}: {cause}");
    }
    for (body, reason) in [
        ("not json".to_owned(), "not a JSON object"),
        (format!(r#"{{"issuer":"{issuer}","issuer":"{issuer}","jwks_uri":"x"}}"#), "duplicate"),
    ] {
        authorization_server.set(OAUTH, body.clone());
        let cause = unavailable_cause(setup.validator(&clock).validate(&setup.token(&key)).await);
        assert!(cause.contains(reason), "{body}: {cause}");
    }
    assert_eq!(authorization_server.requests("/keys"), 0);
}

#[tokio::test]
async fn discovery_failure_is_unavailable_and_retried_after_the_backoff() {
    let key = AsKey::new(KID);
    let clock = ManualClock::at(NOW);
    let setup = Setup::new("").await;
    let authorization_server = &setup.authorization_server;
    authorization_server.set_status(OAUTH, 500, "{}".to_owned());
    let validator = setup.validator(&clock);

    let cause = unavailable_cause(validator.validate(&setup.token(&key)).await);
    assert!(cause.contains("AS metadata discovery failed"), "{cause}");
    assert!(cause.contains(&format!("{OAUTH}: unexpected HTTP status 500")), "{cause}");
    assert!(cause.contains(&format!("{OIDC}: unexpected HTTP status 404")), "{cause}");
    assert_eq!(authorization_server.total_requests(), 2);

    // Within the back-off nothing is asked again; the answer is still 503, never acceptance.
    authorization_server.set(OAUTH, setup.metadata(&setup.issuer, "/keys"));
    authorization_server.set("/keys", jwks(&[&key]));
    let cause = unavailable_cause(validator.validate(&setup.token(&key)).await);
    assert!(cause.contains("retrying shortly"), "{cause}");
    assert_eq!(authorization_server.total_requests(), 2);

    clock.advance(10);
    validator.validate(&setup.token(&key)).await.unwrap();
    assert_eq!(authorization_server.total_requests(), 4);

    // An authorization server that is not there at all.
    let down = setup.server.url("");
    setup.server.stop().await;
    let validator = JwtValidator::builder(&down, AUDIENCE).discover().clock(clock.clone()).build().unwrap();
    let mut claims = claims(&DpopKey::generate().unwrap().thumbprint().to_string());
    claims["iss"] = json!(down);
    let cause = unavailable_cause(validator.validate(&key.token(&claims)).await);
    assert!(cause.contains("connection failed"), "{cause}");
}

#[tokio::test]
async fn moved_keys_are_discovered_again() {
    let (first, second, third) = (AsKey::new("k1"), AsKey::new("k2"), AsKey::new("k3"));
    let clock = ManualClock::at(NOW);
    let setup = Setup::new("").await;
    let authorization_server = &setup.authorization_server;
    authorization_server.set(OAUTH, setup.metadata(&setup.issuer, "/keys"));
    authorization_server.set("/keys", jwks(&[&first]));
    let validator = JwtValidator::builder(&setup.issuer, AUDIENCE)
        .discover()
        .jwks_max_age(Duration::from_secs(600))
        .refetch_interval(Duration::from_secs(5))
        .clock(clock.clone())
        .build()
        .unwrap();
    validator.validate(&setup.token(&first)).await.unwrap();

    // The keys move: the old location fails once, and the next attempt asks the metadata again.
    authorization_server.remove("/keys");
    authorization_server.set(OAUTH, setup.metadata(&setup.issuer, "/keys-2"));
    authorization_server.set("/keys-2", jwks(&[&first, &second]));
    clock.advance(6);
    unavailable_cause(validator.validate(&setup.token(&second)).await);
    assert_eq!(authorization_server.requests(OAUTH), 1, "the discovered jwks_uri was used");
    clock.advance(10);
    validator.validate(&setup.token(&second)).await.unwrap();
    assert_eq!((authorization_server.requests(OAUTH), authorization_server.requests("/keys-2")), (2, 1));

    // The metadata is as old as the keys it led to: both are fetched again after the max age.
    authorization_server.set(OAUTH, setup.metadata(&setup.issuer, "/keys-3"));
    authorization_server.set("/keys-3", jwks(&[&third]));
    clock.advance(600);
    let mut late = claims(&DpopKey::generate().unwrap().thumbprint().to_string());
    late["iss"] = json!(setup.issuer);
    late["exp"] = json!(NOW + 7200);
    validator.validate(&third.token(&late)).await.unwrap();
    assert_eq!((authorization_server.requests(OAUTH), authorization_server.requests("/keys-3")), (3, 1));
    assert_eq!(invalid_reason(validator.validate(&first.token(&late)).await), "unknown signing key");
}

#[tokio::test]
async fn from_issuer_discovers_with_the_defaults() {
    let key = AsKey::new(KID);
    let setup = Setup::new("").await;
    let authorization_server = &setup.authorization_server;
    authorization_server.set(OAUTH, setup.metadata(&setup.issuer, "/keys"));
    authorization_server.set("/keys", jwks(&[&key]));
    let validator = JwtValidator::from_issuer(&setup.issuer, AUDIENCE).unwrap();
    assert_eq!(authorization_server.total_requests(), 0);

    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let mut claims = claims(&DpopKey::generate().unwrap().thumbprint().to_string());
    claims["iss"] = json!(setup.issuer);
    claims["iat"] = json!(now);
    claims["nbf"] = json!(now);
    claims["exp"] = json!(now + 600);
    validator.validate(&key.token(&claims)).await.unwrap();
    claims["aud"] = json!("https://other.example.com/mcp");
    assert_eq!(invalid_reason(validator.validate(&key.token(&claims)).await), "wrong audience");
}

#[test]
fn discovery_configuration_errors() {
    let discover = |issuer: &str| JwtValidator::builder(issuer, AUDIENCE).discover().build().map(|_| ());
    assert_eq!(discover("https://as.example.com/tenant"), Ok(()));
    assert_eq!(discover("http://[::1]:8080"), Ok(()));
    assert_eq!(discover("http://as.example.com"), Err(ConfigError::InsecureUrl));
    assert_eq!(discover("https://as.example.com?tenant=a"), Err(ConfigError::InvalidUrl));
    assert_eq!(discover("as.example.com"), Err(ConfigError::InvalidUrl));
    assert_eq!(JwtValidator::from_issuer("https://as.example.com", "").unwrap_err(), ConfigError::EmptyAudience);

    let conflicting = JwtValidator::builder("https://as.example.com", AUDIENCE)
        .discover()
        .jwks_url("https://as.example.com/jwks")
        .build()
        .map(|_| ());
    assert_eq!(conflicting, Err(ConfigError::ConflictingKeySources));
    let set = JwkSet::from_json(&jwks(&[&AsKey::new(KID)])).unwrap();
    let conflicting =
        JwtValidator::builder("https://as.example.com", AUDIENCE).keys(set).discover().build().map(|_| ());
    assert_eq!(conflicting, Err(ConfigError::ConflictingKeySources));
}
