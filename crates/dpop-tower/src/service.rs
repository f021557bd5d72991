//! [`DpopService`].

use std::task::{Context, Poll};

use bytes::Bytes;
use dpop_core::{DpopGuard, RequestUri, headers::HeaderValues};
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::DpopLayer;
use crate::body::ResponseBody;
use crate::future::{ResponseFuture, State};

/// Finds the URI the client sent among the request extensions.
pub(crate) type UriSource = fn(&http::Extensions) -> Option<&http::Uri>;

/// The service [`DpopLayer`](crate::DpopLayer) produces.
#[derive(Clone, Debug)]
pub struct DpopService<S> {
    inner: S,
    guard: DpopGuard,
    uri_source: Option<UriSource>,
}

impl DpopService<()> {
    /// A [`DpopLayer`] deciding with `guard`, for `ServiceBuilder` (as tower-http's services
    /// have): `DpopService::layer(guard)` is `DpopLayer::with_guard(guard)`.
    pub fn layer(guard: DpopGuard) -> DpopLayer {
        DpopLayer::with_guard(guard)
    }
}

impl<S> DpopService<S> {
    /// Wraps `inner`: every request is decided by `guard` before `inner` sees it.
    pub fn new(inner: S, guard: DpopGuard) -> Self {
        Self { inner, guard, uri_source: None }
    }

    /// The service with its original-URI source (see [`DpopLayer::original_uri`]).
    pub(crate) const fn with_uri_source(mut self, uri_source: Option<UriSource>) -> Self {
        self.uri_source = uri_source;
        self
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The guard this service decides with.
    pub fn guard(&self) -> &DpopGuard {
        &self.guard
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for DpopService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The guard's events and the inner service run in the request's span.
        let span = DpopGuard::request_span(request.method().as_str());
        let state = span.in_scope(|| self.decide(request));
        ResponseFuture::new(state, span)
    }
}

impl<S> DpopService<S> {
    /// What to do with `request`: answer it now, or finish the guard's decision and call the
    /// inner service.
    fn decide<ReqBody>(&mut self, request: Request<ReqBody>) -> State<S, ReqBody>
    where
        S: Service<Request<ReqBody>> + Clone,
    {
        let uri = self.uri_source.and_then(|source| source(request.extensions())).unwrap_or(request.uri());
        let request_uri =
            RequestUri { scheme: uri.scheme_str(), authority: uri.authority().map(|a| a.as_str()), path: uri.path() };
        if let Some(reply) = self.guard.metadata_reply(request.method().as_str(), uri.path()) {
            return State::replied(&reply);
        }
        let headers = request.headers();
        let checked = self.guard.check(request.method().as_str(), &request_uri, |name| {
            headers.get_all(name).iter().map(http::HeaderValue::as_bytes).collect::<HeaderValues<'_>>()
        });
        match checked {
            Err(rejection) => State::replied(&rejection.reply()),
            Ok(pending) => {
                // The ready service goes with this request; the clone stays for the next
                // `poll_ready` (tower's ready-service swap).
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                State::completing(self.guard.clone(), pending, request, ready)
            }
        }
    }
}
