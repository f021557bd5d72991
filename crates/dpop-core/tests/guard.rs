//! The framework-free request decision: `Authorization` parsing, the target URI, rejections.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use dpop_core::{
    Admission, ConfigError, DpopError, DpopGuard, DpopKey, RequestUri, headers::HeaderValues, internals::Credentials,
    internals::parse_authorization,
};

fn values(list: &[&'static str]) -> HeaderValues<'static> {
    list.iter().map(|v| v.as_bytes()).collect()
}

#[test]
fn header_values_keep_two_and_count_all() {
    let three = values(&["a", "b", "c"]);
    assert_eq!(three.count(), 3);
    assert_eq!(three.iter().count(), 2);
    assert_eq!(three.single(), None);
    assert_eq!(values(&["a"]).single(), Some(&b"a"[..]));
    assert_eq!(values(&[]).count(), 0);
}

#[test]
fn authorization_schemes_and_tokens() {
    assert_eq!(parse_authorization(values(&[])), Ok(Credentials::Absent));
    assert_eq!(parse_authorization(values(&["DPoP abc"])), Ok(Credentials::Dpop("abc")));
    assert_eq!(parse_authorization(values(&["dpop abc"])), Ok(Credentials::Dpop("abc")));
    assert_eq!(parse_authorization(values(&["DPOP   abc"])), Ok(Credentials::Dpop("abc")));
    assert_eq!(parse_authorization(values(&["Bearer a.b-c_d~e+f/g=="])), Ok(Credentials::Bearer("a.b-c_d~e+f/g==")));
    assert_eq!(parse_authorization(values(&["Basic dXNlcg=="])), Ok(Credentials::OtherScheme));
}

#[test]
fn malformed_authorization_is_invalid_request() {
    for bad in
        ["DPoP", "DPoP ", "DPoP a b", "DPoP a,b", "DPoP =abc", "DPoP a=b", "DP@P abc", " DPoP abc", "DPoP \"abc\""]
    {
        assert_eq!(parse_authorization(values(&[bad])), Err(DpopError::MalformedAuthorization), "{bad:?}");
    }
    let non_utf8: HeaderValues<'_> = [&b"DPoP \xff"[..]].into_iter().collect();
    assert_eq!(parse_authorization(non_utf8), Err(DpopError::MalformedAuthorization));
    assert_eq!(parse_authorization(values(&["DPoP a", "DPoP a"])), Err(DpopError::MultipleAuthorization));
    assert_eq!(DpopError::MultipleAuthorization.status(), 400);
}

#[test]
fn every_ascii_byte_is_accepted_in_a_token_exactly_when_token68_allows_it() {
    // RFC 9110 §11.2: token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    for byte in 0u8..=0x7f {
        let allowed = byte.is_ascii_alphanumeric() || b"-._~+/".contains(&byte);
        let value = format!("DPoP a{}b", char::from(byte));
        let parsed = parse_authorization([value.as_bytes()].into_iter().collect());
        if allowed {
            assert!(parsed.is_ok(), "byte {byte:#04x} belongs to token68");
        } else {
            assert!(parsed.is_err(), "byte {byte:#04x} does not belong to token68");
        }
    }
}

const PATH: RequestUri<'static> = RequestUri { scheme: None, authority: None, path: "/mcp" };

fn lookup(headers: &'static [(&'static str, &'static str)]) -> impl Fn(&'static str) -> HeaderValues<'static> {
    move |name| headers.iter().filter(|(n, _)| *n == name).map(|(_, v)| v.as_bytes()).collect()
}

#[tokio::test]
async fn a_proof_only_guard_admits_a_valid_proof_as_proof_only() {
    let guard = DpopGuard::proof_only();
    let key = DpopKey::generate().unwrap();
    let proof: &'static str =
        Box::leak(key.proof("GET", "http://api.test/mcp").access_token("t").sign().unwrap().into_boxed_str());
    let headers: &'static [(&str, &str)] =
        Box::leak(vec![("authorization", "DPoP t"), ("dpop", proof), ("host", "api.test")].into_boxed_slice());
    let Admission::ProofOnly(auth) = guard.authorize("GET", &PATH, lookup(headers)).await.unwrap() else {
        panic!("a proof-only guard must never hand out an Authentication");
    };
    assert_eq!(auth.unvalidated_access_token(), "t");
    assert_eq!(auth.jkt(), key.thumbprint().to_string());
    assert_eq!(auth.jti(), auth.proof().jti());
    let again = guard.authorize("GET", &PATH, lookup(headers)).await.unwrap_err();
    assert_eq!(again.error(), Some(&DpopError::Replayed));
}

#[test]
fn no_credentials_is_a_bare_challenge() {
    let rejection = DpopGuard::proof_only().check("GET", &PATH, lookup(&[])).unwrap_err();
    assert_eq!(rejection.status(), 401);
    assert_eq!(rejection.error(), None);
    assert_eq!(rejection.www_authenticate(), Some(r#"DPoP algs="ES256""#));
    let reply = rejection.reply();
    let headers: Vec<_> = reply.headers().collect();
    assert!(headers.contains(&("cache-control", "no-store")));
    assert!(headers.contains(&("content-type", "application/json")));
    let body: serde_json::Value = serde_json::from_str(&rejection.body()).unwrap();
    assert_eq!(body["error"], "unauthorized");
}

#[test]
fn target_uri_needs_a_usable_host() {
    let guard = DpopGuard::proof_only();
    for headers in [
        &[("authorization", "DPoP t"), ("dpop", "x")][..],
        &[("authorization", "DPoP t"), ("dpop", "x"), ("host", "a.test"), ("host", "b.test")],
        &[("authorization", "DPoP t"), ("dpop", "x"), ("host", "a.test/evil")],
        &[("authorization", "DPoP t"), ("dpop", "x"), ("host", "user@a.test")],
        &[("authorization", "DPoP t"), ("dpop", "x"), ("host", "a.test b")],
    ] {
        let leaked: &'static [(&str, &str)] = Box::leak(headers.to_vec().into_boxed_slice());
        let rejection = guard.check("GET", &PATH, lookup(leaked)).unwrap_err();
        assert_eq!(rejection.error(), Some(&DpopError::InvalidTargetUri), "{headers:?}");
        assert_eq!(rejection.status(), 400);
    }
}

#[test]
fn an_absolute_request_uri_wins_over_host() {
    let guard = DpopGuard::proof_only();
    let key = DpopKey::generate().unwrap();
    let proof: &'static str =
        Box::leak(key.proof("GET", "https://h2.test/mcp").access_token("t").sign().unwrap().into_boxed_str());
    let headers: &'static [(&str, &str)] =
        Box::leak(vec![("authorization", "DPoP t"), ("dpop", proof), ("host", "other.test")].into_boxed_slice());
    let uri = RequestUri { scheme: Some("https"), authority: Some("h2.test"), path: "/mcp" };
    let _pending = guard.check("GET", &uri, lookup(headers)).unwrap();
}

#[test]
fn a_public_origin_must_be_an_absolute_http_uri() {
    for bad in
        ["mcp.example.com", "ftp://mcp.example.com", "https://mcp.example.com/?q", "https://user@mcp.example.com", ""]
    {
        let err = DpopGuard::builder().proof_only().public_origin(bad).build().unwrap_err();
        assert_eq!(err, ConfigError::InvalidPublicOrigin, "{bad}");
    }
    DpopGuard::builder().proof_only().public_origin("https://mcp.example.com/").build().unwrap();
    DpopGuard::builder().proof_only().public_origin("http://127.0.0.1:8080/base").build().unwrap();
}

#[test]
fn a_store_failure_is_503_without_a_challenge() {
    let rejection = DpopGuard::proof_only().reject(DpopError::ReplayStoreUnavailable);
    assert_eq!(rejection.status(), 503);
    assert_eq!(rejection.www_authenticate(), None);
    assert!(rejection.body().contains("temporarily_unavailable"));
}

#[test]
fn a_bound_token_as_bearer_puts_the_error_on_the_bearer_challenge() {
    let guard = DpopGuard::builder()
        .token_validator(dpop_core::validator_fn(|_| {
            Err(dpop_core::TokenError::Invalid(dpop_core::InvalidToken::Other("unknown token")))
        }))
        .allow_bearer(true)
        .resource_metadata("https://rs.test/.well-known/oauth-protected-resource")
        .build()
        .unwrap();
    let rejection = guard.reject(DpopError::BoundTokenAsBearer);
    assert_eq!(
        rejection.www_authenticate(),
        Some(
            r#"Bearer error="invalid_token", error_description="DPoP-bound access token must be sent with the DPoP scheme", resource_metadata="https://rs.test/.well-known/oauth-protected-resource", DPoP algs="ES256", resource_metadata="https://rs.test/.well-known/oauth-protected-resource""#
        )
    );
}

#[test]
fn the_first_configuration_error_is_the_one_reported() {
    let err =
        DpopGuard::builder().proof_only().resource("ftp://x").authorization_server("https://as").build().unwrap_err();
    assert_eq!(err, ConfigError::InvalidResource);
}
