//! DPoP (RFC 9449) for [axum]: one layer on the router, an extractor in the handlers.
//!
//! ```
//! use axum::{Router, routing::post};
//! use dpop_axum::{Authenticated, DpopLayer};
//! # let validator = dpop_core::validator_fn(|_| Err(dpop_core::TokenError::Invalid(dpop_core::InvalidToken::Other("unknown token"))));
//!
//! async fn mcp(auth: Authenticated) -> String {
//!     format!("hello, {}", auth.claims().subject.as_deref().unwrap_or("?"))
//! }
//!
//! // `validator`: a JWT or introspection validator (feature `tokens` of `dpop-guard`).
//! let app: Router = Router::new().route("/mcp", post(mcp)).layer(DpopLayer::new(validator));
//! ```
//!
//! The layer is `dpop-tower`'s, set to read axum's `OriginalUri` so that routes nested under a
//! prefix check `htu` against the full path the client used. Every decision is
//! [`dpop_core::DpopGuard`]'s.
//!
//! A layer applied with `.layer(..)` also serves the RFC 9728 metadata document at the guard's
//! well-known path. Behind `.route_layer(..)` or on a sub-router it only sees its own routes:
//! merge [`metadata_router`] beside them.
//!
//! [axum]: https://docs.rs/axum

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod extract;
mod layer;
mod metadata;
mod response;

pub use extract::{Authenticated, MissingAuthentication, ProofOnly};
pub use layer::DpopLayer;
pub use metadata::metadata_router;
pub use response::RejectionResponse;

pub use dpop_core::{AuthScheme, Authentication, DpopGuard, ProofOnlyAuthentication};
pub use dpop_tower::{DpopService, ResponseBody, ResponseFuture};
