//! dpop-guard's examples (`examples/`: the end-to-end demo, an MCP server, an actix-web server)
//! and its cross-framework HTTP tests (`tests/`), in a package of their own so that the facade
//! `dpop-guard` builds and tests only what it needs. Nothing here is published; the library
//! target is empty.
//!
//! ```text
//! cargo run --example demo
//! cargo run --example mcp_server -- --help
//! cargo test -p dpop-examples
//! ```

#![forbid(unsafe_code)]
