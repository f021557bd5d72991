//! [`ResponseFuture`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use dpop_core::{Admission, DpopGuard, PendingAuthorization, Rejection, Reply};
use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::body::ResponseBody;
use crate::response::reply_response;

type Completion = Pin<Box<dyn Future<Output = Result<Admission, Rejection>> + Send>>;

pin_project! {
    /// The response future of [`DpopService`](crate::DpopService).
    pub struct ResponseFuture<S: Service<Request<ReqBody>>, ReqBody> {
        #[pin]
        state: State<S, ReqBody>,
        span: tracing::Span,
    }
}

pin_project! {
    #[project = StateProj]
    #[project_replace = StateOwned]
    pub(crate) enum State<S: Service<Request<ReqBody>>, ReqBody> {
        // Answered by the guard (a rejection, the metadata document); the inner service is not called.
        Replied { response: Response<String> },
        // Waiting for token validation and the replay store.
        Completing { completion: Completion, request: Request<ReqBody>, service: S },
        // The inner service is answering; `headers` go onto its response (the next nonce).
        Inner { #[pin] future: S::Future, headers: Vec<(&'static str, String)> },
        // The output was returned.
        Done,
    }
}

impl<S: Service<Request<ReqBody>>, ReqBody> ResponseFuture<S, ReqBody> {
    /// The future that drives `state` inside the request's `span`.
    pub(crate) const fn new(state: State<S, ReqBody>, span: tracing::Span) -> Self {
        Self { state, span }
    }
}

impl<S: Service<Request<ReqBody>>, ReqBody> State<S, ReqBody> {
    /// Answered by the guard itself.
    pub(crate) fn replied(reply: &Reply) -> Self {
        Self::Replied { response: reply_response(reply) }
    }

    /// Checked; token validation and the replay write to go, then `service`.
    pub(crate) fn completing(
        guard: DpopGuard,
        pending: PendingAuthorization,
        request: Request<ReqBody>,
        service: S,
    ) -> Self {
        let completion = Box::pin(async move { guard.complete(pending).await });
        Self::Completing { completion, request, service }
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    #[expect(clippy::panic, reason = "polling a finished future is the caller's bug, never a response")]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _in_span = this.span.enter();
        let mut state = this.state;
        loop {
            match state.as_mut().project() {
                StateProj::Replied { .. } => {
                    let StateOwned::Replied { response } = state.as_mut().project_replace(State::Done) else {
                        unreachable!("the state was just matched as Replied")
                    };
                    return Poll::Ready(Ok(response.map(ResponseBody::rejection)));
                }
                StateProj::Completing { completion, .. } => {
                    let outcome = ready!(completion.as_mut().poll(cx));
                    let StateOwned::Completing { mut request, mut service, .. } =
                        state.as_mut().project_replace(State::Done)
                    else {
                        unreachable!("the state was just matched as Completing")
                    };
                    match outcome {
                        Ok(admission) => {
                            admission.record_caller(this.span);
                            let headers = admission.response_headers().map(|(n, v)| (n, v.to_owned())).collect();
                            insert_admission(request.extensions_mut(), admission);
                            let future = service.call(request);
                            state.set(State::Inner { future, headers });
                        }
                        Err(rejection) => {
                            state.set(State::Replied { response: reply_response(&rejection.reply()) });
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
                    state.set(State::Done);
                    return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                }
                // A caller bug, as for every future (tower-http's answer too): never a response.
                StateProj::Done => panic!("DpopService's ResponseFuture polled after completion"),
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

impl<S: Service<Request<ReqBody>>, ReqBody> fmt::Debug for ResponseFuture<S, ReqBody> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
