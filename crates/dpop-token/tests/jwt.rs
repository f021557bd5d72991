//! JwtValidator with a static key set: the accepted token and one refusal per check.
// Test code: a failed unwrap or index is a failed test (as clippy.toml allows in #[test]s).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{AUDIENCE, AsKey, ISSUER, KID, NOW, claims, invalid_reason, jwks};
use dpop_core::{Algorithm, DpopKey, TokenValidator, clock::ManualClock};
use dpop_token::{ConfigError, JwkSet, JwtValidator, MAX_TOKEN_LEN};
use serde_json::{Value, json};

struct Fixture {
    as_key: AsKey,
    client: DpopKey,
    validator: JwtValidator,
}

fn fixture() -> Fixture {
    fixture_with(|builder| builder)
}

fn fixture_with(configure: impl FnOnce(dpop_token::JwtValidatorBuilder) -> dpop_token::JwtValidatorBuilder) -> Fixture {
    let as_key = AsKey::new(KID);
    let other = AsKey::new("as-key-2");
    let set = JwkSet::from_json(&jwks(&[&as_key, &other])).unwrap();
    let builder = JwtValidator::builder(ISSUER, AUDIENCE).keys(set).clock(ManualClock::at(NOW));
    Fixture { as_key, client: DpopKey::generate().unwrap(), validator: configure(builder).build().unwrap() }
}

impl Fixture {
    fn jkt(&self) -> String {
        self.client.thumbprint().to_string()
    }

    fn claims(&self) -> Value {
        claims(&self.jkt())
    }

    fn with(&self, name: &str, value: Value) -> String {
        let mut claims = self.claims();
        claims[name] = value;
        self.as_key.token(&claims)
    }

    fn without(&self, name: &str) -> String {
        let mut claims = self.claims();
        claims.as_object_mut().unwrap().remove(name);
        self.as_key.token(&claims)
    }

    fn with_header(&self, name: &str, value: Value) -> String {
        let mut header = self.as_key.header();
        header[name] = value;
        self.as_key.sign(&header, &self.claims())
    }

    fn without_header(&self, name: &str) -> String {
        let mut header = self.as_key.header();
        header.as_object_mut().unwrap().remove(name);
        self.as_key.sign(&header, &self.claims())
    }

    async fn reason(&self, token: &str) -> &'static str {
        invalid_reason(self.validator.validate(token).await)
    }
}

fn b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn valid_bound_token_gives_its_claims() {
    let f = fixture();
    let claims = f.validator.validate(&f.as_key.token(&f.claims())).await.unwrap();
    assert_eq!(claims.subject.as_deref(), Some("user-42"));
    assert_eq!(claims.issuer.as_deref(), Some(ISSUER));
    assert_eq!(claims.audience, [AUDIENCE]);
    assert_eq!(claims.client_id.as_deref(), Some("mcp-client"));
    assert_eq!(claims.scopes, ["mcp:tools", "mcp:resources"]);
    assert!(claims.has_scope("mcp:tools"));
    assert_eq!(claims.expires_at, Some(NOW + 3600));
    assert_eq!(claims.cnf_jkt.as_deref(), Some(f.jkt().as_str()));
    assert!(f.client.thumbprint().matches_jkt(claims.cnf_jkt.as_deref().unwrap()));
    assert_eq!(claims.raw["jti"], "token-1");
}

#[tokio::test]
async fn unbound_token_is_accepted_without_cnf() {
    let f = fixture();
    let claims = f.validator.validate(&f.without("cnf")).await.unwrap();
    assert_eq!(claims.cnf_jkt, None);
}

#[tokio::test]
async fn issuer_must_match_exactly() {
    let f = fixture();
    assert_eq!(f.reason(&f.with("iss", json!("https://evil.example.com"))).await, "wrong issuer");
    assert_eq!(f.reason(&f.with("iss", json!("https://as.example.com/"))).await, "wrong issuer");
    assert_eq!(f.reason(&f.without("iss")).await, "missing iss");
    assert_eq!(f.reason(&f.with("iss", json!(["https://as.example.com"]))).await, "invalid iss");
}

#[tokio::test]
async fn audience_must_contain_the_resource() {
    let f = fixture();
    assert_eq!(f.reason(&f.with("aud", json!("https://other.example.com"))).await, "wrong audience");
    assert_eq!(f.reason(&f.with("aud", json!([]))).await, "wrong audience");
    assert_eq!(f.reason(&f.without("aud")).await, "missing aud");
    assert_eq!(f.reason(&f.with("aud", json!({"a": AUDIENCE}))).await, "invalid aud");
    let both = f.with("aud", json!(["https://other.example.com", AUDIENCE]));
    let claims = f.validator.validate(&both).await.unwrap();
    assert_eq!(claims.audience, ["https://other.example.com", AUDIENCE]);
}

#[tokio::test]
async fn lifetime_with_leeway() {
    let f = fixture();
    assert_eq!(f.reason(&f.with("exp", json!(NOW - 61))).await, "token expired");
    assert_eq!(f.reason(&f.with("exp", json!(NOW - 60))).await, "token expired");
    assert!(f.validator.validate(&f.with("exp", json!(NOW - 59))).await.is_ok());
    assert_eq!(f.reason(&f.without("exp")).await, "missing exp");
    assert_eq!(f.reason(&f.with("exp", json!("tomorrow"))).await, "invalid exp");
    assert_eq!(f.reason(&f.with("nbf", json!(NOW + 120))).await, "token not yet valid");
    assert!(f.validator.validate(&f.with("nbf", json!(NOW + 60))).await.is_ok());
    assert_eq!(f.reason(&f.with("iat", json!(NOW + 3600))).await, "token issued in the future");
    assert!(f.validator.validate(&f.with("iat", json!(NOW + 30))).await.is_ok());
}

#[tokio::test]
async fn leeway_is_configurable() {
    let f = fixture_with(|b| b.leeway(Duration::ZERO));
    assert_eq!(f.reason(&f.with("exp", json!(NOW))).await, "token expired");
    assert!(f.validator.validate(&f.with("exp", json!(NOW + 1))).await.is_ok());
    assert_eq!(f.reason(&f.with("nbf", json!(NOW + 1))).await, "token not yet valid");
}

#[tokio::test]
async fn explicit_typing_required_by_default() {
    let f = fixture();
    assert_eq!(f.reason(&f.without_header("typ")).await, "missing typ");
    assert_eq!(f.reason(&f.with_header("typ", json!("JWT"))).await, "wrong token type");
    assert_eq!(f.reason(&f.with_header("typ", json!("dpop+jwt"))).await, "wrong token type");
    for typ in ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"] {
        assert!(f.validator.validate(&f.with_header("typ", json!(typ))).await.is_ok(), "{typ}");
    }
}

#[tokio::test]
async fn explicit_typing_opt_out() {
    let f = fixture_with(|b| b.require_type(false));
    assert!(f.validator.validate(&f.without_header("typ")).await.is_ok());
    assert!(f.validator.validate(&f.with_header("typ", json!("JWT"))).await.is_ok());
    assert!(f.validator.validate(&f.with_header("typ", json!("at+jwt"))).await.is_ok());
    // Other explicit types are never access tokens.
    assert_eq!(f.reason(&f.with_header("typ", json!("dpop+jwt"))).await, "wrong token type");
}

#[tokio::test]
async fn algorithm_none_and_symmetric_are_refused() {
    let f = fixture();
    let payload = b64(&f.claims().to_string());
    let none = format!("{}.{payload}.", b64(r#"{"alg":"none","typ":"at+jwt"}"#));
    assert_eq!(f.reason(&none).await, "alg none is not allowed");
    let none_signed = format!("{}.{payload}.c2ln", b64(r#"{"alg":"none","typ":"at+jwt"}"#));
    assert_eq!(f.reason(&none_signed).await, "alg none is not allowed");
    let hs256 = format!(
        "{}.{payload}.{}",
        b64(&format!(r#"{{"alg":"HS256","typ":"at+jwt","kid":"{KID}"}}"#)),
        b64("0123456789abcdef0123456789abcdef")
    );
    assert_eq!(f.reason(&hs256).await, "symmetric alg is not allowed");
    assert_eq!(f.reason(&f.with_header("alg", json!("ES384"))).await, "alg not allowed");
    assert_eq!(f.reason(&f.with_header("alg", json!("RSA-OAEP"))).await, "alg not allowed");
    assert_eq!(f.reason(&f.with_header("alg", json!(256))).await, "invalid alg");
    assert_eq!(f.reason(&f.without_header("alg")).await, "missing alg");
}

#[tokio::test]
async fn key_must_fit_the_algorithm() {
    if !Algorithm::RS256.is_supported() {
        return;
    }
    // RS256 is allowed by default, but the key named by kid is an EC key.
    let f = fixture();
    assert_eq!(f.reason(&f.with_header("alg", json!("RS256"))).await, "signing key does not fit alg");
}

#[tokio::test]
async fn signature_must_verify() {
    let f = fixture();
    let token = f.as_key.token(&f.claims());
    let (rest, signature) = token.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{rest}.{flipped}{}", &signature[1..]);
    assert_eq!(f.reason(&tampered).await, "invalid signature");

    // Claims changed after signing.
    let (header, _) = rest.split_once('.').unwrap();
    let mut claims = f.claims();
    claims["scope"] = json!("admin");
    let swapped = format!("{header}.{}.{signature}", b64(&claims.to_string()));
    assert_eq!(f.reason(&swapped).await, "invalid signature");

    // A signature of the wrong length.
    assert_eq!(f.reason(&format!("{rest}.{}", b64("short"))).await, "invalid signature");
}

#[tokio::test]
async fn key_from_another_issuer_is_refused() {
    let f = fixture();
    // An attacker's key claiming the AS's kid.
    let forger = AsKey::new(KID);
    assert_eq!(f.reason(&forger.token(&f.claims())).await, "invalid signature");
}

#[tokio::test]
async fn unknown_or_missing_kid() {
    let f = fixture();
    assert_eq!(f.reason(&f.with_header("kid", json!("rotated-away"))).await, "unknown signing key");
    assert_eq!(f.reason(&f.with_header("kid", json!(7))).await, "invalid kid");
    // Two keys in the set: a token without kid cannot pick one.
    assert_eq!(f.reason(&f.without_header("kid")).await, "missing kid");
}

#[tokio::test]
async fn single_key_set_needs_no_kid() {
    let as_key = AsKey::new(KID);
    let set = JwkSet::from_json(&json!({"keys": [as_key.key.public_jwk()]}).to_string()).unwrap();
    let validator = JwtValidator::builder(ISSUER, AUDIENCE).keys(set).clock(ManualClock::at(NOW)).build().unwrap();
    let client = DpopKey::generate().unwrap();
    let claims = claims(&client.thumbprint().to_string());
    let token = as_key.sign(&json!({"alg": "ES256", "typ": "at+jwt"}), &claims);
    assert!(validator.validate(&token).await.is_ok());
    let named = as_key.sign(&json!({"alg": "ES256", "typ": "at+jwt", "kid": "x"}), &claims);
    assert_eq!(invalid_reason(validator.validate(&named).await), "unknown signing key");
}

#[tokio::test]
async fn duplicate_members_are_refused() {
    let f = fixture();
    let header = f.as_key.header().to_string();
    let claims = f.claims().to_string();
    // `"sub"` twice: serde_json would silently keep the last.
    let duplicate_claim = claims.replacen('{', r#"{"sub":"admin","#, 1);
    assert_eq!(f.reason(&f.as_key.sign_raw(&header, &duplicate_claim)).await, "duplicate claim member");
    // Nested: two `jkt` in `cnf`.
    let nested = claims.replacen(r#""cnf":{"#, r#""cnf":{"jkt":"other","#, 1);
    assert_ne!(nested, claims);
    assert_eq!(f.reason(&f.as_key.sign_raw(&header, &nested)).await, "duplicate claim member");
    let duplicate_header = header.replacen('{', r#"{"alg":"none","#, 1);
    assert_eq!(f.reason(&f.as_key.sign_raw(&duplicate_header, &claims)).await, "duplicate member in token header");
}

#[tokio::test]
async fn malformed_tokens() {
    let f = fixture();
    let token = f.as_key.token(&f.claims());
    let parts: Vec<&str> = token.split('.').collect();
    for bad in [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "a.b.c.d.e",
        ".b.c",
        "a..c",
        &format!("{}.{}", parts[0], parts[1]),
        &format!("{token}.extra"),
        &format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
        &format!("{}.{}.{}!", parts[0], parts[1], parts[2]),
    ] {
        assert_eq!(f.reason(bad).await, "malformed token", "{bad}");
    }
    assert_eq!(f.reason(&format!("!!.{}.{}", parts[1], parts[2])).await, "malformed token header");
    assert_eq!(f.reason(&format!("{}.{}.{}", b64("[1]"), parts[1], parts[2])).await, "malformed token header");
    let not_object = f.as_key.sign_raw(&f.as_key.header().to_string(), "[1,2]");
    assert_eq!(f.reason(&not_object).await, "malformed claims");
    let trailing = f.as_key.sign_raw(&f.as_key.header().to_string(), &format!("{} x", f.claims()));
    assert_eq!(f.reason(&trailing).await, "malformed claims");
}

#[tokio::test]
async fn oversize_and_deep_tokens() {
    let f = fixture();
    let big = f.with("pad", json!("a".repeat(MAX_TOKEN_LEN)));
    assert!(big.len() > MAX_TOKEN_LEN);
    assert_eq!(f.reason(&big).await, "token too large");
    assert_eq!(f.reason(&"a".repeat(MAX_TOKEN_LEN + 1)).await, "token too large");
    let deep = f.with("deep", serde_json::from_str(&format!("{}1{}", "[".repeat(30), "]".repeat(30))).unwrap());
    assert_eq!(f.reason(&deep).await, "claims too complex");
    // Just under the limit is fine.
    let mut claims = f.claims();
    claims["pad"] = json!("");
    let overhead = f.as_key.token(&claims).len();
    let room = (MAX_TOKEN_LEN - overhead) * 3 / 4 - 4;
    let fits = f.with("pad", json!("a".repeat(room)));
    assert!(fits.len() <= MAX_TOKEN_LEN, "{}", fits.len());
    assert!(f.validator.validate(&fits).await.is_ok());
}

#[tokio::test]
async fn other_header_and_claim_checks() {
    let f = fixture();
    assert_eq!(f.reason(&f.with_header("crit", json!(["exp"]))).await, "unsupported critical header");
    assert_eq!(f.reason(&f.with("cnf", json!({"jkt": 5}))).await, "invalid cnf");
    assert_eq!(f.reason(&f.with("cnf", json!("jkt"))).await, "invalid cnf");
    assert_eq!(
        f.reason(&f.with("cnf", json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}))).await,
        "unsupported confirmation method"
    );
    assert_eq!(f.reason(&f.with("scope", json!(["a", "b"]))).await, "invalid scope");
    assert_eq!(f.reason(&f.with("sub", json!(42))).await, "invalid sub");
}

#[test]
fn builder_errors() {
    let set = || JwkSet::from_json(&jwks(&[&AsKey::new(KID)])).unwrap();
    let err = |builder: dpop_token::JwtValidatorBuilder| builder.build().unwrap_err();
    assert_eq!(err(JwtValidator::builder(ISSUER, AUDIENCE)), ConfigError::NoKeySource);
    assert_eq!(err(JwtValidator::builder("", AUDIENCE).keys(set())), ConfigError::EmptyIssuer);
    assert_eq!(err(JwtValidator::builder(ISSUER, "").keys(set())), ConfigError::EmptyAudience);
    assert_eq!(
        err(JwtValidator::builder(ISSUER, AUDIENCE).keys(JwkSet::from_json(r#"{"keys":[]}"#).unwrap())),
        ConfigError::EmptyKeySet
    );
    assert_eq!(err(JwtValidator::builder(ISSUER, AUDIENCE).keys(set()).algorithms([])), ConfigError::NoAlgorithms);
    if !Algorithm::ES512.is_supported() {
        assert_eq!(
            err(JwtValidator::builder(ISSUER, AUDIENCE).keys(set()).algorithms([Algorithm::ES512])),
            ConfigError::UnsupportedAlgorithm(Algorithm::ES512)
        );
    }
    let only = JwtValidator::builder(ISSUER, AUDIENCE).keys(set()).algorithms([Algorithm::ES256]).build().unwrap();
    assert_eq!(only.algorithms().iter().collect::<Vec<_>>(), [Algorithm::ES256]);
}
