//! tower: [`DpopLayer`], a client layer for any `Service<http::Request<B>>` — hyper-util's
//! legacy client, or a stack built on it.
//!
//! Request URIs must be absolute (as hyper-util's client wants them): the proof's `htu` is the
//! URI without query and fragment. `Authorization: DPoP <token>` on the request adds `ath`.
//! The one automatic retry (a nonce, or a clock the server's `Date` revealed) needs the body
//! again: bodies implement [`ReplayableBody`]; a streaming one (`BoxBody`) answers `None` and
//! the request then fails with [`ClientError::BodyNotReplayable`]. A 400 JSON answer (how an
//! authorization server asks for a nonce) is read, up to 64 KiB, and handed back whole: the
//! response body is `Either<B, Full<Bytes>>`.
//!
//! ```
//! use bytes::Bytes;
//! use dpop_client::DpopSession;
//! use dpop_client::tower::DpopLayer;
//! use dpop_core::DpopKey;
//! use http_body_util::Full;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower_layer::Layer as _;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let session = DpopSession::new(DpopKey::generate()?);
//! let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! let client = DpopLayer::new(session).layer(http);
//! // client.call(request) as with any tower service; requests carry absolute URIs.
//! # let _ = client;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body::Body;
use http_body_util::combinators::{BoxBody, UnsyncBoxBody};
use http_body_util::{BodyExt as _, Either, Empty, Full, Limited};
use tower_layer::Layer;
use tower_service::Service;

use crate::error::ClientError;
use crate::session::{DpopSession, ResponseInfo, Verdict};

/// The error of a [`DpopService`]: the inner service's, or a [`ClientError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How much of a 400 JSON body is read to find an authorization server's error.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A request body that may be sent a second time.
pub trait ReplayableBody: Sized {
    /// A copy to send again, or `None` for a body that can be read only once.
    fn try_clone(&self) -> Option<Self>;
}

impl<D: Clone> ReplayableBody for Full<D> {
    fn try_clone(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<D> ReplayableBody for Empty<D> {
    fn try_clone(&self) -> Option<Self> {
        Some(Self::new())
    }
}

impl ReplayableBody for String {
    fn try_clone(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<D, E> ReplayableBody for BoxBody<D, E> {
    fn try_clone(&self) -> Option<Self> {
        None
    }
}

impl<D, E> ReplayableBody for UnsyncBoxBody<D, E> {
    fn try_clone(&self) -> Option<Self> {
        None
    }
}

/// Signs every request of the wrapped client with the session's key.
#[derive(Clone, Debug)]
pub struct DpopLayer {
    session: DpopSession,
}

impl DpopLayer {
    /// A layer signing with `session`.
    #[must_use]
    pub const fn new(session: DpopSession) -> Self {
        Self { session }
    }
}

impl<S> Layer<S> for DpopLayer {
    type Service = DpopService<S>;

    fn layer(&self, inner: S) -> DpopService<S> {
        DpopService { inner, session: self.session.clone() }
    }
}

/// The service [`DpopLayer`] makes.
#[derive(Clone, Debug)]
pub struct DpopService<S> {
    inner: S,
    session: DpopSession,
}

type ResponseFuture<B> = Pin<Box<dyn Future<Output = Result<Response<Either<B, Full<Bytes>>>, BoxError>> + Send>>;

impl<S, B, ResBody> Service<Request<B>> for DpopService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: ReplayableBody + Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Either<ResBody, Full<Bytes>>>;
    type Error = BoxError;
    type Future = ResponseFuture<ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The ready service answers this call; a clone (made ready when needed) the retry.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let session = self.session.clone();
        Box::pin(send(inner, session, request))
    }
}

async fn send<S, B, ResBody>(
    mut inner: S,
    session: DpopSession,
    request: Request<B>,
) -> Result<Response<Either<ResBody, Full<Bytes>>>, BoxError>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    B: ReplayableBody,
    ResBody: Body<Data = Bytes>,
    ResBody::Error: Into<BoxError>,
{
    let again = copy(&request);
    let url = request.uri().to_string();
    let mut retry_service = inner.clone();
    let (response, verdict) = send_once(&mut inner, &session, &url, request).await?;
    let Verdict::Retry(reason) = verdict else { return Ok(response) };
    let Some(again) = again else { return Err(ClientError::BodyNotReplayable.logged().into()) };
    tracing::debug!(?reason, "sending the request again with a new DPoP proof");
    std::future::poll_fn(|cx| retry_service.poll_ready(cx)).await.map_err(Into::into)?;
    let (response, verdict) = send_once(&mut retry_service, &session, &url, again).await?;
    if let Verdict::Retry(reason) = verdict {
        tracing::warn!(?reason, status = %response.status(), "server refused the retried DPoP proof too; no more retries");
    }
    Ok(response)
}

/// The request with a copy of its body, when the body can be copied.
fn copy<B: ReplayableBody>(request: &Request<B>) -> Option<Request<B>> {
    let body = request.body().try_clone()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    Some(copy)
}

async fn send_once<S, B, ResBody>(
    inner: &mut S,
    session: &DpopSession,
    url: &str,
    mut request: Request<B>,
) -> Result<(Response<Either<ResBody, Full<Bytes>>>, Verdict), BoxError>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes>,
    ResBody::Error: Into<BoxError>,
{
    let token = crate::session::dpop_access_token(request.headers());
    let proof = session.proof(request.method().as_str(), url, token.as_deref())?;
    let proof = HeaderValue::try_from(proof).map_err(|_| ClientError::InvalidUrl.logged())?;
    request.headers_mut().insert(dpop_core::headers::names::DPOP, proof);
    let response = inner.call(request).await.map_err(Into::into)?;
    if !DpopSession::needs_body(response.status(), response.headers()) {
        let verdict = session.observe(url, &ResponseInfo::new(response.status(), response.headers()));
        return Ok((response.map(Either::Left), verdict));
    }
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_ERROR_BODY).collect().await.map_err(|error| {
        if error.is::<http_body_util::LengthLimitError>() {
            BoxError::from(ClientError::ResponseTooLarge { limit: MAX_ERROR_BODY }.logged())
        } else {
            error
        }
    })?;
    let body = body.to_bytes();
    let verdict = session.observe(url, &ResponseInfo::new(parts.status, &parts.headers).with_body(&body));
    Ok((Response::from_parts(parts, Either::Right(Full::new(body))), verdict))
}
