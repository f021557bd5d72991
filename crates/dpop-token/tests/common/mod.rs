//! Shared fixtures: an authorization server key, token factory, and a tiny HTTP server on
//! 127.0.0.1 for JWKS and introspection.
#![allow(dead_code, unreachable_pub)]

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use dpop_core::{DpopKey, TokenClaims, TokenError};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The clock every fixture is made and checked at.
pub const NOW: u64 = 1_700_000_000;
pub const ISSUER: &str = "https://as.example.com";
pub const AUDIENCE: &str = "https://mcp.example.com/mcp";
pub const KID: &str = "as-key-1";

/// An authorization server signing key with its `kid`.
pub struct AsKey {
    pub key: DpopKey,
    pub kid: String,
}

impl AsKey {
    pub fn new(kid: &str) -> Self {
        Self { key: DpopKey::generate().unwrap(), kid: kid.to_owned() }
    }

    /// The public JWK with `kid`, `use` and `alg`, as an AS publishes it.
    pub fn jwk(&self) -> Value {
        let mut jwk = self.key.public_jwk();
        jwk["kid"] = json!(self.kid);
        jwk["use"] = json!("sig");
        jwk["alg"] = json!("ES256");
        jwk
    }

    /// The standard header for this key.
    pub fn header(&self) -> Value {
        json!({"alg": "ES256", "typ": "at+jwt", "kid": self.kid})
    }

    /// Signs `claims` with the standard header.
    pub fn token(&self, claims: &Value) -> String {
        self.sign(&self.header(), claims)
    }

    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        self.key.sign_jws(&header.to_string(), &claims.to_string()).unwrap()
    }

    /// Signs raw JSON texts (for duplicate members).
    pub fn sign_raw(&self, header: &str, claims: &str) -> String {
        self.key.sign_jws(header, claims).unwrap()
    }
}

/// `{"keys":[...]}` of these keys.
/// A validator for [`ISSUER`] and [`AUDIENCE`] that trusts `as_key`, at [`NOW`].
pub fn validator_trusting(as_key: &AsKey) -> dpop_token::JwtValidator {
    dpop_token::JwtValidator::builder(ISSUER, AUDIENCE)
        .keys(dpop_token::JwkSet::from_json(&jwks(&[as_key])).unwrap())
        .clock(dpop_core::clock::ManualClock::at(NOW))
        .build()
        .unwrap()
}

pub fn jwks(keys: &[&AsKey]) -> String {
    let keys: Vec<Value> = keys.iter().map(|key| key.jwk()).collect();
    json!({ "keys": keys }).to_string()
}

/// Claims of a valid DPoP-bound RFC 9068 token at [`NOW`].
pub fn claims(jkt: &str) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-42",
        "client_id": "mcp-client",
        "scope": "mcp:tools mcp:resources",
        "iat": NOW - 10,
        "nbf": NOW - 10,
        "exp": NOW + 3600,
        "jti": "token-1",
        "cnf": { "jkt": jkt },
    })
}

/// The `Invalid` reason's text (what the client reads in `error_description`), or a panic
/// naming what came instead.
pub fn invalid_reason(result: Result<std::sync::Arc<TokenClaims>, TokenError>) -> &'static str {
    match result {
        Err(TokenError::Invalid(why)) => why.as_str(),
        Err(TokenError::Unavailable(cause)) => panic!("expected Invalid, got Unavailable: {cause}"),
        Ok(claims) => panic!("expected Invalid, got Ok: {claims:?}"),
        Err(other) => panic!("expected Invalid, got {other:?}"),
    }
}

/// Asserts `Unavailable`; returns its message.
pub fn unavailable_cause(result: Result<std::sync::Arc<TokenClaims>, TokenError>) -> String {
    match result {
        Err(TokenError::Unavailable(cause)) => cause.to_string(),
        Err(TokenError::Invalid(why)) => panic!("expected Unavailable, got Invalid({why})"),
        Ok(claims) => panic!("expected Unavailable, got Ok: {claims:?}"),
        Err(other) => panic!("expected Unavailable, got {other:?}"),
    }
}

/// A test HTTP server on 127.0.0.1 that stops when told (or dropped).
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(router: axum::Router) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self { addr, stop: Some(stop), task: Some(task) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops accepting and waits until the listener is closed and open connections are done.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer").field("addr", &self.addr).finish()
    }
}

/// A local address nothing listens on.
pub async fn closed_port_url(path: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}{path}")
}

/// What a JWKS endpoint serves, changeable during a test, and how often it was asked.
#[derive(Clone, Default)]
pub struct JwksEndpoint {
    pub body: Arc<Mutex<String>>,
    pub status: Arc<Mutex<u16>>,
    pub delay_ms: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
}

impl JwksEndpoint {
    pub fn new(body: String) -> Self {
        Self { body: Arc::new(Mutex::new(body)), status: Arc::new(Mutex::new(200)), ..Self::default() }
    }

    pub fn set_body(&self, body: String) {
        *self.body.lock().unwrap() = body;
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub async fn serve(&self) -> TestServer {
        let endpoint = self.clone();
        let router = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let endpoint = endpoint.clone();
                async move {
                    endpoint.requests.fetch_add(1, Ordering::SeqCst);
                    let delay = endpoint.delay_ms.load(Ordering::SeqCst);
                    if delay > 0 {
                        tokio::time::sleep(std::time::Duration::from_millis(delay as u64)).await;
                    }
                    let status = *endpoint.status.lock().unwrap();
                    let body = endpoint.body.lock().unwrap().clone();
                    (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        body,
                    )
                }
            }),
        );
        TestServer::start(router).await
    }
}

/// A test authorization server: answers GETs with what each path was given (404 otherwise),
/// changeable during a test, and counts the requests per path.
#[derive(Clone, Default)]
pub struct TestAs {
    documents: Arc<Mutex<std::collections::HashMap<String, (u16, String)>>>,
    requests: Arc<Mutex<std::collections::HashMap<String, usize>>>,
}

impl TestAs {
    /// Serves `body` with status 200 at `path`.
    pub fn set(&self, path: &str, body: String) {
        self.set_status(path, 200, body);
    }

    pub fn set_status(&self, path: &str, status: u16, body: String) {
        self.documents.lock().unwrap().insert(path.to_owned(), (status, body));
    }

    pub fn remove(&self, path: &str) {
        self.documents.lock().unwrap().remove(path);
    }

    /// How many GETs `path` got.
    pub fn requests(&self, path: &str) -> usize {
        self.requests.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// Every GET, on any path.
    pub fn total_requests(&self) -> usize {
        self.requests.lock().unwrap().values().sum()
    }

    pub async fn serve(&self) -> TestServer {
        let server = self.clone();
        let router = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let server = server.clone();
            async move {
                let path = uri.path().to_owned();
                *server.requests.lock().unwrap().entry(path.clone()).or_default() += 1;
                let (status, body) =
                    server.documents.lock().unwrap().get(&path).cloned().unwrap_or((404, String::new()));
                (
                    axum::http::StatusCode::from_u16(status).unwrap(),
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
            }
        });
        TestServer::start(router).await
    }
}
