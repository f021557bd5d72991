//! [`DpopLayer`].

use dpop_core::DpopGuard;
use tower_layer::Layer;

use crate::service::{DpopService, UriSource};

/// Applies DPoP to every request of the wrapped service.
///
/// `DpopLayer::new()` is secure on its own: ES256 proofs only, `iat` within ±300 s, replay
/// protection in memory, DPoP scheme only (Bearer refused), the target URI taken from the
/// request. Behind a proxy, configure a public origin with [`DpopGuard::builder`] and
/// [`DpopLayer::with_guard`].
#[derive(Clone, Debug)]
#[must_use]
pub struct DpopLayer {
    guard: DpopGuard,
    uri_source: Option<UriSource>,
}

impl DpopLayer {
    /// A layer with [`DpopGuard::new`]'s defaults.
    pub fn new() -> Self {
        Self::with_guard(DpopGuard::new())
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

impl Default for DpopLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for DpopLayer {
    type Service = DpopService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DpopService::new(inner, self.guard.clone(), self.uri_source)
    }
}
