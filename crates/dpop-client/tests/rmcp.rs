//! An rmcp client through `DpopMcpClient` against an rmcp `StreamableHttpService` behind
//! `dpop_axum::DpopLayer` (nonces on POST): initialize, tools/list, tools/call, a server
//! notification over the GET event stream, DELETE — each request with its own proof and `ath`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use dpop_client::DpopSession;
use dpop_client::rmcp::DpopMcpClient;
use dpop_core::DpopKey;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{CallToolRequestParams, ServerCapabilities, ServerConfig};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ClientHandler, RoleClient, RoleServer, ServerHandler, ServiceExt as _, tool, tool_handler, tool_router};
use support::{ResourceOptions, ResourceServer};
use tokio::sync::Notify;

#[derive(Clone)]
struct Echo {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Echo {
    fn new() -> Self {
        Self { tool_router: Self::tool_router() }
    }

    #[tool(description = "Answers, then announces a changed tool list (outside the request: GET stream)")]
    fn ping(&self, context: RequestContext<RoleServer>) -> String {
        let peer = context.peer.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let _ = peer.notify_tool_list_changed().await;
        });
        "pong".to_owned()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_tool_list_changed().build())
    }
}

#[derive(Clone, Default)]
struct Listener(Arc<Notify>);

impl ClientHandler for Listener {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.0.notify_one();
    }
}

async fn start() -> ResourceServer {
    let service = StreamableHttpService::new(
        || Ok(Echo::new()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let options = ResourceOptions { nonces_on_post: true, ..Default::default() };
    ResourceServer::start_with(options, axum::Router::new().route_service("/mcp", service)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rmcp_client_talks_to_an_mcp_server_behind_dpop() {
    let server = start().await;
    let session = DpopSession::new(DpopKey::generate().unwrap());
    let token = format!("at.{}.0", session.jkt());
    let config = StreamableHttpClientTransportConfig::with_uri(server.url("/mcp")).auth_header(token);
    let transport = StreamableHttpClientTransport::with_client(DpopMcpClient::new(session.clone()), config);
    let listener = Listener::default();
    let client = listener.clone().serve(transport).await.expect("initialize");

    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.iter().map(|tool| tool.name.as_ref()).collect::<Vec<_>>(), ["ping"]);
    let result = client.call_tool(CallToolRequestParams::new("ping")).await.unwrap();
    assert_eq!(result.content[0].as_text().unwrap().text, "pong");

    // The notification comes over the GET event stream, opened with its own proof.
    tokio::time::timeout(Duration::from_secs(5), listener.0.notified()).await.expect("notification over GET");
    client.cancel().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let log = server.counters.log();
    let of = |method: &str| log.iter().filter(|(m, p, _, _)| m == method && p == "/mcp").collect::<Vec<_>>();
    // One use_dpop_nonce for the first POST, retried; every other request passed the layer.
    let refused: Vec<_> = log.iter().filter(|(_, _, status, _)| *status == 401).collect();
    assert_eq!(refused.len(), 1, "{log:?}");
    assert!(of("POST").iter().filter(|(_, _, s, _)| *s == 200 || *s == 202).count() >= 4, "{log:?}");
    assert!(of("GET").iter().any(|(_, _, s, t)| *s == 200 && t.starts_with("text/event-stream")), "{log:?}");
    assert!(of("DELETE").iter().any(|(_, _, s, _)| (200..300).contains(s)), "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_bound_to_another_key_is_refused_as_auth_required() {
    let server = start().await;
    let session = DpopSession::new(DpopKey::generate().unwrap());
    let other = DpopKey::generate().unwrap();
    let config = StreamableHttpClientTransportConfig::with_uri(server.url("/mcp"))
        .auth_header(format!("at.{}.0", other.thumbprint()));
    let transport = StreamableHttpClientTransport::with_client(DpopMcpClient::new(session), config);
    let error = ().serve(transport).await.map(|_| ()).unwrap_err();
    assert!(format!("{error:?}").contains("invalid_token"), "{error:?}");
}
