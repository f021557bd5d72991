//! DPoP (RFC 9449) for [actix-web]: `.wrap(Dpop::new())` on the app or a scope, an extractor in
//! the handlers.
//!
//! ```
//! use actix_web::{App, HttpResponse, web};
//! use dpop_actix::{Authenticated, Dpop};
//!
//! async fn mcp(auth: Authenticated) -> HttpResponse {
//!     HttpResponse::Ok().body(format!("hello, key {}", auth.jkt().unwrap_or_default()))
//! }
//!
//! let app = App::new().wrap(Dpop::new()).route("/mcp", web::post().to(mcp));
//! ```
//!
//! Every decision is [`dpop_core::DpopGuard`]'s: this crate only moves requests and responses,
//! so an actix-web server answers exactly like a tower or axum one.
//!
//! [actix-web]: https://docs.rs/actix-web

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod extract;
mod metadata;
mod middleware;

pub use extract::{Authenticated, MissingAuthentication};
pub use metadata::metadata;
pub use middleware::{Dpop, DpopMiddleware};

pub use dpop_core::{AuthScheme, Authentication, DpopGuard};
