//! An MCP client for DPoP-protected MCP servers, on rmcp and dpop-guard's client library:
//!
//! ```sh
//! cargo run --example mcp_client -- --help
//! cargo run --example mcp_client -- http://127.0.0.1:8080/mcp --key key.jwk
//! ```
//!
//! It discovers the authorization server from the server's 401 (RFC 9728, RFC 8414), registers
//! (RFC 7591) unless `--client-id` is given, gets a DPoP-bound token with the authorization code
//! grant (PKCE, `dpop_jkt`) — following the redirect itself when the authorization server
//! approves at once, else printing the URL to open and taking the code on a loopback listener —
//! then lists the server's tools, calls them and prints what they answered. Every request carries
//! a fresh DPoP proof; nonces are followed by the library. The code is in
//! `examples/support/mcp_client.rs`.

mod support;

use std::process::ExitCode;

use clap::Parser as _;
use support::mcp_client::{Args, run};

#[tokio::main]
async fn main() -> ExitCode {
    // Usage errors exit with 2 (clap).
    let args = Args::parse();
    support::init_tracing(Some("warn"));
    let outcome = match run(&args, |text| eprintln!("{text}")).await {
        Ok(outcome) => outcome,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let approval = if outcome.approved_by_person { "approved in the browser" } else { "approved at once" };
    println!("authorized by {} ({approval}); DPoP key jkt {}", outcome.issuer, outcome.jkt);
    println!("tools:");
    for (name, description) in &outcome.tools {
        println!("  {name}: {description}");
    }
    for (name, result) in &outcome.calls {
        println!("{name} answered: {result}");
    }
    ExitCode::SUCCESS
}
