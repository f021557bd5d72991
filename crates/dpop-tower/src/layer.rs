//! [`DpopLayer`].

use dpop_core::{DpopGuard, TokenValidator};
use tower_layer::Layer;

use crate::service::{DpopService, UriSource};

/// Applies DPoP to every request of the wrapped service.
///
/// `DpopLayer::new(validator)` is secure on its own: access tokens validated and bound to the
/// proof's key, ES256 proofs only, `iat` within ±300 s, replay protection in memory (one store
/// per process), DPoP scheme only (Bearer refused), the target URI taken from the request.
/// Behind a proxy, configure a public origin with [`DpopGuard::builder`] and
/// [`DpopLayer::with_guard`]. [`DpopLayer::proof_only`] verifies proofs and leaves tokens to
/// the inner service.
#[derive(Clone, Debug)]
#[must_use]
pub struct DpopLayer {
    guard: DpopGuard,
    uri_source: Option<UriSource>,
}

impl DpopLayer {
    /// A layer validating access tokens with `validator`, with [`DpopGuard::new`]'s defaults.
    /// The inner service finds an [`Authentication`](dpop_core::Authentication) in the request
    /// extensions.
    pub fn new(validator: impl TokenValidator) -> Self {
        Self::with_guard(DpopGuard::new(validator))
    }

    /// A layer that verifies proofs only ([`DpopGuard::proof_only`]): the inner service finds a
    /// [`ProofOnlyAuthentication`](dpop_core::ProofOnlyAuthentication), never an
    /// `Authentication`, and must validate the access token itself.
    pub fn proof_only() -> Self {
        Self::with_guard(DpopGuard::proof_only())
    }

    /// A layer that decides with `guard`.
    pub fn with_guard(guard: DpopGuard) -> Self {
        Self { guard, uri_source: None }
    }

    /// Where to find the request URI as the client sent it, for frameworks that strip path
    /// prefixes before inner services see the request (axum's nested routers keep it in
    /// `OriginalUri`; `dpop-axum` sets this). Default: the request's own URI.
    pub fn original_uri(mut self, source: fn(&http::Extensions) -> Option<&http::Uri>) -> Self {
        self.uri_source = Some(source);
        self
    }

    /// The guard this layer decides with.
    #[must_use]
    pub fn guard(&self) -> &DpopGuard {
        &self.guard
    }
}

impl<S> Layer<S> for DpopLayer {
    type Service = DpopService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DpopService::new(inner, self.guard.clone()).with_uri_source(self.uri_source)
    }
}
