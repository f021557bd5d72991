//! Browser clients: with tower-http's CorsLayer outside the DPoP layer, preflights pass and the
//! challenge and nonce headers are readable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use axum::Router;
use axum::routing::post;
use dpop_guard::cors::{ALLOW_HEADERS, EXPOSE_HEADERS};
use http::{HeaderName, HeaderValue, Method};
use support::{RawRequest, send};
use tower_http::cors::CorsLayer;

const ORIGIN: &str = "https://app.example.com";

async fn server() -> std::net::SocketAddr {
    let cors = CorsLayer::new()
        .allow_origin(HeaderValue::from_static(ORIGIN))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers(ALLOW_HEADERS.map(HeaderName::from_static))
        .expose_headers(EXPOSE_HEADERS.map(HeaderName::from_static));
    let app = Router::new()
        .route("/mcp", post(|| async { "ok" }))
        .layer(dpop_axum::DpopLayer::new(support::test_validator()))
        .layer(cors);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn a_preflight_is_answered_by_cors_not_refused_by_dpop() {
    let addr = server().await;
    let preflight = RawRequest::new("OPTIONS", "/mcp")
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, dpop, content-type");
    let response = send(addr, &preflight).await;
    assert_eq!(response.status, 200, "{response:?}");
    let allowed = response.all("access-control-allow-headers").join(",");
    for header in ["authorization", "dpop"] {
        assert!(allowed.contains(header), "{allowed}");
    }
}

#[tokio::test]
async fn a_browser_can_read_the_challenge() {
    let addr = server().await;
    let response = send(addr, &RawRequest::new("POST", "/mcp").header("origin", ORIGIN)).await;
    assert_eq!(response.status, 401);
    assert_eq!(response.all("access-control-allow-origin"), [ORIGIN]);
    let exposed = response.all("access-control-expose-headers").join(",");
    for header in ["www-authenticate", "dpop-nonce"] {
        assert!(exposed.contains(header), "{exposed}");
    }
}
