//! The actix-web middleware: [`Dpop`] (the `Transform`) and [`DpopMiddleware`] (the `Service`).

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;

use tracing::Instrument as _;

use actix_web::body::EitherBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{Error, HttpMessage as _, HttpResponse};
use dpop_core::{Admission, DpopGuard, Rejection, Reply, RequestUri, TokenValidator, headers::HeaderValues};

/// Applies DPoP to every request of the wrapped app, scope or resource.
///
/// `Dpop::new(validator)` is secure on its own (see [`DpopGuard::new`]); configure with
/// [`DpopGuard::builder`] and [`Dpop::with_guard`].
///
/// `HttpServer::new` calls its factory once per worker: build the guard (or the `Dpop`) once
/// outside it and clone it in, so every worker shares one configuration. The default in-memory
/// replay store is one per process either way, so a proof is accepted once whichever worker
/// sees it.
#[derive(Clone, Debug)]
#[must_use]
pub struct Dpop {
    guard: DpopGuard,
}

impl Dpop {
    /// Middleware validating access tokens with `validator`, with [`DpopGuard::new`]'s defaults.
    /// Handlers take [`Authenticated`](crate::Authenticated).
    pub fn new(validator: impl TokenValidator) -> Self {
        Self::with_guard(DpopGuard::new(validator))
    }

    /// Middleware that verifies proofs only ([`DpopGuard::proof_only`]): handlers get
    /// [`ProofOnly`](crate::ProofOnly), never [`Authenticated`](crate::Authenticated), and must
    /// validate the access token themselves.
    pub fn proof_only() -> Self {
        Self::with_guard(DpopGuard::proof_only())
    }

    /// Middleware that decides with `guard`.
    pub fn with_guard(guard: DpopGuard) -> Self {
        Self { guard }
    }
}

impl<S, B> Transform<S, ServiceRequest> for Dpop
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = DpopMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(DpopMiddleware { service: Rc::new(service), guard: self.guard.clone() }))
    }
}

/// The service [`Dpop`] wraps around the inner one.
#[derive(Debug)]
pub struct DpopMiddleware<S> {
    service: Rc<S>,
    guard: DpopGuard,
}

type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl<S, B> Service<ServiceRequest> for DpopMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalFuture<Result<Self::Response, Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        // The guard's events and the handler run in the request's span.
        let span = DpopGuard::request_span(request.method().as_str());
        let entered = span.enter();
        let uri = request.uri();
        // The scheme the server itself knows: a TLS listener, never `Forwarded` (which actix's
        // `connection_info` would read from the client's headers).
        let scheme = uri.scheme_str().or(request.app_config().secure().then_some("https"));
        let request_uri = RequestUri { scheme, authority: uri.authority().map(|a| a.as_str()), path: uri.path() };
        if let Some(reply) = self.guard.metadata_reply(request.method().as_str(), uri.path()) {
            return Box::pin(ready(Ok(request.into_response(reply_response(&reply)).map_into_right_body())));
        }
        let headers = request.headers();
        let checked = self.guard.check(request.method().as_str(), &request_uri, |name| {
            headers.get_all(name).map(|value| value.as_bytes()).collect::<HeaderValues<'_>>()
        });
        let pending = match checked {
            Ok(pending) => pending,
            Err(rejection) => return Box::pin(ready(Ok(reject(request, &rejection)))),
        };
        let (service, guard) = (Rc::clone(&self.service), self.guard.clone());
        drop(entered);
        let in_span = span.clone();
        let decided = async move {
            match guard.complete(pending).await {
                Ok(admission) => {
                    admission.record_caller(&in_span);
                    let headers: Vec<_> = admission.response_headers().map(|(n, v)| (n, v.to_owned())).collect();
                    match admission {
                        Admission::Authenticated(authentication) => _ = request.extensions_mut().insert(authentication),
                        Admission::ProofOnly(proof_only) => _ = request.extensions_mut().insert(proof_only),
                    }
                    let mut response = service.call(request).await?;
                    for (name, value) in headers {
                        if let Ok(value) = HeaderValue::try_from(value) {
                            response.headers_mut().insert(HeaderName::from_static(name), value);
                        }
                    }
                    Ok(response.map_into_left_body())
                }
                Err(rejection) => Ok(reject(request, &rejection)),
            }
        };
        Box::pin(decided.instrument(span))
    }
}

/// Answers `request` with the rejection.
fn reject<B>(request: ServiceRequest, rejection: &Rejection) -> ServiceResponse<EitherBody<B>> {
    request.into_response(reply_response(&rejection.reply())).map_into_right_body()
}

/// The HTTP response for a reply of the guard, exactly as it describes it.
pub(crate) fn reply_response(reply: &Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut response = HttpResponse::build(status);
    for (name, value) in reply.headers() {
        response.append_header((name, value));
    }
    response.body(reply.body().to_owned())
}
