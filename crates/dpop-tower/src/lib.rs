//! DPoP (RFC 9449) for [tower] services: [`DpopLayer`] in front of any
//! `Service<http::Request<B>>` — hyper, axum, tonic-style stacks.
//!
//! ```
//! use dpop_tower::DpopLayer;
//! use tower::ServiceBuilder;
//! # use tower::service_fn;
//! # async fn handler(_: http::Request<String>) -> Result<http::Response<String>, std::convert::Infallible> {
//! #     Ok(http::Response::new(String::new()))
//! # }
//!
//! # let validator = dpop_core::validator_fn(|_| Err(dpop_core::TokenError::Invalid(dpop_core::InvalidToken::Other("unknown token"))));
//! let service = ServiceBuilder::new().layer(DpopLayer::new(validator)).service(service_fn(handler));
//! ```
//!
//! Every decision is [`dpop_core::DpopGuard`]'s: this crate only moves requests and responses.
//! On success the inner service sees a [`dpop_core::Authentication`] in the request extensions
//! (a [`dpop_core::ProofOnlyAuthentication`] behind a [proof-only](DpopLayer::proof_only) layer);
//! on failure the layer answers itself (status, exact `WWW-Authenticate`,
//! `Cache-Control: no-store`, a JSON body) and never calls the inner service.
//!
//! [tower]: https://docs.rs/tower

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod body;
mod future;
mod layer;
mod response;
mod service;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use layer::DpopLayer;
pub use response::reply_response;
pub use service::DpopService;

pub use dpop_core::{Authentication, DpopGuard, ProofOnlyAuthentication};
