//! What a browser-based MCP client needs from CORS.
//!
//! A browser only lets a page read `WWW-Authenticate` (the challenge, `resource_metadata`) and
//! `DPoP-Nonce` if the response exposes them, and only sends `Authorization` and `DPoP` if the
//! preflight allows them. Put the CORS layer *outside* the DPoP layer, so that it answers
//! preflight `OPTIONS` requests (which carry no credentials) itself.
//!
//! With tower-http:
//!
//! ```text
//! use tower_http::cors::CorsLayer;
//! use http::{HeaderName, Method};
//!
//! let cors = CorsLayer::new()
//!     .allow_origin(["https://app.example.com".parse()?])
//!     .allow_methods([Method::GET, Method::POST, Method::DELETE])
//!     .allow_headers(dpop_core::cors::ALLOW_HEADERS.map(HeaderName::from_static))
//!     .expose_headers(dpop_core::cors::EXPOSE_HEADERS.map(HeaderName::from_static));
//! let app = router.layer(dpop_layer).layer(cors); // the last layer added runs first
//! ```
//!
//! With actix-cors: `Cors::default().allowed_origin(..).allowed_headers(ALLOW_HEADERS)
//! .expose_headers(EXPOSE_HEADERS)`, and `.wrap(cors)` after `.wrap(Dpop::new())` (actix runs
//! the last `wrap` first).

/// Request headers a DPoP client sends (plus what MCP's streamable HTTP transport uses).
pub const ALLOW_HEADERS: [&str; 5] =
    ["authorization", "dpop", "content-type", "mcp-protocol-version", "mcp-session-id"];

/// Response headers a DPoP client must be able to read.
pub const EXPOSE_HEADERS: [&str; 3] = ["www-authenticate", "dpop-nonce", "mcp-session-id"];
