//! DPoP end to end, in one process, nothing to install: `cargo run --example demo`.
//!
//! A development authorization server, an MCP server (rmcp, streamable HTTP) protected by the
//! DPoP layer, and a client that finds its way like an MCP client: a request without a token,
//! the `resource_metadata` of the 401, the protected resource metadata, the authorization
//! server metadata, a token request with a DPoP proof, then MCP requests each with a fresh
//! proof, following the server's nonce challenges. Then an attacker who holds everything that
//! crossed the wire but the client's key tries replays, a stolen token, altered proofs.
//!
//! It prints one line per step and whether the outcome is the secure one, and exits with 1 if
//! any is not. `RUST_LOG=info` (or `debug`) shows the servers' logs. The code is in
//! `examples/support/`: `demo.rs` for the steps, `client.rs`, `mcp.rs`, `auth_server.rs`.

mod support;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> Result<ExitCode, support::Error> {
    support::init_tracing(None);
    let report = support::demo::run().await?;
    print!("{}", report.render());
    Ok(if report.all_secure() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
