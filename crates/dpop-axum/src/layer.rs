//! [`DpopLayer`] for axum routers.

use axum::extract::OriginalUri;
use dpop_core::{DpopGuard, TokenValidator};
use dpop_tower::DpopService;
use tower_layer::Layer;

/// `dpop_tower::DpopLayer`, reading the original URI of nested routers.
///
/// `DpopLayer::new(validator)` is secure on its own (see [`DpopGuard::new`]); configure with
/// [`DpopGuard::builder`] and [`DpopLayer::with_guard`]. Handlers take
/// [`Authenticated`](crate::Authenticated); behind [`DpopLayer::proof_only`], [`ProofOnly`](crate::ProofOnly).
#[derive(Clone, Debug)]
#[must_use]
pub struct DpopLayer(dpop_tower::DpopLayer);

impl DpopLayer {
    /// A layer validating access tokens with `validator`, with [`DpopGuard::new`]'s defaults.
    pub fn new(validator: impl TokenValidator) -> Self {
        Self::with_guard(DpopGuard::new(validator))
    }

    /// A layer that verifies proofs only ([`DpopGuard::proof_only`]): handlers get
    /// [`ProofOnly`](crate::ProofOnly), never [`Authenticated`](crate::Authenticated), and must
    /// validate the access token themselves.
    pub fn proof_only() -> Self {
        Self::with_guard(DpopGuard::proof_only())
    }

    /// A layer that decides with `guard`.
    pub fn with_guard(guard: DpopGuard) -> Self {
        Self(dpop_tower::DpopLayer::with_guard(guard).original_uri(original_uri))
    }

    /// The guard this layer decides with.
    #[must_use]
    pub fn guard(&self) -> &DpopGuard {
        self.0.guard()
    }
}

/// axum's outermost router records the URI before nesting strips its prefix.
fn original_uri(extensions: &http::Extensions) -> Option<&http::Uri> {
    extensions.get::<OriginalUri>().map(|original| &original.0)
}

impl<S> Layer<S> for DpopLayer {
    type Service = DpopService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.0.layer(inner)
    }
}
