//! rmcp tools read the identity the DPoP layer verified: an rmcp streamable HTTP server behind
//! `dpop_guard::axum::DpopLayer`, with a tool that answers `Authentication::jkt()` read from
//! `Extension<http::request::Parts>`. Real HTTP requests: with valid proofs the tool answers
//! the client key's thumbprint; without a proof the layer answers 401 and the tool never runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dpop_guard::axum::DpopLayer;
use dpop_guard::{Authentication, DpopKey};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use serde_json::{Value, json};

mod support;

#[derive(Clone)]
struct KeyTool {
    tool_router: ToolRouter<Self>,
    calls: Arc<AtomicUsize>,
}

#[tool_router]
impl KeyTool {
    fn new(calls: Arc<AtomicUsize>) -> Self {
        Self { tool_router: Self::tool_router(), calls }
    }

    #[tool(description = "The thumbprint of the key that signed this request's DPoP proof")]
    fn jkt(&self, Extension(parts): Extension<http::request::Parts>) -> String {
        self.calls.fetch_add(1, Ordering::SeqCst);
        parts.extensions.get::<Authentication>().and_then(Authentication::jkt).unwrap_or("none").to_owned()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for KeyTool {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// The MCP endpoint URL and the count of tool runs.
async fn start() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let guard = support::guard_builder().resource(&url).build().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let tool = KeyTool::new(Arc::clone(&calls));
    let service = StreamableHttpService::new(
        move || Ok(tool.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = axum::Router::new().route_service("/mcp", service).layer(DpopLayer::with_guard(guard));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Reply {
    /// The JSON-RPC response: the body, or the event of the event stream that carries it.
    fn result(&self) -> Value {
        let message = self
            .body
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .chain([self.body.as_str()])
            .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .find(|message| message.get("id").is_some())
            .unwrap_or_else(|| panic!("no JSON-RPC response: {}", self.body));
        message["result"].clone()
    }
}

/// POSTs `message`; with a proof signed by `key` when there is one.
async fn post(url: &str, key: Option<&DpopKey>, session: Option<&str>, message: &Value) -> Reply {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(message.to_string());
    if let Some(key) = key {
        let token = support::bound_token(key);
        request = request
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", key.proof("POST", url).access_token(&token).sign().unwrap());
    } else {
        request = request.header("authorization", format!("DPoP {}", support::TOKEN));
    }
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    Reply { status, headers, body: response.text().await.unwrap() }
}

fn call_jkt() -> Value {
    json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "jkt", "arguments": {} } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_reads_the_verified_key_thumbprint() {
    let (url, calls) = start().await;
    let key = DpopKey::generate().unwrap();

    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "test", "version": "1" } },
    });
    let reply = post(&url, Some(&key), None, &initialize).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let session = reply.headers["mcp-session-id"].to_str().unwrap().to_owned();
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    assert_eq!(post(&url, Some(&key), Some(&session), &initialized).await.status, 202);

    let reply = post(&url, Some(&key), Some(&session), &call_jkt()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.result()["content"][0]["text"], key.thumbprint().to_string().as_str());
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // The same call without a proof, in the same session: the layer answers, the tool never runs.
    let reply = post(&url, None, Some(&session), &call_jkt()).await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    let challenge = reply.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with(r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof is missing""#));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the tool ran for a request without a proof");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_proof_nothing_reaches_rmcp() {
    let (url, calls) = start().await;
    let reply = post(&url, None, None, &call_jkt()).await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert!(reply.headers.contains_key("www-authenticate"));
    assert_eq!(reply.headers.get("mcp-session-id"), None);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}
