//! The extractor for what the middleware verified.

use std::fmt;
use std::future::{Ready, ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse, ResponseError};
use dpop_core::{AlgorithmSet, Authentication, ProofOnlyAuthentication, Rejection};

/// A validated access token bound to the key that signed this request's proof (or an accepted
/// Bearer token in mixed mode): the scheme, the token's claims, and for DPoP the proof (`jkt`,
/// `jti`, …).
///
/// Present only behind [`Dpop`](crate::Dpop) with a token validator; behind
/// [`Dpop::proof_only`](crate::Dpop::proof_only) use [`ProofOnly`]. Use
/// `Option<Authenticated>` where the middleware may be absent.
#[derive(Clone, Debug)]
pub struct Authenticated(pub Authentication);

/// A request a [proof-only](crate::Dpop::proof_only) middleware let through: the proof is
/// verified (`jkt`, `jti`), the access token is not — validate it before trusting it.
#[derive(Clone, Debug)]
pub struct ProofOnly(pub ProofOnlyAuthentication);

impl Deref for ProofOnly {
    type Target = ProofOnlyAuthentication;

    fn deref(&self) -> &ProofOnlyAuthentication {
        &self.0
    }
}

/// What the middleware put into the request extensions, as the extractor `E`.
fn extension<T: Clone + 'static, E>(
    request: &HttpRequest,
    wrap: fn(T) -> E,
) -> Ready<Result<E, MissingAuthentication>> {
    ready(request.extensions().get::<T>().cloned().map(wrap).ok_or_else(|| {
        // Logged where the misconfiguration shows.
        tracing::error!(
            extractor = std::any::type_name::<E>(),
            path = request.path(),
            "handler requires DPoP authentication the route's middleware does not provide: wrap the route \
             with Dpop (with a token validator for Authenticated, proof_only() for ProofOnly)"
        );
        MissingAuthentication
    }))
}

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
        extension(request, Self)
    }
}

impl FromRequest for ProofOnly {
    type Error = MissingAuthentication;
    type Future = Ready<Result<Self, MissingAuthentication>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        extension(request, Self)
    }
}

/// The error when a handler asks for [`Authenticated`] or [`ProofOnly`] and the middleware did
/// not provide it (no middleware on the route, or one of the other kind):
/// [`Rejection::unguarded_route`], a 401, never a panic.
#[derive(Clone, Copy, Debug)]
pub struct MissingAuthentication;

impl fmt::Display for MissingAuthentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("handler requires DPoP authentication the route's middleware does not provide")
    }
}

impl ResponseError for MissingAuthentication {
    fn status_code(&self) -> StatusCode {
        StatusCode::UNAUTHORIZED
    }

    fn error_response(&self) -> HttpResponse {
        crate::middleware::reply_response(&Rejection::unguarded_route(AlgorithmSet::default()).reply())
    }
}
