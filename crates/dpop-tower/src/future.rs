//! [`ResponseFuture`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use dpop_core::{Admission, DpopGuard, PendingAuthorization, Rejection, Reply};
use http::{HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::body::ResponseBody;

type Completion = Pin<Box<dyn Future<Output = Result<Admission, Rejection>> + Send>>;

pin_project! {
    /// The response future of [`DpopService`](crate::DpopService).
    pub struct ResponseFuture<S: Service<Request<ReqBody>>, ReqBody> {
        #[pin]
        state: State<S, ReqBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S: Service<Request<ReqBody>>, ReqBody> {
        // Answered by the guard (a rejection, the metadata document); the inner service is not called.
        Replied { response: Option<Response<String>> },
        // Waiting for token validation and the replay store.
        Completing { completion: Completion, request: Option<Request<ReqBody>>, service: S },
        // The inner service is answering; `headers` go onto its response (the next nonce).
        Inner { #[pin] future: S::Future, headers: Vec<(&'static str, String)> },
    }
}

impl<S: Service<Request<ReqBody>>, ReqBody> ResponseFuture<S, ReqBody> {
    pub(crate) fn replied(reply: &Reply) -> Self {
        Self { state: State::Replied { response: Some(reply_response(reply)) } }
    }

    pub(crate) fn completing(
        guard: DpopGuard,
        pending: PendingAuthorization,
        request: Request<ReqBody>,
        service: S,
    ) -> Self {
        let completion = Box::pin(async move { guard.complete(pending).await });
        Self { state: State::Completing { completion, request: Some(request), service } }
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Replied { response } => {
                    let response = response.take().map_or_else(already_answered, |r| r.map(ResponseBody::rejection));
                    return Poll::Ready(Ok(response));
                }
                StateProj::Completing { completion, request, service } => {
                    let outcome = ready!(completion.as_mut().poll(cx));
                    let Some(mut request) = request.take() else {
                        return Poll::Ready(Ok(already_answered()));
                    };
                    match outcome {
                        Ok(admission) => {
                            let headers = admission.response_headers().map(|(n, v)| (n, v.to_owned())).collect();
                            insert_admission(request.extensions_mut(), admission);
                            let future = service.call(request);
                            state.set(State::Inner { future, headers });
                        }
                        Err(rejection) => {
                            let response = reply_response(&rejection.reply());
                            state.set(State::Replied { response: Some(response) });
                        }
                    }
                }
                StateProj::Inner { future, headers } => {
                    let mut response = ready!(future.poll(cx))?;
                    for (name, value) in headers.drain(..) {
                        if let Ok(value) = HeaderValue::try_from(value) {
                            response.headers_mut().insert(name, value);
                        }
                    }
                    return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                }
            }
        }
    }
}

/// Hands the verdict to the inner service: `Authentication` only for a validated token.
fn insert_admission(extensions: &mut http::Extensions, admission: Admission) {
    match admission {
        Admission::Authenticated(authentication) => _ = extensions.insert(authentication),
        Admission::ProofOnly(proof_only) => _ = extensions.insert(proof_only),
    }
}

/// The HTTP response for a reply of the guard, exactly as it describes it.
pub fn reply_response(reply: &Reply) -> Response<String> {
    let mut response = Response::new(reply.body().to_owned());
    *response.status_mut() = StatusCode::from_u16(reply.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    for (name, value) in reply.headers() {
        // Challenge values are quoted-string escaped to visible ASCII, so this cannot fail;
        // if it ever did, the response stays a refusal, just without that header.
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// A future polled after it finished: answer with a refusal rather than panic.
fn already_answered<B>() -> Response<ResponseBody<B>> {
    let mut response = Response::new(ResponseBody::rejection(String::new()));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

impl<S: Service<Request<ReqBody>>, ReqBody> fmt::Debug for ResponseFuture<S, ReqBody> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
