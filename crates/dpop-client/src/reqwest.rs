//! reqwest: [`DpopMiddleware`], a [`reqwest_middleware::Middleware`].
//!
//! reqwest has no hook of its own between building a request and reading its response, and
//! `reqwest-middleware` is the ecosystem's way to add one: applications that already stack
//! retry, tracing or caching middleware put DPoP in the same stack, and the client stays a
//! `ClientWithMiddleware` they know. (A wrapper around `reqwest::Client` would have needed its
//! own copy of the request builder API.)
//!
//! Each request gets a fresh proof; `Authorization: DPoP <token>` set on the request adds `ath`
//! for that token. When the server asks for a nonce (`use_dpop_nonce`: 401 from a resource
//! server, 400 JSON from an authorization server) or refuses `iat` while its `Date` shows
//! another clock, the request is sent **once** more with a new proof, provided its body can be
//! cloned; a streaming body then fails with [`ClientError::BodyNotReplayable`]. Whatever the
//! second answer is, it is returned as it is: a server that always wants another nonce costs
//! one retry, and the caller sees its refusal.
//!
//! ```no_run
//! use dpop_client::{DpopSession, reqwest::client};
//! use dpop_core::DpopKey;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let session = DpopSession::new(DpopKey::generate()?);
//! let http = client(reqwest::Client::new(), session);
//! let response = http
//!     .get("https://mcp.example.com/mcp")
//!     .header("authorization", "DPoP the-access-token")
//!     .send()
//!     .await?;
//! # let _ = response;
//! # Ok(())
//! # }
//! ```

use http::{Extensions, HeaderValue};
use reqwest::{Request, Response};
use reqwest_middleware::{ClientWithMiddleware, Middleware, Next};

use crate::error::ClientError;
use crate::session::{DpopSession, ResponseInfo, Verdict};

/// How much of an authorization server's 400 JSON body is read to find its error.
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// A `reqwest::Client` with DPoP: shorthand for `ClientBuilder::new(http).with(DpopMiddleware::new(session))`.
#[must_use]
pub fn client(http: reqwest::Client, session: DpopSession) -> ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(http).with(DpopMiddleware::new(session)).build()
}

/// Signs every request with the session's key and follows nonces and clock skew.
#[derive(Clone, Debug)]
pub struct DpopMiddleware {
    session: DpopSession,
}

impl DpopMiddleware {
    /// Middleware signing with `session`.
    #[must_use]
    pub const fn new(session: DpopSession) -> Self {
        Self { session }
    }

    /// The session.
    #[must_use]
    pub const fn session(&self) -> &DpopSession {
        &self.session
    }

    async fn send_once(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<(Response, Verdict)> {
        let url = request.url().as_str().to_owned();
        let token = crate::session::dpop_access_token(request.headers());
        let proof = self.session.proof(request.method().as_str(), &url, token.as_deref()).map_err(middleware_error)?;
        let proof = HeaderValue::try_from(proof).map_err(|_| middleware_error(ClientError::InvalidUrl.logged()))?;
        request.headers_mut().insert(dpop_core::headers::names::DPOP, proof);
        let response = next.run(request, extensions).await?;
        self.inspect(&url, response).await
    }

    /// Observes the response; reads a 400 JSON body (bounded) and puts it back.
    async fn inspect(&self, url: &str, mut response: Response) -> reqwest_middleware::Result<(Response, Verdict)> {
        let (status, version) = (response.status(), response.version());
        if !DpopSession::needs_body(status, response.headers()) {
            let verdict = self.session.observe(url, &ResponseInfo::new(status, response.headers()));
            return Ok((response, verdict));
        }
        let Some(body) = read_limited(&mut response, MAX_ERROR_BODY).await? else {
            return Err(middleware_error(ClientError::ResponseTooLarge { limit: MAX_ERROR_BODY }.logged()));
        };
        let headers = std::mem::take(response.headers_mut());
        let verdict = self.session.observe(url, &ResponseInfo::new(status, &headers).with_body(&body));
        let mut rebuilt = http::Response::new(body);
        *rebuilt.status_mut() = status;
        *rebuilt.version_mut() = version;
        *rebuilt.headers_mut() = headers;
        Ok((Response::from(rebuilt), verdict))
    }
}

#[async_trait::async_trait]
impl Middleware for DpopMiddleware {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let again = request.try_clone();
        let (response, verdict) = self.send_once(request, extensions, next.clone()).await?;
        let Verdict::Retry(reason) = verdict else { return Ok(response) };
        let Some(again) = again else { return Err(middleware_error(ClientError::BodyNotReplayable.logged())) };
        tracing::debug!(?reason, "sending the request again with a new DPoP proof");
        let (response, verdict) = self.send_once(again, extensions, next).await?;
        if let Verdict::Retry(reason) = verdict {
            tracing::warn!(?reason, status = %response.status(), "server refused the retried DPoP proof too; no more retries");
        }
        Ok(response)
    }
}

/// The rest of the body, or `None` when it is longer than `limit` bytes (then nothing more is
/// read).
pub(crate) async fn read_limited(response: &mut Response, limit: usize) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response.content_length().is_some_and(|length| length > limit as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len().saturating_add(chunk.len()) > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

fn middleware_error(error: ClientError) -> reqwest_middleware::Error {
    reqwest_middleware::Error::middleware(error)
}
