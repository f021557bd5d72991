//! Extractors for what the layer verified.

use std::ops::Deref;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use dpop_core::{Authentication, Rejection};

/// The verified request: scheme, access token, and for DPoP the proof (`jkt`, `jti`, …).
///
/// Present only behind [`DpopLayer`](crate::DpopLayer). Use `Option<Authenticated>` where the
/// layer may be absent.
#[derive(Clone, Debug)]
pub struct Authenticated(pub Authentication);

impl Deref for Authenticated {
    type Target = Authentication;

    fn deref(&self) -> &Authentication {
        &self.0
    }
}

/// The rejection when a handler asks for [`Authenticated`] on a route without the layer:
/// [`Rejection::unguarded_route`], a 401, never a panic.
#[derive(Clone, Copy, Debug)]
pub struct MissingAuthentication;

impl IntoResponse for MissingAuthentication {
    fn into_response(self) -> Response {
        dpop_tower::reply_response(&Rejection::unguarded_route().reply()).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = MissingAuthentication;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Authentication>().cloned().map(Self).ok_or(MissingAuthentication)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Authenticated {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Authentication>().cloned().map(Self))
    }
}
