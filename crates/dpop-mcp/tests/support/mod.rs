//! Real MCP servers (rmcp's streamable HTTP service behind `dpop_axum::DpopLayer`) on
//! 127.0.0.1, and a client that speaks MCP over HTTP with a DPoP key of its own.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use dpop_axum::DpopLayer;
use dpop_core::{DpopGuard, DpopKey, TokenClaims, TokenError, validator_fn};
use dpop_mcp::{Caller, SessionBindingLayer};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::store::SessionStore as RmcpSessionStore;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use serde_json::{Value, json};

/// Counts of tool runs: every run, and the privileged part of `write`.
#[derive(Clone, Default)]
pub struct Runs {
    pub tools: Arc<AtomicUsize>,
    pub writes: Arc<AtomicUsize>,
}

impl Runs {
    pub fn tools(&self) -> usize {
        self.tools.load(Ordering::SeqCst)
    }

    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
pub struct Tools {
    tool_router: ToolRouter<Self>,
    runs: Runs,
}

#[tool_router]
impl Tools {
    pub fn new(runs: Runs) -> Self {
        Self { tool_router: Self::tool_router(), runs }
    }

    #[tool(description = "The caller's subject and key thumbprint")]
    fn whoami(&self, caller: Caller) -> String {
        self.runs.tools.fetch_add(1, Ordering::SeqCst);
        json!({ "subject": caller.subject(), "jkt": caller.jkt() }).to_string()
    }

    #[tool(description = "The same, read from the HTTP request parts")]
    fn whoami_from_parts(&self, Extension(parts): Extension<http::request::Parts>) -> Result<String, ErrorData> {
        self.runs.tools.fetch_add(1, Ordering::SeqCst);
        let caller = Caller::from_parts(&parts)?;
        Ok(json!({ "subject": caller.subject(), "jkt": caller.jkt() }).to_string())
    }

    #[tool(description = "Writes; needs the scope tools:write")]
    fn write(&self, caller: Caller) -> Result<String, ErrorData> {
        self.runs.tools.fetch_add(1, Ordering::SeqCst);
        caller.require_scope("tools:write")?;
        self.runs.writes.fetch_add(1, Ordering::SeqCst);
        Ok("written".to_owned())
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// Tokens of the test authorization server: `bound.<jkt>.<hex subject>.<hex scope>`, valid and
/// bound to that key (`scope` space-separated); anything else was never issued.
pub fn token_for(key: &DpopKey, subject: &str, scopes: &[&str]) -> String {
    format!("bound.{}.{}.{}", key.thumbprint(), hex(subject), hex(&scopes.join(" ")))
}

fn hex(text: &str) -> String {
    text.bytes().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> =
        (0..text.len()).step_by(2).map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

fn guard_builder() -> dpop_core::DpopGuardBuilder {
    DpopGuard::builder().token_validator(validator_fn(|token: &str| {
        let mut parts = token.split('.');
        let (Some("bound"), Some(jkt), Some(subject), Some(scope), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Invalid(dpop_core::InvalidToken::Other("unknown token")));
        };
        let (Some(subject), Some(scope)) = (unhex(subject), unhex(scope)) else {
            return Err(TokenError::Invalid(dpop_core::InvalidToken::Other("unknown token")));
        };
        let mut claims = TokenClaims::default();
        claims.subject = Some(subject);
        claims.cnf_jkt = Some(jkt.to_owned());
        claims.scopes = scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
        Ok(claims)
    }))
}

/// How a test server is put together.
#[derive(Default)]
pub struct Setup {
    /// The session binding layer, inside the DPoP layer.
    pub sessions: Option<SessionBindingLayer>,
    /// rmcp's own store for restoring sessions on another instance.
    pub rmcp_store: Option<Arc<dyn RmcpSessionStore>>,
    /// A proof-only DPoP layer instead of a validating one.
    pub proof_only: bool,
    /// No DPoP layer at all.
    pub without_dpop: bool,
}

/// A running server: its MCP endpoint URL and its tool runs.
pub struct Server {
    pub url: String,
    pub runs: Runs,
}

pub async fn start(setup: Setup) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let runs = Runs::default();
    let tools = Tools::new(runs.clone());
    let mut config = StreamableHttpServerConfig::default();
    config.session_store = setup.rmcp_store;
    let service =
        StreamableHttpService::new(move || Ok(tools.clone()), Arc::new(LocalSessionManager::default()), config);
    let mut app = Router::new().route_service("/mcp", service);
    if let Some(sessions) = setup.sessions {
        app = app.layer(sessions);
    }
    if !setup.without_dpop {
        let guard = if setup.proof_only {
            DpopGuard::builder().resource(&url).proof_only().build().unwrap()
        } else {
            guard_builder().resource(&url).build().unwrap()
        };
        app = app.layer(DpopLayer::with_guard(guard));
    }
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server { url, runs }
}

/// An MCP client with its own key and token.
pub struct Client {
    pub key: Arc<DpopKey>,
    pub token: String,
    http: reqwest::Client,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    /// The JSON-RPC response: the body, or the event of the event stream that carries it.
    pub fn message(&self) -> Value {
        self.body
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .chain([self.body.as_str()])
            .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .find(|message| message.get("id").is_some())
            .unwrap_or_else(|| panic!("no JSON-RPC response ({}): {}", self.status, self.body))
    }

    /// The text a tool answered.
    pub fn tool_text(&self) -> String {
        let message = self.message();
        message["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("not a tool result: {message}"))
            .to_owned()
    }

    pub fn session(&self) -> Option<String> {
        self.headers.get("mcp-session-id").map(|value| value.to_str().unwrap().to_owned())
    }
}

impl Client {
    pub fn new(subject: &str, scopes: &[&str]) -> Self {
        let key = Arc::new(DpopKey::generate().unwrap());
        let token = token_for(&key, subject, scopes);
        Self { key, token, http: reqwest::Client::new() }
    }

    /// A client with this key but a token for `subject`.
    pub fn same_key_as(other: &Self, subject: &str) -> Self {
        let key = Arc::clone(&other.key);
        let token = token_for(&key, subject, &[]);
        Self { key, token, http: reqwest::Client::new() }
    }

    pub fn jkt(&self) -> String {
        self.key.thumbprint().to_string()
    }

    /// Sends one request with a fresh proof; `session` as `Mcp-Session-Id`.
    pub async fn send(&self, method: &str, url: &str, session: Option<&str>, body: Option<&Value>) -> Reply {
        let proof = self.key.proof(method, url).access_token(&self.token).sign().unwrap();
        let mut request = self
            .http
            .request(method.parse().unwrap(), url)
            .header("authorization", format!("DPoP {}", self.token))
            .header("dpop", proof)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18");
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        Reply { status, headers, body: response.text().await.unwrap() }
    }

    /// `initialize` then `notifications/initialized`: the session id.
    pub async fn open_session(&self, url: &str) -> String {
        let reply = self.send("POST", url, None, Some(&initialize())).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let session = reply.session().expect("an Mcp-Session-Id");
        let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let reply = self.send("POST", url, Some(&session), Some(&initialized)).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        session
    }

    /// `tools/call` of `tool` without arguments.
    pub async fn call(&self, url: &str, session: Option<&str>, tool: &str) -> Reply {
        let call =
            json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": tool, "arguments": {} } });
        self.send("POST", url, session, Some(&call)).await
    }
}

pub fn initialize() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "test", "version": "1" } },
    })
}
