//! The MCP server: two rmcp tools served over streamable HTTP, behind the DPoP layer.
//!
//! The layer answers every request that is not authenticated (the tools never run for it) and
//! serves the RFC 9728 metadata. rmcp hands each tool the HTTP request's
//! [`Parts`](http::request::Parts), where the layer left the verified
//! [`Authentication`]: that is how `whoami` knows the caller.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use dpop_guard::axum::DpopLayer;
use dpop_guard::{Authentication, DpopGuard};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;

use super::{challenge_param, identity};

/// The tools. Cheap to clone: rmcp makes one per session.
#[derive(Clone, Debug)]
pub(crate) struct Tools {
    tool_router: ToolRouter<Self>,
    whoami_calls: Arc<AtomicUsize>,
}

/// The arguments of `echo`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct EchoArgs {
    /// The text to send back.
    text: String,
}

#[tool_router]
impl Tools {
    /// Tools whose `whoami` runs are counted in `whoami_calls`.
    pub(crate) fn new(whoami_calls: Arc<AtomicUsize>) -> Self {
        Self { tool_router: Self::tool_router(), whoami_calls }
    }

    /// Who is calling, as the DPoP layer verified it.
    #[tool(description = "Who is calling: the access token's subject, client and scopes, and the \
                          thumbprint (jkt) of the key that signed this request's DPoP proof")]
    fn whoami(&self, Extension(parts): Extension<http::request::Parts>) -> Result<CallToolResult, ErrorData> {
        self.whoami_calls.fetch_add(1, Ordering::SeqCst);
        // Behind the layer every request has one; without it, refuse rather than guess.
        let auth = parts
            .extensions
            .get::<Authentication>()
            .ok_or_else(|| ErrorData::internal_error("the request was not authenticated", None))?;
        Ok(CallToolResult::structured(identity(auth)))
    }

    /// Sends the text back.
    #[tool(description = "Sends the text back")]
    fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("dpop-guard-example", env!("CARGO_PKG_VERSION")))
            .with_instructions("Every request needs a DPoP-bound access token and a fresh DPoP proof.")
    }
}

/// The MCP endpoint at `path`, protected by `guard`, answering for `tools`.
///
/// `allowed_hosts` are the `Host` values rmcp accepts (its DNS rebinding protection): the host
/// names clients use, e.g. the resource URL's.
pub(crate) fn router(guard: DpopGuard, path: &str, allowed_hosts: Vec<String>, tools: Tools) -> Router {
    let config = StreamableHttpServerConfig::default().with_allowed_hosts(allowed_hosts);
    let service =
        StreamableHttpService::new(move || Ok(tools.clone()), Arc::new(LocalSessionManager::default()), config);
    Router::new()
        .route_service(path, service)
        // Every route of the router, and the RFC 9728 metadata document, which the layer serves.
        .layer(DpopLayer::with_guard(guard))
        .layer(middleware::from_fn(log_rejection))
}

/// Logs why a request was refused: the error code and description of the challenge.
async fn log_rejection(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let response = next.run(request).await;
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        let challenge = response.headers().get("www-authenticate").and_then(|value| value.to_str().ok());
        let param = |name| challenge.and_then(|challenge| challenge_param(challenge, name));
        let (error, description) = match (param("error"), challenge) {
            (Some(error), _) => (error, param("error_description").unwrap_or_default()),
            (None, Some(_)) => ("no_credentials".to_owned(), "no DPoP credentials".to_owned()),
            (None, None) => (status.canonical_reason().unwrap_or_default().to_owned(), String::new()),
        };
        tracing::info!(%method, path, status = status.as_u16(), error, description, "request refused");
    }
    response
}

/// The path of `url` (`/` when it has none): where the MCP endpoint of the resource `url` is.
pub(crate) fn url_path(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    let rest = url.get(after_scheme..).unwrap_or_default();
    match rest.find('/') {
        Some(at) => rest.get(at..).unwrap_or("/"),
        None => "/",
    }
}

/// The host of `url`, without port.
pub(crate) fn url_host(url: &str) -> Option<&str> {
    let after_scheme = url.find("://")? + 3;
    let authority = url.get(after_scheme..)?.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    if let Some(bracketed) = host_port.strip_prefix('[') {
        return bracketed.split(']').next();
    }
    host_port.split(':').next().filter(|host| !host.is_empty())
}

/// The origin of `url`: its scheme and authority (`https://host[:port]`).
pub(crate) fn url_origin(url: &str) -> Option<&str> {
    let after_scheme = url.find("://")? + 3;
    let rest = url.get(after_scheme..)?;
    let end = rest.find(['/', '?', '#']).map_or(url.len(), |at| after_scheme + at);
    url.get(..end).filter(|origin| origin.len() > after_scheme)
}
