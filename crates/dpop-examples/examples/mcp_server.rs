//! An MCP server (rmcp, streamable HTTP) that requires DPoP-bound access tokens from your
//! authorization server, configured with flags or environment variables:
//!
//! ```sh
//! cargo run --example mcp_server -- --help
//! cargo run --example mcp_server -- --resource https://mcp.example.com/mcp \
//!     --issuer https://auth.example.com --jwks-url https://auth.example.com/jwks --nonce post
//! ```
//!
//! Exit code 2, with the reason, for a configuration that cannot work. The tools and the router
//! are in `examples/support/mcp.rs`, the options in `examples/support/mcp_server.rs`.

mod support;

use std::process::ExitCode;

use clap::Parser as _;
use support::mcp_server::{Args, build};

#[tokio::main]
async fn main() -> ExitCode {
    // Usage errors exit with 2 too (clap).
    let args = Args::parse();
    support::init_tracing(Some("info"));
    let router = match build(&args).await {
        Ok(router) => router,
        Err(error) => {
            eprintln!("error: {error}\n\nFor more information, try '--help'.");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().map_or_else(|_| args.listen.to_string(), |addr| addr.to_string());
    tracing::info!(listen = %local, endpoint = %args.resource, "MCP server listening");
    match axum::serve(listener, router).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
