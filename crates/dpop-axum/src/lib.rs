//! DPoP (RFC 9449) for [axum]: one layer on the router, an extractor in the handlers.
//!
//! ```
//! use axum::{Router, routing::post};
//! use dpop_axum::{Authenticated, DpopLayer};
//!
//! async fn mcp(auth: Authenticated) -> String {
//!     format!("hello, key {}", auth.jkt().unwrap_or_default())
//! }
//!
//! let app: Router = Router::new().route("/mcp", post(mcp)).layer(DpopLayer::new());
//! ```
//!
//! The layer is `dpop-tower`'s, set to read axum's `OriginalUri` so that routes nested under a
//! prefix check `htu` against the full path the client used. Every decision is
//! [`dpop_core::DpopGuard`]'s.
//!
//! [axum]: https://docs.rs/axum

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod extract;
mod layer;

pub use extract::{Authenticated, MissingAuthentication};
pub use layer::DpopLayer;

pub use dpop_core::{AuthScheme, Authentication, DpopGuard};
pub use dpop_tower::{DpopService, ResponseBody, ResponseFuture};
