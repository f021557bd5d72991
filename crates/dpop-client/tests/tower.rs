//! The tower client layer around hyper-util's legacy client, against the real servers: a
//! resource server nonce (401), an authorization server nonce (400 JSON, read and handed back),
//! a streaming body that cannot be sent twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use bytes::Bytes;
use dpop_client::tower::DpopLayer;
use dpop_client::{ClientError, DpopSession};
use dpop_core::DpopKey;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use support::{AuthOptions, AuthServer, ResourceOptions, ResourceServer};
use tower::ServiceExt as _;
use tower_layer::Layer as _;

fn post<B>(url: &str, token: Option<&str>, body: B) -> http::Request<B> {
    let mut request = http::Request::post(url).header("content-type", "application/x-www-form-urlencoded");
    if let Some(token) = token {
        request = request.header("authorization", format!("DPoP {token}"));
    }
    request.body(body).unwrap()
}

#[tokio::test]
async fn a_resource_server_nonce_with_a_buffered_body() {
    let server = ResourceServer::start(ResourceOptions { nonces_on_post: true, ..Default::default() }).await;
    let session = DpopSession::new(DpopKey::generate().unwrap());
    let client = DpopLayer::new(session.clone()).layer(Client::builder(TokioExecutor::new()).build_http());
    let token = format!("at.{}.0", session.jkt());
    let request = post(&server.url("/upload"), Some(&token), Full::new(Bytes::from_static(b"hello")));
    let response = client.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "5");
    assert_eq!((server.counters.requests(), server.counters.refusals()), (2, 1));
}

#[tokio::test]
async fn an_authorization_server_nonce_in_a_400_json_body() {
    let auth = AuthServer::start(AuthOptions { nonces: true, ..Default::default() }).await;
    let session = DpopSession::new(DpopKey::generate().unwrap());
    let client = DpopLayer::new(session.clone()).layer(Client::builder(TokioExecutor::new()).build_http());
    let body = Full::new(Bytes::from_static(b"grant_type=client_credentials&client_id=preregistered"));
    let response = client.clone().oneshot(post(&auth.token_endpoint(), None, body)).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!((auth.counters.requests(), auth.counters.refusals()), (2, 1));

    // A refusal that is not about nonces is handed back with its body.
    let body = Full::new(Bytes::from_static(b"grant_type=password"));
    let response = client.oneshot(post(&auth.token_endpoint(), None, body)).await.unwrap();
    assert_eq!(response.status(), 400);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, r#"{"error":"unsupported_grant_type"}"#);
}

#[tokio::test]
async fn a_streaming_body_is_not_sent_twice() {
    let server = ResourceServer::start(ResourceOptions { nonces_on_post: true, ..Default::default() }).await;
    let session = DpopSession::new(DpopKey::generate().unwrap());
    let client = DpopLayer::new(session.clone())
        .layer(Client::builder(TokioExecutor::new()).build_http::<BoxBody<Bytes, std::convert::Infallible>>());
    let token = format!("at.{}.0", session.jkt());
    let body = Full::new(Bytes::from_static(b"hello")).boxed();
    let error = client.oneshot(post(&server.url("/upload"), Some(&token), body)).await.unwrap_err();
    assert!(matches!(error.downcast_ref::<ClientError>(), Some(ClientError::BodyNotReplayable)), "{error}");
    assert_eq!(server.counters.requests(), 1);
}
