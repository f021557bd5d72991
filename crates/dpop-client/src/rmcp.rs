//! rmcp: [`DpopMcpClient`], rmcp's [`StreamableHttpClient`] over the DPoP middleware, so
//! `StreamableHttpClientTransport::with_client(..)` talks to an MCP server behind DPoP.
//!
//! rmcp's own reqwest client sends `Authorization: Bearer` and keeps no response headers from a
//! refusal, so a `DPoP-Nonce` would be lost; this client sends every message — the POSTs, the
//! GET event stream, the DELETE that ends the session — through [`DpopMiddleware`], each with its
//! own proof bound to the access token (`ath`), and the nonce and clock handling of the session.
//! The access token is rmcp's `auth_header` (the bare token, as for rmcp's own client); it goes
//! out as `Authorization: DPoP <token>`.
//!
//! Response bodies are bounded by rmcp's [`StreamableHttpResponseLimits`]: whole JSON responses,
//! error prefixes, and each event of an event stream.
//!
//! ```no_run
//! use dpop_client::DpopSession;
//! use dpop_client::rmcp::DpopMcpClient;
//! use dpop_core::DpopKey;
//! use rmcp::transport::StreamableHttpClientTransport;
//! use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
//!
//! # fn run(access_token: String) -> Result<(), Box<dyn std::error::Error>> {
//! let session = DpopSession::new(DpopKey::generate()?);
//! let config = StreamableHttpClientTransportConfig::with_uri("https://mcp.example.com/mcp").auth_header(access_token);
//! let transport = StreamableHttpClientTransport::with_client(DpopMcpClient::new(session), config);
//! // `().serve(transport).await?` or any rmcp client handler, as usual.
//! # let _ = transport;
//! # Ok(())
//! # }
//! ```
//!
//! [`DpopMiddleware`]: crate::DpopMiddleware

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use ::rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use ::rmcp::transport::streamable_http_client::{
    AuthRequiredError, HttpStatusError, InsufficientScopeError, SseError, StreamableHttpClient, StreamableHttpError,
    StreamableHttpPostResponse, StreamableHttpResponseLimits,
};
use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, StatusCode};
use reqwest_middleware::{ClientWithMiddleware, RequestBuilder};
use sse_stream::{Sse, SseStream};

use crate::session::DpopSession;

const SESSION_ID: &str = "mcp-session-id";
const LAST_EVENT_ID: &str = "last-event-id";
const EVENT_STREAM: &str = "text/event-stream";
const JSON: &str = "application/json";

type Error = StreamableHttpError<reqwest_middleware::Error>;

/// rmcp's streamable-HTTP client with DPoP. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DpopMcpClient {
    http: ClientWithMiddleware,
}

impl DpopMcpClient {
    /// A client signing with `session`, over a default `reqwest::Client`.
    #[must_use]
    pub fn new(session: DpopSession) -> Self {
        Self::with_http(crate::reqwest::client(reqwest::Client::new(), session))
    }

    /// A client over `http`, which must have the [`DpopMiddleware`](crate::DpopMiddleware) in
    /// its stack (built with [`crate::reqwest::client`], for instance).
    #[must_use]
    pub const fn with_http(http: ClientWithMiddleware) -> Self {
        Self { http }
    }

    /// A request with the MCP and DPoP headers: custom headers first, so that none of them can
    /// replace the ones the protocol needs.
    fn request(
        &self,
        method: http::Method,
        uri: &str,
        session_id: Option<&str>,
        token: Option<&str>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<RequestBuilder, Error> {
        let mut request = self.http.request(method, uri);
        for (name, value) in custom_headers {
            if [AUTHORIZATION, ACCEPT, CONTENT_TYPE].contains(&name)
                || name.as_str() == SESSION_ID
                || name.as_str() == LAST_EVENT_ID
                || name.as_str() == dpop_core::headers::names::DPOP
            {
                tracing::warn!(header = %name, "custom header conflicts with an MCP or DPoP header");
                return Err(StreamableHttpError::ReservedHeaderConflict(name.to_string()));
            }
            request = request.header(name, value);
        }
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("DPoP {token}"));
        }
        if let Some(session_id) = session_id {
            request = request.header(SESSION_ID, session_id);
        }
        Ok(request)
    }
}

impl StreamableHttpClient for DpopMcpClient {
    type Error = reqwest_middleware::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, Error> {
        let limits = StreamableHttpResponseLimits::default();
        self.post_message_with_response_limits(uri, message, session_id, auth_header, custom_headers, limits).await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, Error> {
        let mut limits = StreamableHttpResponseLimits::default();
        limits.max_sse_event_size = max_sse_event_size;
        self.post_message_with_response_limits(uri, message, session_id, auth_header, custom_headers, limits).await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, Error> {
        let body = serde_json::to_vec(&message)?;
        let awaits_no_response = !matches!(message, ClientJsonRpcMessage::Request(_));
        let request = self
            .request(http::Method::POST, &uri, session_id.as_deref(), auth_header.as_deref(), custom_headers)?
            .header(ACCEPT, format!("{JSON}, {EVENT_STREAM}"))
            .header(CONTENT_TYPE, JSON)
            .body(body);
        let response = request.send().await.map_err(StreamableHttpError::Client)?;
        let status = response.status();
        refuse_auth(&response)?;
        if matches!(status, StatusCode::ACCEPTED | StatusCode::NO_CONTENT) {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        if status == StatusCode::NOT_FOUND && session_id.is_some() {
            return Err(StreamableHttpError::SessionExpired);
        }
        if !status.is_success() {
            return Err(failure(response, limits.max_error_response_size).await);
        }
        let new_session = response.headers().get(SESSION_ID).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if awaits_no_response && response.content_length() == Some(0) {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        match media_type(&response).as_deref() {
            Some(EVENT_STREAM) => {
                Ok(StreamableHttpPostResponse::Sse(event_stream(response, limits.max_sse_event_size), new_session))
            }
            Some(JSON) => {
                let body = read_bounded(response, limits.max_json_response_size).await?;
                let message: ServerJsonRpcMessage = serde_json::from_slice(&body)?;
                Ok(StreamableHttpPostResponse::Json(message, new_session))
            }
            other => Err(StreamableHttpError::UnexpectedContentType(other.map(str::to_owned))),
        }
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), Error> {
        let request =
            self.request(http::Method::DELETE, &uri, Some(&session_id), auth_header.as_deref(), custom_headers)?;
        let response = request.send().await.map_err(StreamableHttpError::Client)?;
        refuse_auth(&response)?;
        if response.status() == StatusCode::METHOD_NOT_ALLOWED {
            tracing::debug!("the MCP server does not support ending sessions");
            return Ok(());
        }
        if !response.status().is_success() {
            return Err(failure(response, StreamableHttpResponseLimits::default().max_error_response_size).await);
        }
        Ok(())
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, Error> {
        let max = StreamableHttpResponseLimits::default().max_sse_event_size;
        self.get_stream_with_max_sse_event_size(uri, session_id, last_event_id, auth_header, custom_headers, max).await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, Error> {
        let mut request = self
            .request(http::Method::GET, &uri, session_id.as_deref(), auth_header.as_deref(), custom_headers)?
            .header(ACCEPT, format!("{EVENT_STREAM}, {JSON}"));
        if let Some(last_event_id) = last_event_id {
            request = request.header(LAST_EVENT_ID, last_event_id);
        }
        let response = request.send().await.map_err(StreamableHttpError::Client)?;
        if response.status() == StatusCode::METHOD_NOT_ALLOWED {
            return Err(StreamableHttpError::ServerDoesNotSupportSse);
        }
        refuse_auth(&response)?;
        if !response.status().is_success() {
            let limit = StreamableHttpResponseLimits::default().max_error_response_size;
            return Err(failure(response, limit).await);
        }
        match media_type(&response).as_deref() {
            Some(EVENT_STREAM) => Ok(event_stream(response, max_sse_event_size)),
            other => Err(StreamableHttpError::UnexpectedContentType(other.map(str::to_owned))),
        }
    }
}

/// 401 and 403 with a challenge, as rmcp's own clients report them (the DPoP middleware has
/// already retried what a nonce or a clock could fix).
fn refuse_auth(response: &reqwest::Response) -> Result<(), Error> {
    let challenge = || {
        response.headers().get(WWW_AUTHENTICATE).map(|value| {
            value.to_str().map(str::to_owned).map_err(|_| {
                StreamableHttpError::UnexpectedServerResponse(Cow::Borrowed("invalid www-authenticate header value"))
            })
        })
    };
    match response.status() {
        StatusCode::UNAUTHORIZED => match challenge() {
            Some(header) => {
                let header = header?;
                tracing::warn!(challenge = %header, "MCP server refused the request");
                Err(StreamableHttpError::AuthRequired(AuthRequiredError::new(header)))
            }
            None => Ok(()),
        },
        StatusCode::FORBIDDEN => match challenge() {
            Some(header) => {
                let header = header?;
                let params = crate::challenge::challenge_params(response.headers());
                let scope = params.iter().find(|p| p.name == "scope").map(|p| p.value.clone());
                tracing::warn!(challenge = %header, "MCP server refused the request: insufficient scope");
                Err(StreamableHttpError::InsufficientScope(InsufficientScopeError::new(header, scope)))
            }
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// A non-success answer: status metadata for 429 and 5xx, a bounded diagnostic otherwise.
async fn failure(response: reqwest::Response, max_error_response_size: usize) -> Error {
    let status = response.status();
    tracing::warn!(%status, "MCP server answered with an error status");
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        let retry_after = response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        return HttpStatusError::new(status.as_u16(), retry_after).into();
    }
    let prefix = read_prefix(response, max_error_response_size).await;
    StreamableHttpError::UnexpectedServerResponse(Cow::Owned(format!(
        "HTTP {status}: {}",
        String::from_utf8_lossy(&prefix)
    )))
}

/// The media type of `Content-Type`, lowercase, without parameters.
fn media_type(response: &reqwest::Response) -> Option<String> {
    let value = response.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

/// The whole body, refused past `limit` bytes.
async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, Error> {
    match crate::reqwest::read_limited(&mut response, limit).await {
        Ok(Some(body)) => Ok(body),
        Ok(None) => {
            tracing::warn!(limit, "MCP response larger than the limit");
            Err(StreamableHttpError::ResponseBodyTooLarge { max_size: limit })
        }
        Err(error) => Err(StreamableHttpError::Client(error.into())),
    }
}

/// At most `limit` bytes of the body, for a diagnostic.
async fn read_prefix(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut prefix = Vec::new();
    while prefix.len() < limit {
        let Ok(Some(chunk)) = response.chunk().await else { break };
        let room = limit - prefix.len();
        prefix.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
    }
    prefix
}

/// The response body as server-sent events, each event bounded by `max_event_size` bytes.
fn event_stream(response: reqwest::Response, max_event_size: usize) -> BoxStream<'static, Result<Sse, SseError>> {
    let bytes = futures_util::stream::unfold(
        (response, EventLimiter::new(max_event_size), false),
        |(mut response, mut limiter, failed)| async move {
            if failed {
                return None;
            }
            match response.chunk().await {
                Ok(Some(chunk)) => match limiter.observe(&chunk) {
                    Ok(()) => Some((Ok(chunk), (response, limiter, false))),
                    Err(error) => {
                        tracing::warn!(%error, "MCP event stream closed");
                        Some((Err(error), (response, limiter, true)))
                    }
                },
                Ok(None) => None,
                Err(error) => Some((Err(StreamError::Body(error)), (response, limiter, true))),
            }
        },
    );
    SseStream::from_bytes_stream(bytes).boxed()
}

/// Why an event stream ended early.
#[derive(Debug)]
enum StreamError {
    /// One event was larger than the limit.
    EventTooLarge(usize),
    /// The connection failed.
    Body(reqwest::Error),
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::EventTooLarge(limit) => write!(f, "an event of the MCP event stream is larger than {limit} bytes"),
            Self::Body(error) => write!(f, "MCP event stream failed: {error}"),
        }
    }
}

impl std::error::Error for StreamError {}

/// Counts the bytes of the event being received: a blank line (RFC 8895 / HTML SSE: an empty
/// line after `\n`, `\r` or `\r\n`) ends an event.
struct EventLimiter {
    max: usize,
    event: usize,
    line: usize,
    after_cr: bool,
}

impl EventLimiter {
    const fn new(max: usize) -> Self {
        Self { max, event: 0, line: 0, after_cr: false }
    }

    fn observe(&mut self, chunk: &Bytes) -> Result<(), StreamError> {
        for &byte in chunk.iter() {
            match byte {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\r' | b'\n' => {
                    self.after_cr = byte == b'\r';
                    if self.line == 0 {
                        self.event = 0;
                    }
                    self.line = 0;
                }
                _ => {
                    self.after_cr = false;
                    self.line = self.line.saturating_add(1);
                    self.event = self.event.saturating_add(1);
                    if self.event > self.max {
                        return Err(StreamError::EventTooLarge(self.max));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_bounds_one_event_not_the_stream() {
        let mut limiter = EventLimiter::new(10);
        for _ in 0..100 {
            assert!(limiter.observe(&Bytes::from_static(b"data: 1234\r\n\r\n")).is_ok());
        }
        assert!(limiter.observe(&Bytes::from_static(b"data: 12")).is_ok());
        assert!(limiter.observe(&Bytes::from_static(b"345\n")).is_err(), "11 bytes across two chunks");
        let mut limiter = EventLimiter::new(10);
        // Lines ended by \r\n do not end the event.
        assert!(limiter.observe(&Bytes::from_static(b"data: a\r\ndata: b\r\n")).is_err());
    }
}
