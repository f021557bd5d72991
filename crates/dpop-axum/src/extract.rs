//! Extractors for what the layer verified.

use std::fmt;
use std::ops::Deref;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use dpop_core::{AlgorithmSet, Authentication, ProofOnlyAuthentication, Rejection};

use crate::RejectionResponse;

/// A validated access token bound to the key that signed this request's proof (or an accepted
/// Bearer token in mixed mode): the scheme, the token's claims, and for DPoP the proof (`jkt`,
/// `jti`, …).
///
/// Present only behind a [`DpopLayer`](crate::DpopLayer) with a token validator; behind a
/// [proof-only](crate::DpopLayer::proof_only) layer use [`ProofOnly`]. Use
/// `Option<Authenticated>` where the layer may be absent.
#[derive(Clone, Debug)]
pub struct Authenticated(pub Authentication);

/// A request a [proof-only](crate::DpopLayer::proof_only) layer let through: the proof is
/// verified (`jkt`, `jti`), the access token is not — validate it before trusting it.
#[derive(Clone, Debug)]
pub struct ProofOnly(pub ProofOnlyAuthentication);

impl Deref for Authenticated {
    type Target = Authentication;

    fn deref(&self) -> &Authentication {
        &self.0
    }
}

impl Deref for ProofOnly {
    type Target = ProofOnlyAuthentication;

    fn deref(&self) -> &ProofOnlyAuthentication {
        &self.0
    }
}

/// The rejection when a handler asks for [`Authenticated`] or [`ProofOnly`] and the layer did
/// not provide it (no layer on the route, or a layer of the other kind):
/// [`Rejection::unguarded_route`], a 401, never a panic.
#[derive(Clone, Copy, Debug)]
pub struct MissingAuthentication;

impl fmt::Display for MissingAuthentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("handler requires DPoP authentication the route's layer does not provide")
    }
}

impl std::error::Error for MissingAuthentication {}

impl IntoResponse for MissingAuthentication {
    fn into_response(self) -> Response {
        RejectionResponse(Rejection::unguarded_route(AlgorithmSet::default())).into_response()
    }
}

/// What the layer put into the request extensions, as the extractor `E`.
fn extension<T: Clone + Send + Sync + 'static, E>(parts: &Parts, wrap: fn(T) -> E) -> Option<E> {
    parts.extensions.get::<T>().cloned().map(wrap)
}

/// The refusal when a required extractor finds nothing, logged where the misconfiguration shows.
fn missing<E>(parts: &Parts) -> MissingAuthentication {
    tracing::error!(
        extractor = std::any::type_name::<E>(),
        path = parts.uri.path(),
        "handler requires DPoP authentication the route's layer does not provide: put the route behind a \
         DpopLayer (with a token validator for Authenticated, proof_only() for ProofOnly)"
    );
    MissingAuthentication
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = MissingAuthentication;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        extension(parts, Self).ok_or_else(|| missing::<Self>(parts))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Authenticated {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(extension(parts, Self))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ProofOnly {
    type Rejection = MissingAuthentication;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        extension(parts, Self).ok_or_else(|| missing::<Self>(parts))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for ProofOnly {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(extension(parts, Self))
    }
}
