//! DPoP (RFC 9449) for [actix-web]: `.wrap(Dpop::new())` on the app or a scope, an extractor in
//! the handlers.
//!
//! ```
//! use actix_web::{App, HttpResponse, HttpServer, web};
//! use dpop_actix::{Authenticated, Dpop};
//! # fn main() -> std::io::Result<()> {
//! # let validator = dpop_core::validator_fn(|_| Err(dpop_core::TokenError::Invalid(dpop_core::InvalidToken::Other("unknown token"))));
//!
//! async fn mcp(auth: Authenticated) -> HttpResponse {
//!     HttpResponse::Ok().body(format!("hello, {}", auth.claims().subject.as_deref().unwrap_or("?")))
//! }
//!
//! // Built once, cloned into every worker. `validator`: a JWT or introspection validator.
//! let dpop = Dpop::new(validator);
//! let server = HttpServer::new(move || App::new().wrap(dpop.clone()).route("/mcp", web::post().to(mcp)));
//! # let _ = server;
//! # Ok(())
//! # }
//! ```
//!
//! Every decision is [`dpop_core::DpopGuard`]'s: this crate only moves requests and responses,
//! so an actix-web server answers exactly like a tower or axum one.
//!
//! [actix-web]: https://docs.rs/actix-web

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod extract;
mod metadata;
mod middleware;

pub use extract::{Authenticated, MissingAuthentication, ProofOnly};
pub use metadata::metadata;
pub use middleware::{Dpop, DpopMiddleware};

pub use dpop_core::{AuthScheme, Authentication, DpopGuard, ProofOnlyAuthentication};
