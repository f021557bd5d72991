//! What crossed the wire: an axum middleware that records every exchange with a server — the
//! request as sent (headers, body) and the answer's status and OAuth error code. The demo shows
//! from it what the client library did (its nonce retries included), and hands the attacker
//! what an eavesdropper would hold: tokens, proofs, session ids.

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::challenge_param;

/// Request bodies are MCP messages and token requests: small.
const MAX_BODY: usize = 1024 * 1024;

/// One request and its answer.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    /// Which server answered (`AS`, `MCP`).
    pub(crate) server: &'static str,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) status: u16,
    /// The `error` of the `WWW-Authenticate` challenge, or of a 400 JSON body (RFC 6749 §5.2).
    pub(crate) error: Option<String>,
}

impl Seen {
    /// The first value of the request header `name`.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The JSON-RPC `method` of the request body, if it is one.
    pub(crate) fn jsonrpc_method(&self) -> Option<String> {
        let message: Value = serde_json::from_slice(&self.body).ok()?;
        message.get("method")?.as_str().map(str::to_owned)
    }
}

/// The record of every exchange, shared by the servers it taps. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub(crate) struct Wiretap {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Wiretap {
    /// `router` with every exchange recorded as answered by `server`.
    pub(crate) fn tap(&self, server: &'static str, router: Router) -> Router {
        router.layer(middleware::from_fn_with_state((self.clone(), server), record))
    }

    /// What was recorded since the last call.
    pub(crate) fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

async fn record(State((tap, server)): State<(Wiretap, &'static str)>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        tracing::info!(server, path = parts.uri.path(), "request refused: body too large to record");
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let (method, path, headers) = (parts.method.to_string(), parts.uri.path().to_owned(), parts.headers.clone());
    let response = next.run(Request::from_parts(parts, Body::from(body.clone()))).await;
    let (response, error) = error_of(response).await;
    let seen = Seen { server, method, path, headers, body, status: response.status().as_u16(), error };
    tap.seen.lock().unwrap_or_else(PoisonError::into_inner).push(seen);
    response
}

/// The OAuth error code of a refusal: from the challenge, or from a 400 JSON body (read, then put
/// back). Other bodies — event streams among them — are left alone.
async fn error_of(response: Response) -> (Response, Option<String>) {
    let challenge = response.headers().get(header::WWW_AUTHENTICATE).and_then(|value| value.to_str().ok());
    if let Some(error) = challenge.and_then(|challenge| challenge_param(challenge, "error")) {
        return (response, Some(error));
    }
    let json = response.headers().get(header::CONTENT_TYPE).is_some_and(|value| value == "application/json");
    if response.status() != StatusCode::BAD_REQUEST || !json {
        return (response, None);
    }
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let error = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|document| document.get("error")?.as_str().map(str::to_owned));
    (Response::from_parts(parts, Body::from(body)), error)
}
