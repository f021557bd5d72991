//! DPoP (RFC 9449) for MCP servers: who is calling, in every rmcp tool, and MCP sessions that
//! only their opener can use.
//!
//! The DPoP layer (`dpop-axum`, `dpop-tower`) verifies every HTTP request before rmcp's
//! streamable HTTP service sees it. This crate carries that verdict into MCP:
//!
//! - [`Caller`] (feature `rmcp`, default): the verified caller as a tool parameter — subject,
//!   client, scopes, the key thumbprint (`jkt`) — and [`Caller::require_scope`] for per-tool
//!   scopes, answering the JSON-RPC error an MCP client reads (see [`INSUFFICIENT_SCOPE_CODE`]).
//! - [`SessionBindingLayer`]: a tower layer that binds each `Mcp-Session-Id` to the key and
//!   subject that opened it and answers `404` to anyone else presenting it, so a stolen
//!   session id is as useless as a stolen token. Bindings live in an [`InMemorySessionStore`]
//!   (bounded, idle expiry) or, with feature `redis`, a `RedisSessionStore` shared by every
//!   replica.
//!
//! ```
//! use std::sync::Arc;
//!
//! use axum::Router;
//! use dpop_axum::DpopLayer;
//! use dpop_core::DpopGuard;
//! use dpop_mcp::{Caller, SessionBindingLayer};
//! use rmcp::handler::server::router::tool::ToolRouter;
//! use rmcp::model::{ServerCapabilities, ServerConfig};
//! use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
//! use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
//! use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
//!
//! #[derive(Clone)]
//! struct Notes {
//!     tool_router: ToolRouter<Self>,
//! }
//!
//! #[tool_router]
//! impl Notes {
//!     #[tool(description = "Who is calling")]
//!     fn whoami(&self, caller: Caller) -> String {
//!         caller.subject().unwrap_or("?").to_owned()
//!     }
//!
//!     #[tool(description = "Deletes every note")]
//!     fn purge(&self, caller: Caller) -> Result<String, ErrorData> {
//!         caller.require_scope("notes:write")?;
//!         Ok("purged".to_owned())
//!     }
//! }
//!
//! #[tool_handler(router = self.tool_router)]
//! impl ServerHandler for Notes {
//!     fn get_info(&self) -> ServerConfig {
//!         ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
//!     }
//! }
//!
//! # let validator = dpop_core::validator_fn(|_| Err(dpop_core::TokenError::Invalid(dpop_core::InvalidToken::Other("unknown token"))));
//! let guard = DpopGuard::builder()
//!     .resource("https://mcp.example.com/mcp")
//!     .authorization_server("https://auth.example.com")
//!     .token_validator(validator) // a JwtValidator in production
//!     .build()?;
//! let notes = Notes { tool_router: Notes::tool_router() };
//! let mcp = StreamableHttpService::new(
//!     move || Ok(notes.clone()),
//!     Arc::new(LocalSessionManager::default()),
//!     StreamableHttpServerConfig::default(),
//! );
//! let app: Router = Router::new()
//!     .route_service("/mcp", mcp)
//!     .layer(SessionBindingLayer::in_memory()) // inside: runs after the DPoP layer
//!     .layer(DpopLayer::with_guard(guard));
//! # Ok::<(), dpop_core::ConfigError>(())
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "rmcp")]
mod caller;
mod session;

#[cfg(feature = "rmcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "rmcp")))]
pub use caller::{Caller, INSUFFICIENT_SCOPE_CODE};
pub use session::{
    Binding, DEFAULT_CAPACITY, DEFAULT_IDLE_TIMEOUT, InMemorySessionStore, SESSION_HEADER, SessionBindingLayer,
    SessionBindingService, SessionFuture, SessionKey, SessionOwner, SessionResponseBody, SessionStore,
    SessionStoreError,
};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use session::{DEFAULT_REDIS_PREFIX, DEFAULT_REDIS_TIMEOUT, RedisSessionStore};
