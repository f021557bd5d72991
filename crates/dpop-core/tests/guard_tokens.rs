//! The guard with a token validator: binding (RFC 9449 §6), downgrade (§7.2), scopes, failures,
//! and the RFC 9728 metadata it serves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dpop_core::TokenFuture;
use dpop_core::{
    Admission, AuthScheme, ConfigError, DpopError, DpopGuard, DpopKey, InvalidToken, RequestUri, TokenClaims,
    TokenError, TokenValidator, headers::HeaderValues,
};
use serde_json::json;

/// Answers every token with the claims (or error) it was built with, and counts calls.
struct FixedValidator {
    outcome: fn() -> Result<TokenClaims, TokenError>,
    calls: Arc<AtomicUsize>,
}

impl TokenValidator for FixedValidator {
    fn validate<'a>(&'a self, _token: &'a str) -> TokenFuture<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(std::future::ready((self.outcome)().map(Arc::new)))
    }
}

const URL: &str = "https://mcp.example.com/mcp";
const URI: RequestUri<'static> = RequestUri { scheme: None, authority: None, path: "/mcp" };

fn claims(value: serde_json::Value) -> TokenClaims {
    TokenClaims::from_json(value.as_object().cloned().unwrap_or_default())
}

fn guard(outcome: fn() -> Result<TokenClaims, TokenError>, bearer: bool) -> (DpopGuard, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let guard = DpopGuard::builder()
        .resource(URL)
        .authorization_server("https://as.example.com")
        .scopes_supported(["mcp:tools", "mcp:admin"])
        .allow_bearer(bearer)
        .token_validator(FixedValidator { outcome, calls: Arc::clone(&calls) })
        .build()
        .unwrap();
    (guard, calls)
}

/// Sends `Authorization: <authorization>` (and a proof by `key`, if any) through `guard`.
async fn send(
    guard: &DpopGuard,
    authorization: &str,
    key: Option<&DpopKey>,
) -> Result<dpop_core::Authentication, dpop_core::Rejection> {
    let proof = key.map(|key| key.proof("GET", URL).access_token("tok").sign().unwrap());
    let proof = proof.as_deref();
    let headers = |name: &'static str| -> HeaderValues<'_> {
        match name {
            "authorization" => [authorization.as_bytes()].into_iter().collect(),
            "dpop" => proof.map(str::as_bytes).into_iter().collect(),
            _ => HeaderValues::NONE,
        }
    };
    guard.authorize("GET", &URI, headers).await.map(|admission| match admission {
        Admission::Authenticated(authentication) => authentication,
        Admission::ProofOnly(_) => panic!("a guard with a token validator admitted a request as proof-only"),
    })
}

static KEY: std::sync::LazyLock<DpopKey> = std::sync::LazyLock::new(|| DpopKey::generate().unwrap());

fn bound_to_key() -> Result<TokenClaims, TokenError> {
    Ok(claims(json!({"sub": "alice", "scope": "mcp:tools", "cnf": {"jkt": KEY.thumbprint().to_string()}})))
}

fn bound_to_other_key() -> Result<TokenClaims, TokenError> {
    Ok(claims(
        json!({"sub": "alice", "scope": "mcp:tools", "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}),
    ))
}

fn unbound() -> Result<TokenClaims, TokenError> {
    Ok(claims(json!({"sub": "alice", "scope": "mcp:tools"})))
}

#[tokio::test]
async fn a_bound_token_with_its_proof_passes_with_claims() {
    let (guard, calls) = guard(bound_to_key, false);
    let auth = send(&guard, "DPoP tok", Some(&KEY)).await.unwrap();
    assert_eq!(auth.scheme(), AuthScheme::Dpop);
    assert_eq!(auth.claims().subject.as_deref(), Some("alice"));
    assert_eq!(auth.subject(), Some("alice"));
    assert_eq!(auth.jkt(), Some(KEY.thumbprint().as_jkt()));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn handlers_read_the_claims_in_their_own_type() {
    #[derive(serde::Deserialize)]
    struct McpClaims {
        sub: String,
        scope: String,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct NeedsTenant {
        tenant: String,
    }
    let (guard, _) = guard(bound_to_key, false);
    let auth = send(&guard, "DPoP tok", Some(&KEY)).await.unwrap();
    let claims: McpClaims = auth.claims_as().unwrap();
    assert_eq!((claims.sub.as_str(), claims.scope.as_str()), ("alice", "mcp:tools"));
    assert!(auth.claims_as::<NeedsTenant>().is_err(), "a claim the token lacks is an error, not a default");
}

#[tokio::test]
async fn a_token_bound_to_another_key_is_figure_16() {
    let (guard, _) = guard(bound_to_other_key, false);
    let rejection = send(&guard, "DPoP tok", Some(&KEY)).await.unwrap_err();
    assert_eq!(rejection.status(), 401);
    assert_eq!(
        rejection.www_authenticate(),
        Some(
            r#"DPoP error="invalid_token", error_description="Invalid DPoP key binding", algs="ES256", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#
        )
    );
}

#[tokio::test]
async fn an_unbound_token_with_the_dpop_scheme_is_refused() {
    let (guard, _) = guard(unbound, false);
    let rejection = send(&guard, "DPoP tok", Some(&KEY)).await.unwrap_err();
    assert_eq!(rejection.error(), Some(&DpopError::TokenNotBound));
}

#[tokio::test]
async fn a_bound_token_as_bearer_is_a_downgrade() {
    let (guard, _) = guard(bound_to_key, true);
    let rejection = send(&guard, "Bearer tok", None).await.unwrap_err();
    assert_eq!(rejection.error(), Some(&DpopError::BoundTokenAsBearer));
    assert!(rejection.www_authenticate().unwrap().starts_with(r#"Bearer error="invalid_token""#));
}

fn unreadable_binding() -> Result<TokenClaims, TokenError> {
    Ok(claims(json!({"sub": "alice", "cnf": {"jkt": 42}})))
}

#[tokio::test]
async fn a_token_with_an_unreadable_cnf_is_still_bound_for_bearer() {
    let (guard, _) = guard(unreadable_binding, true);
    let rejection = send(&guard, "Bearer tok", None).await.unwrap_err();
    assert_eq!(rejection.error(), Some(&DpopError::BoundTokenAsBearer));
}

#[test]
fn fractional_exp_is_a_numeric_date() {
    assert_eq!(claims(json!({"exp": 1700000000.75})).expires_at, Some(1_700_000_000));
    assert_eq!(claims(json!({"exp": -5})).expires_at, None);
    assert_eq!(claims(json!({"exp": "soon"})).expires_at, None);
}

#[tokio::test]
async fn an_unbound_token_as_bearer_passes_in_mixed_mode() {
    let (guard, _) = guard(unbound, true);
    let auth = send(&guard, "Bearer tok", None).await.unwrap();
    assert_eq!(auth.scheme(), AuthScheme::Bearer);
}

#[tokio::test]
async fn an_invalid_token_is_401_invalid_token() {
    let (guard, _) = guard(|| Err(TokenError::Invalid(InvalidToken::Expired)), false);
    let rejection = send(&guard, "DPoP tok", Some(&KEY)).await.unwrap_err();
    assert_eq!(rejection.error(), Some(&DpopError::InvalidAccessToken(InvalidToken::Expired)));
    assert!(
        rejection.www_authenticate().unwrap().contains(r#"error_description="Invalid access token: token expired""#)
    );
}

#[tokio::test]
async fn a_validator_that_cannot_decide_is_503() {
    let (guard, _) = guard(|| Err(TokenError::Unavailable("jwks endpoint down".into())), false);
    let rejection = send(&guard, "DPoP tok", Some(&KEY)).await.unwrap_err();
    assert_eq!(rejection.status(), 503);
}

#[tokio::test]
async fn missing_scopes_are_403_with_the_required_scope() {
    let (guard, _) = guard(bound_to_key, false);
    let admin = guard.with_required_scopes(["mcp:admin"]).unwrap();
    let rejection = send(&admin, "DPoP tok", Some(&KEY)).await.unwrap_err();
    assert_eq!(rejection.status(), 403);
    assert!(rejection.www_authenticate().unwrap().starts_with(
        r#"DPoP error="insufficient_scope", error_description="The access token lacks a required scope", scope="mcp:admin", algs="ES256""#
    ));
    let tools = guard.with_required_scopes(["mcp:tools"]).unwrap();
    send(&tools, "DPoP tok", Some(&KEY)).await.unwrap();
}

#[tokio::test]
async fn a_rejected_token_does_not_consume_the_proof() {
    let (refusing, _) = guard(bound_to_other_key, false);
    let proof = KEY.proof("GET", URL).access_token("tok").sign().unwrap();
    let headers = |name: &'static str| -> HeaderValues<'_> {
        match name {
            "authorization" => [&b"DPoP tok"[..]].into_iter().collect(),
            "dpop" => [proof.as_bytes()].into_iter().collect(),
            _ => HeaderValues::NONE,
        }
    };
    refusing.authorize("GET", &URI, headers).await.unwrap_err();
    // The same verifier (shared replay store), now with a token bound to the right key.
    let accepting = DpopGuard::builder()
        .resource(URL)
        .verifier(refusing.verifier().clone())
        .token_validator(FixedValidator { outcome: bound_to_key, calls: Arc::default() })
        .build()
        .unwrap();
    accepting.authorize("GET", &URI, headers).await.unwrap();
}

#[test]
fn scopes_need_a_validator() {
    let err = DpopGuard::builder().proof_only().required_scopes(["a"]).build().unwrap_err();
    assert_eq!(err, ConfigError::ScopesWithoutTokenValidator);
    let proof_only = DpopGuard::proof_only();
    assert_eq!(proof_only.with_required_scopes(["a"]).unwrap_err(), ConfigError::ScopesWithoutTokenValidator);
}

#[test]
fn a_guard_needs_a_token_validator_or_says_it_is_proof_only() {
    assert_eq!(DpopGuard::builder().build().unwrap_err(), ConfigError::NoTokenValidator);
    assert!(DpopGuard::builder().proof_only().build().unwrap().is_proof_only());
    let (validating, _) = guard(unbound, false);
    assert!(!validating.is_proof_only());
}

#[test]
fn bearer_needs_a_token_validator() {
    let err = DpopGuard::builder().proof_only().allow_bearer(true).build().unwrap_err();
    assert_eq!(err, ConfigError::BearerWithoutTokenValidator);
    assert!(err.to_string().contains("allow_bearer(true) needs a token validator"), "{err}");
}

#[test]
fn metadata_is_served_at_the_path_inserted_well_known_url() {
    let (guard, _) = guard(unbound, false);
    assert_eq!(guard.metadata_path(), Some("/.well-known/oauth-protected-resource/mcp"));
    let reply = guard.metadata_reply("GET", "/.well-known/oauth-protected-resource/mcp").unwrap();
    assert_eq!(reply.status(), 200);
    let document: serde_json::Value = serde_json::from_str(reply.body()).unwrap();
    assert_eq!(
        document,
        json!({
            "resource": URL,
            "authorization_servers": ["https://as.example.com"],
            "scopes_supported": ["mcp:tools", "mcp:admin"],
            "bearer_methods_supported": ["header"],
            "dpop_signing_alg_values_supported": ["ES256"],
            "dpop_bound_access_tokens_required": true,
        })
    );
    assert!(reply.headers().any(|h| h == ("access-control-allow-origin", "*")));
    assert!(guard.metadata_reply("POST", "/.well-known/oauth-protected-resource/mcp").is_none());
    assert!(guard.metadata_reply("GET", "/.well-known/oauth-protected-resource").is_none());
}

#[test]
fn metadata_follows_the_enforced_configuration() {
    // EdDSA where the backend has it, ES384 on ring, ES256 alone on RustCrypto.
    let second = [dpop_core::Algorithm::EdDSA, dpop_core::Algorithm::ES384].into_iter().find(|alg| alg.is_supported());
    let algorithms: Vec<_> = std::iter::once(dpop_core::Algorithm::ES256).chain(second).collect();
    // Allowing EdDSA allows its fully-specified name Ed25519 too (RFC 9864), and both are advertised.
    let names: Vec<&str> = match second {
        Some(dpop_core::Algorithm::EdDSA) => vec!["ES256", "EdDSA", "Ed25519"],
        Some(other) => vec!["ES256", other.name()],
        None => vec!["ES256"],
    };
    let verifier = dpop_core::DpopVerifier::builder().algorithms(algorithms.clone()).build().unwrap();
    let guard = DpopGuard::builder().resource("https://rs.example.com/").verifier(verifier).allow_bearer(true);
    let guard = guard.token_validator(FixedValidator { outcome: unbound, calls: Arc::default() }).build().unwrap();
    assert_eq!(guard.metadata_path(), Some("/.well-known/oauth-protected-resource"));
    let reply = guard.metadata_reply("HEAD", "/.well-known/oauth-protected-resource").unwrap();
    let document: serde_json::Value = serde_json::from_str(reply.body()).unwrap();
    assert_eq!(document["dpop_signing_alg_values_supported"], json!(names));
    assert_eq!(document["dpop_bound_access_tokens_required"], json!(false));
    assert_eq!(
        guard.challenge().www_authenticate(),
        Some(
            format!(
                r#"Bearer resource_metadata="https://rs.example.com/.well-known/oauth-protected-resource", DPoP algs="{}", resource_metadata="https://rs.example.com/.well-known/oauth-protected-resource""#,
                names.join(" ")
            )
            .as_str()
        )
    );
}

#[test]
fn the_resource_origin_is_the_default_public_origin() {
    let guard = DpopGuard::builder().proof_only().resource(URL).build().unwrap();
    let key = DpopKey::generate().unwrap();
    let proof = key.proof("GET", URL).access_token("tok").sign().unwrap();
    let headers = |name: &'static str| -> HeaderValues<'_> {
        match name {
            "authorization" => [&b"DPoP tok"[..]].into_iter().collect(),
            "dpop" => [proof.as_bytes()].into_iter().collect(),
            "host" => [&b"evil.example"[..]].into_iter().collect(),
            _ => HeaderValues::NONE,
        }
    };
    let _pending = guard.check("GET", &URI, headers).unwrap();
}

#[test]
fn bad_resources_are_configuration_errors() {
    assert_eq!(DpopGuard::builder().resource("/mcp").build().unwrap_err(), ConfigError::InvalidResource);
    assert_eq!(
        DpopGuard::builder().authorization_server("https://as").build().unwrap_err(),
        ConfigError::MetadataWithoutResource
    );
}
