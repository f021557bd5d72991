//! The reqwest middleware against real servers on 127.0.0.1: nonces from a resource server
//! (401) and an authorization server (400 JSON), rotation, clock skew, a broken server, bodies
//! that cannot be sent twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use dpop_client::{ClientError, DpopSession};
use dpop_core::DpopKey;
use reqwest_middleware::ClientWithMiddleware;
use support::{AuthOptions, AuthServer, ResourceOptions, ResourceServer, clock_ahead};

fn session() -> DpopSession {
    DpopSession::new(DpopKey::generate().unwrap())
}

fn http(session: &DpopSession) -> ClientWithMiddleware {
    dpop_client::reqwest::client(reqwest::Client::new(), session.clone())
}

/// A token the resource server's validator takes as bound to the session's key.
fn token(session: &DpopSession) -> String {
    format!("at.{}.0", session.jkt())
}

async fn call(http: &ClientWithMiddleware, method: reqwest::Method, url: &str, token: &str) -> (u16, String) {
    let response =
        http.request(method, url).header("authorization", format!("DPoP {token}")).body("{}").send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// A `client_credentials` token request through the middleware (no `ath`, `htu` the endpoint).
async fn token_request(http: &ClientWithMiddleware, auth: &AuthServer) -> (u16, serde_json::Value) {
    let response = http
        .post(auth.token_endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=preregistered")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, serde_json::from_str(&response.text().await.unwrap()).unwrap_or_default())
}

#[tokio::test]
async fn without_nonces_one_request_each() {
    let server = ResourceServer::start(ResourceOptions::default()).await;
    let session = session();
    let http = http(&session);
    for _ in 0..3 {
        assert_eq!(
            call(&http, reqwest::Method::GET, &server.url("/api?q=1#f"), &token(&session)).await,
            (200, session.jkt())
        );
    }
    assert_eq!(server.counters.requests(), 3);
    assert_eq!(server.counters.refusals(), 0);
}

#[tokio::test]
async fn a_resource_server_nonce_costs_one_round_trip_once() {
    let server = ResourceServer::start(ResourceOptions { nonces_on_post: true, ..Default::default() }).await;
    let session = session();
    let http = http(&session);
    let url = server.url("/api");
    assert_eq!(call(&http, reqwest::Method::POST, &url, &token(&session)).await, (200, session.jkt()));
    assert_eq!((server.counters.requests(), server.counters.refusals()), (2, 1), "one use_dpop_nonce, one retry");
    assert!(session.nonce(&url).is_some());
    assert_eq!(call(&http, reqwest::Method::POST, &url, &token(&session)).await.0, 200);
    assert_eq!((server.counters.requests(), server.counters.refusals()), (3, 1), "the cached nonce is used");
}

#[tokio::test]
async fn an_authorization_server_nonce_in_a_400_json_body() {
    let auth = AuthServer::start(AuthOptions { nonces: true, ..Default::default() }).await;
    let session = session();
    let (status, body) = token_request(&http(&session), &auth).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(body["access_token"].as_str().unwrap().split('.').nth(1), Some(session.jkt().as_str()));
    assert_eq!((auth.counters.requests(), auth.counters.refusals()), (2, 1));
}

#[tokio::test]
async fn nonces_of_both_servers_are_kept_apart() {
    let auth = AuthServer::start(AuthOptions { nonces: true, ..Default::default() }).await;
    let server = ResourceServer::start(ResourceOptions { nonces_on_post: true, ..Default::default() }).await;
    let session = session();
    let http = http(&session);
    let (status, body) = token_request(&http, &auth).await;
    assert_eq!(status, 200);
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(call(&http, reqwest::Method::POST, &server.url("/api"), token).await.0, 200);
    let (as_nonce, rs_nonce) = (session.nonce(&auth.token_endpoint()), session.nonce(&server.url("/api")));
    assert!(as_nonce.is_some() && rs_nonce.is_some() && as_nonce != rs_nonce);
    // Both again: no refusal anywhere, each origin gets its own nonce.
    assert_eq!(token_request(&http, &auth).await.0, 200);
    assert_eq!(call(&http, reqwest::Method::POST, &server.url("/api"), token).await.0, 200);
    assert_eq!((auth.counters.refusals(), server.counters.refusals()), (1, 1));
}

#[tokio::test]
async fn nonce_rotation_in_the_middle_of_a_session() {
    let nonce_clock = clock_ahead(0);
    let options =
        ResourceOptions { nonces_on_post: true, nonce_clock: Some(nonce_clock.clone()), ..Default::default() };
    let server = ResourceServer::start(options).await;
    let session = session();
    let http = http(&session);
    let url = server.url("/api");
    assert_eq!(call(&http, reqwest::Method::POST, &url, &token(&session)).await.0, 200);
    let first = session.nonce(&url).unwrap();

    // Past half its lifetime: the success carries the next nonce, no refusal.
    nonce_clock.advance(200);
    assert_eq!(call(&http, reqwest::Method::POST, &url, &token(&session)).await.0, 200);
    let second = session.nonce(&url).unwrap();
    assert_ne!(first, second, "the next nonce came with the 200");
    assert_eq!(server.counters.refusals(), 1);

    // Stale: refused once, the fresh nonce is taken, the retry passes.
    nonce_clock.advance(400);
    assert_eq!(call(&http, reqwest::Method::POST, &url, &token(&session)).await.0, 200);
    assert_ne!(session.nonce(&url).unwrap(), second);
    assert_eq!(server.counters.refusals(), 2);
}

#[tokio::test]
async fn a_resource_server_400_seconds_ahead() {
    let options = ResourceOptions { clock: Some(clock_ahead(400)), nonces_on_post: true, ..Default::default() };
    let server = ResourceServer::start(options).await;
    let session = session();
    let http = http(&session);
    let url = server.url("/api");
    // GET: no nonce needed; the proof's iat is 400 s old for this server, its Date says why.
    assert_eq!(call(&http, reqwest::Method::GET, &url, &token(&session)).await.0, 200);
    assert_eq!((server.counters.requests(), server.counters.refusals()), (2, 1));
    assert!((399..=401).contains(&session.clock_offset(&url)), "{}", session.clock_offset(&url));
    // From now on one round trip, nonces included (the nonce issuer runs on the same clock).
    assert_eq!(call(&http, reqwest::Method::POST, &url, &token(&session)).await.0, 200);
    assert_eq!(call(&http, reqwest::Method::POST, &url, &token(&session)).await.0, 200);
    assert_eq!((server.counters.requests(), server.counters.refusals()), (5, 2));
}

#[tokio::test]
async fn an_authorization_server_400_seconds_ahead() {
    let auth = AuthServer::start(AuthOptions { clock: Some(clock_ahead(400)), ..Default::default() }).await;
    let session = session();
    let (status, body) = token_request(&http(&session), &auth).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((auth.counters.requests(), auth.counters.refusals()), (2, 1));
}

#[tokio::test]
async fn a_clock_within_the_threshold_is_not_corrected() {
    // The server's window is ±300 s; 30 s ahead is within the 60 s threshold: no offset.
    let server = ResourceServer::start(ResourceOptions { clock: Some(clock_ahead(30)), ..Default::default() }).await;
    let session = session();
    assert_eq!(call(&http(&session), reqwest::Method::GET, &server.url("/api"), &token(&session)).await.0, 200);
    assert_eq!(session.clock_offset(&server.url("/api")), 0);
    assert_eq!(server.counters.requests(), 1);
}

#[tokio::test]
async fn an_iat_refusal_without_a_new_clock_is_final() {
    // The verifier runs 400 s ahead but the server's Date is the real time: nothing to learn.
    let options = ResourceOptions { clock: Some(clock_ahead(400)), system_date: true, ..Default::default() };
    let server = ResourceServer::start(options).await;
    let session = session();
    assert_eq!(call(&http(&session), reqwest::Method::GET, &server.url("/api"), &token(&session)).await.0, 401);
    assert_eq!(server.counters.requests(), 1, "no retry");
}

#[tokio::test]
async fn a_server_that_always_wants_another_nonce_costs_one_retry() {
    let server = ResourceServer::start(ResourceOptions::default()).await;
    let session = session();
    let (status, _) = call(&http(&session), reqwest::Method::POST, &server.url("/broken"), &token(&session)).await;
    assert_eq!(status, 401, "the final refusal is handed back");
    assert_eq!(server.counters.requests(), 2, "exactly one retry");
}

#[tokio::test]
async fn a_streaming_body_is_not_sent_twice() {
    let server = ResourceServer::start(ResourceOptions { nonces_on_post: true, ..Default::default() }).await;
    let session = session();
    let http = http(&session);
    let url = server.url("/upload");
    let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"abc"))]);
    let error = http
        .post(&url)
        .header("authorization", format!("DPoP {}", token(&session)))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap_err();
    let reqwest_middleware::Error::Middleware(error) = error else { panic!("{error:?}") };
    assert!(matches!(error.downcast_ref::<ClientError>(), Some(ClientError::BodyNotReplayable)), "{error}");
    assert_eq!(server.counters.requests(), 1);

    // The nonce of that refusal is cached: the same streaming request now passes first time.
    let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"abcd"))]);
    let response = http
        .post(&url)
        .header("authorization", format!("DPoP {}", token(&session)))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "4");
}
