//! `Caller` in rmcp tools, over real HTTP: the tool reads the verified subject and key
//! thumbprint; a per-tool scope the token lacks is the JSON-RPC error the docs describe, with
//! the scope it is the tool's result.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use serde_json::Value;
use support::{Client, Setup, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_reads_the_callers_subject_and_key_thumbprint() {
    let server = start(Setup::default()).await;
    let client = Client::new("alice", &[]);
    let session = client.open_session(&server.url).await;

    for tool in ["whoami", "whoami_from_parts"] {
        let reply = client.call(&server.url, Some(&session), tool).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let caller: Value = serde_json::from_str(&reply.tool_text()).unwrap();
        assert_eq!(caller["subject"], "alice", "{tool}");
        assert_eq!(caller["jkt"], client.jkt().as_str(), "{tool}");
    }
    assert_eq!(server.runs.tools(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_the_token_lacks_is_the_insufficient_scope_error() {
    let server = start(Setup::default()).await;
    let client = Client::new("alice", &["tools:read"]);
    let session = client.open_session(&server.url).await;

    let reply = client.call(&server.url, Some(&session), "write").await;
    assert_eq!(reply.status, 200, "a JSON-RPC error travels in a 200: {}", reply.body);
    let message = reply.message();
    assert!(message.get("result").is_none(), "{message}");
    let error = &message["error"];
    assert_eq!(error["code"], -32600, "{message}");
    assert_eq!(error["code"], dpop_mcp::INSUFFICIENT_SCOPE_CODE.0);
    assert_eq!(error["message"], r#"insufficient_scope: this tool requires the scope "tools:write""#);
    assert_eq!(error["data"]["error"], "insufficient_scope");
    assert_eq!(error["data"]["scope"], "tools:write");
    assert_eq!(server.runs.writes(), 0, "the privileged part ran without the scope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_scope_the_tool_answers() {
    let server = start(Setup::default()).await;
    let client = Client::new("alice", &["tools:read", "tools:write"]);
    let session = client.open_session(&server.url).await;

    let reply = client.call(&server.url, Some(&session), "write").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.tool_text(), "written");
    assert_eq!(server.runs.writes(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_proof_only_layer_there_is_no_caller_and_the_tool_does_not_run() {
    let server = start(Setup { proof_only: true, ..Setup::default() }).await;
    let client = Client::new("alice", &["tools:write"]);
    let session = client.open_session(&server.url).await;

    let reply = client.call(&server.url, Some(&session), "whoami").await;
    let error = &reply.message()["error"];
    assert_eq!(error["code"], -32603, "{}", reply.body);
    assert_eq!(error["message"], "the request has no verified caller (server misconfiguration)");
    assert_eq!(server.runs.tools(), 0);
}
