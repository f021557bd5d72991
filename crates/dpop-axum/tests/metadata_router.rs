//! `metadata_router` over real HTTP: a router that protects `/mcp` with `route_layer` (so the
//! layer never sees the well-known path) still serves the RFC 9728 document every challenge
//! points to.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use axum::Router;
use axum::routing::{get, post};
use dpop_axum::{Authenticated, DpopLayer, metadata_router};
use dpop_core::{DpopGuard, TokenError, validator_fn};
use serde_json::Value;

const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

async fn mcp(auth: Authenticated) -> String {
    auth.claims().subject.clone().unwrap_or_default()
}

/// Serves the router `make(origin)` builds on 127.0.0.1; returns the origin.
async fn serve(make: impl FnOnce(&str) -> Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let app = make(&origin);
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

fn guard(resource: &str) -> DpopGuard {
    DpopGuard::builder()
        .resource(resource)
        .authorization_server("https://auth.example.com")
        .token_validator(validator_fn(|_| Err(TokenError::Invalid(dpop_core::InvalidToken::Other("unknown token")))))
        .build()
        .unwrap()
}

/// `/mcp` behind `route_layer`, `/health` open, and the metadata router when `with_metadata`.
fn app(origin: &str, with_metadata: bool) -> Router {
    let guard = guard(&format!("{origin}/mcp"));
    let router = Router::new()
        .route("/mcp", post(mcp))
        .route_layer(DpopLayer::with_guard(guard.clone()))
        .route("/health", get(|| async { "ok" }));
    if with_metadata { router.merge(metadata_router(&guard)) } else { router }
}

/// The value of `name` in a challenge: `name="value"`.
fn challenge_param<'c>(challenge: &'c str, name: &str) -> Option<&'c str> {
    let start = challenge.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = challenge.get(start..)?;
    rest.get(..rest.find('"')?)
}

#[tokio::test]
async fn the_challenge_points_to_the_document_the_metadata_router_serves() {
    let origin = serve(|origin| app(origin, true)).await;
    let client = reqwest::Client::new();

    let refused = client.post(format!("{origin}/mcp")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let metadata_url = challenge_param(&challenge, "resource_metadata").expect("resource_metadata in the challenge");
    assert_eq!(metadata_url, format!("{origin}{WELL_KNOWN}/mcp"));

    let document = client.get(metadata_url).send().await.unwrap();
    assert_eq!(document.status(), 200);
    assert_eq!(document.headers()["content-type"], "application/json");
    assert_eq!(document.headers()["access-control-allow-origin"], "*");
    let document: Value = serde_json::from_str(&document.text().await.unwrap()).unwrap();
    assert_eq!(document["resource"], format!("{origin}/mcp"));
    assert_eq!(document["authorization_servers"][0], "https://auth.example.com");
    assert_eq!(document["dpop_signing_alg_values_supported"][0], "ES256");

    // HEAD answers like GET, without a body; other methods are not served.
    let head = client.head(metadata_url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.text().await.unwrap(), "");
    assert_eq!(client.post(metadata_url).send().await.unwrap().status(), 405);
    // The open route is untouched.
    assert_eq!(client.get(format!("{origin}/health")).send().await.unwrap().text().await.unwrap(), "ok");
}

#[tokio::test]
async fn without_the_metadata_router_a_route_layer_leaves_the_document_unserved() {
    let origin = serve(|origin| app(origin, false)).await;
    let response = reqwest::get(format!("{origin}{WELL_KNOWN}/mcp")).await.unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn a_guard_without_a_resource_serves_nothing() {
    let guard = DpopGuard::builder()
        .public_origin("https://mcp.example.com")
        .token_validator(validator_fn(|_| Err(TokenError::Invalid(dpop_core::InvalidToken::Other("unknown token")))))
        .build()
        .unwrap();
    let origin = serve(|_| Router::new().merge(metadata_router(&guard))).await;
    for path in [WELL_KNOWN.to_owned(), format!("{WELL_KNOWN}/mcp")] {
        assert_eq!(reqwest::get(format!("{origin}{path}")).await.unwrap().status(), 404, "{path}");
    }
}

#[tokio::test]
async fn a_resource_path_axum_would_read_as_a_capture_is_served_exactly() {
    let origin = serve(|origin| {
        let guard = guard(&format!("{origin}/:tenant/mcp"));
        Router::new().route("/health", get(|| async { "ok" })).merge(metadata_router(&guard))
    })
    .await;
    let document = reqwest::get(format!("{origin}{WELL_KNOWN}/:tenant/mcp")).await.unwrap();
    assert_eq!(document.status(), 200);
    let document: Value = serde_json::from_str(&document.text().await.unwrap()).unwrap();
    assert_eq!(document["resource"], format!("{origin}/:tenant/mcp"));
    // The capture matches other segments too; they are not the document's path.
    let other = reqwest::get(format!("{origin}{WELL_KNOWN}/other/mcp")).await.unwrap();
    assert_eq!(other.status(), 404);
}
