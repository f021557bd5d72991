//! [`RejectionResponse`]: a guard's refusal as an axum response.

use axum::response::{IntoResponse, Response};
use dpop_core::Rejection;

/// A [`Rejection`] as an axum response — status, exact `WWW-Authenticate`, `DPoP-Nonce`,
/// `Cache-Control: no-store` and the JSON error document — for handlers and middleware that
/// call [`DpopGuard`](dpop_core::DpopGuard) themselves:
///
/// ```
/// use axum::http::request::Parts;
/// use dpop_axum::RejectionResponse;
/// use dpop_core::{DpopGuard, headers::HeaderValues, RequestUri};
///
/// fn check(guard: &DpopGuard, parts: &Parts) -> Result<(), RejectionResponse> {
///     let uri = RequestUri { scheme: None, authority: None, path: parts.uri.path() };
///     let headers = |name: &'static str| -> HeaderValues<'_> {
///         parts.headers.get_all(name).iter().map(|value| value.as_bytes()).collect()
///     };
///     let _pending = guard.check(parts.method.as_str(), &uri, headers)?;
///     Ok(())
/// }
/// ```
#[derive(Clone, Debug)]
pub struct RejectionResponse(pub Rejection);

impl From<Rejection> for RejectionResponse {
    fn from(rejection: Rejection) -> Self {
        Self(rejection)
    }
}

impl IntoResponse for RejectionResponse {
    fn into_response(self) -> Response {
        dpop_tower::reply_response(&self.0.reply()).into_response()
    }
}
