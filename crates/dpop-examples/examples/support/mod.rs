//! Code shared by the examples and their tests (`tests/demo.rs`, `tests/examples.rs`), so that a
//! test runs exactly what `cargo run --example …` runs:
//!
//! - [`auth_server`]: a development authorization server issuing DPoP-bound JWT access tokens;
//! - [`mcp`]: rmcp tools served over streamable HTTP behind the DPoP layer;
//! - [`mcp_server`]: the configuration of `examples/mcp_server.rs` (flags, environment);
//! - [`actix_app`]: the same protection on actix-web;
//! - [`mcp_client`]: the MCP client of `examples/mcp_client.rs`, on rmcp and the client library;
//! - [`client`]: the attacker's raw requests, with stolen credentials and altered proofs;
//! - [`wiretap`]: what crossed the wire, recorded by the servers;
//! - [`demo`]: the client and the attacker of `examples/demo.rs`.
//!
//! Each example uses a part of it.
#![allow(dead_code)]

pub(crate) mod actix_app;
pub(crate) mod auth_server;
pub(crate) mod client;
pub(crate) mod demo;
pub(crate) mod mcp;
pub(crate) mod mcp_client;
pub(crate) mod mcp_server;
pub(crate) mod wiretap;

use dpop_guard::Authentication;
use serde_json::{Value, json};

/// The error type of the examples: anything, with its message.
pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

/// Who made a request, as the layer verified it: the token's subject, client and scopes, and
/// for DPoP the thumbprint of the key that signed the proof. What the `whoami` tool and the
/// actix-web handler answer.
pub(crate) fn identity(auth: &Authentication) -> Value {
    let claims = auth.claims();
    json!({
        "scheme": auth.scheme().as_str(),
        "sub": claims.subject,
        "client_id": claims.client_id,
        "scope": claims.scopes.join(" "),
        "jkt": auth.jkt(),
    })
}

/// The value of the auth-param `name` in a `WWW-Authenticate` field value, unescaped
/// (`error`, `resource_metadata`, …). Enough for the challenges dpop-guard sends.
pub(crate) fn challenge_param(challenge: &str, name: &str) -> Option<String> {
    let mut rest = challenge;
    loop {
        let at = rest.find(name)?;
        let before = rest.get(..at)?;
        let after = rest.get(at + name.len()..)?;
        let starts_param = before.is_empty() || before.ends_with([' ', ',']);
        if let (true, Some(value)) = (starts_param, after.strip_prefix('=')) {
            return Some(param_value(value));
        }
        rest = after;
    }
}

/// A quoted-string (RFC 9110 §5.6.4) or token at the start of `text`.
fn param_value(text: &str) -> String {
    let Some(quoted) = text.strip_prefix('"') else {
        return text.split([',', ' ']).next().unwrap_or_default().to_owned();
    };
    let mut value = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => value.extend(chars.next()),
            c => value.push(c),
        }
    }
    value
}

/// Serves `app` on `listener` in a task of the current Tokio runtime, logging why it stopped.
pub(crate) fn serve(listener: tokio::net::TcpListener, app: axum::Router, name: &'static str) {
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, server = name, "server stopped");
        }
    });
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> Result<i64, Error> {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    Ok(i64::try_from(since_epoch.as_secs())?)
}

/// Logs with `tracing` to stderr, filtered by `RUST_LOG`; with `default` when it is unset, or
/// not at all when `default` is `None`.
pub(crate) fn init_tracing(default: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match (std::env::var("RUST_LOG"), default) {
        (Ok(directives), _) if !directives.is_empty() => EnvFilter::new(directives),
        (_, Some(default)) => EnvFilter::new(default),
        _ => return,
    };
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
