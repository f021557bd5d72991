//! The extractor for what the middleware verified.

use std::fmt;
use std::future::{Ready, ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse, ResponseError};
use dpop_core::{Authentication, Rejection};

/// The verified request: scheme, access token, and for DPoP the proof (`jkt`, `jti`, …).
///
/// Present only behind [`Dpop`](crate::Dpop). Use `Option<Authenticated>` where the middleware
/// may be absent.
#[derive(Clone, Debug)]
pub struct Authenticated(pub Authentication);

impl Deref for Authenticated {
    type Target = Authentication;

    fn deref(&self) -> &Authentication {
        &self.0
    }
}

impl FromRequest for Authenticated {
    type Error = MissingAuthentication;
    type Future = Ready<Result<Self, MissingAuthentication>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(request.extensions().get::<Authentication>().cloned().map(Self).ok_or(MissingAuthentication))
    }
}

/// The error when a handler asks for [`Authenticated`] on a route without the middleware:
/// [`Rejection::unguarded_route`], a 401, never a panic.
#[derive(Clone, Copy, Debug)]
pub struct MissingAuthentication;

impl fmt::Display for MissingAuthentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("handler requires DPoP authentication but the route has no Dpop middleware")
    }
}

impl ResponseError for MissingAuthentication {
    fn status_code(&self) -> StatusCode {
        StatusCode::UNAUTHORIZED
    }

    fn error_response(&self) -> HttpResponse {
        crate::middleware::reply_response(&Rejection::unguarded_route().reply())
    }
}
