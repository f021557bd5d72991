//! `SessionBindingLayer` with rmcp over real HTTP: a session is usable only by the key and
//! subject that opened it. Every refusal is checked with the tool-run counter: the MCP service
//! never saw the request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use std::time::Duration;

use dpop_mcp::{
    Binding, InMemorySessionStore, SessionBindingLayer, SessionFuture, SessionKey, SessionOwner, SessionStore,
    SessionStoreError,
};
use serde_json::json;
use support::{Client, Server, Setup, start};

async fn start_bound() -> Server {
    start(Setup { sessions: Some(SessionBindingLayer::in_memory()), ..Setup::default() }).await
}

/// The layer's 404: the same for a foreign session as for an unknown one.
fn assert_session_not_found(reply: &support::Reply) {
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert_eq!(reply.body, r#"{"error":"session_not_found","error_description":"No such MCP session"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_session_id_with_another_valid_token_is_refused_and_the_owner_keeps_working() {
    let server = start_bound().await;
    let owner = Client::new("alice", &["tools:write"]);
    let thief = Client::new("mallory", &["tools:write"]);
    let session = owner.open_session(&server.url).await;
    assert_eq!(owner.call(&server.url, Some(&session), "whoami").await.status, 200);
    assert_eq!(server.runs.tools(), 1);

    // The thief's own token and proofs are valid: the DPoP layer lets it through, the session
    // layer does not.
    assert_session_not_found(&thief.call(&server.url, Some(&session), "whoami").await);
    assert_session_not_found(&thief.call(&server.url, Some(&session), "write").await);
    assert_session_not_found(&thief.send("GET", &server.url, Some(&session), None).await);
    assert_eq!(server.runs.tools(), 1, "a tool ran for the thief");

    let reply = owner.call(&server.url, Some(&session), "whoami").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.tool_text().contains(&owner.jkt()));
    assert_eq!(server.runs.tools(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_with_another_subject_is_refused() {
    let server = start_bound().await;
    let owner = Client::new("alice", &[]);
    let session = owner.open_session(&server.url).await;
    let other_subject = Client::same_key_as(&owner, "bob");

    assert_session_not_found(&other_subject.call(&server.url, Some(&session), "whoami").await);
    assert_eq!(server.runs.tools(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_by_another_caller_is_refused_and_by_the_owner_ends_the_session() {
    let server = start_bound().await;
    let owner = Client::new("alice", &[]);
    let thief = Client::new("mallory", &[]);
    let session = owner.open_session(&server.url).await;

    assert_session_not_found(&thief.send("DELETE", &server.url, Some(&session), None).await);
    // Not ended: the owner still uses it.
    assert_eq!(owner.call(&server.url, Some(&session), "whoami").await.status, 200);

    let ended = owner.send("DELETE", &server.url, Some(&session), None).await;
    assert!((200..300).contains(&ended.status), "{} {}", ended.status, ended.body);
    // The binding is gone with the session: the layer answers, as for any unknown session.
    assert_session_not_found(&owner.call(&server.url, Some(&session), "whoami").await);
    assert_eq!(server.runs.tools(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_id_never_bound_is_refused_before_rmcp() {
    let server = start_bound().await;
    let client = Client::new("alice", &[]);
    assert_session_not_found(&client.call(&server.url, Some("made-up-session"), "whoami").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_opened_without_the_layer_are_not_restricted() {
    // The control: without the layer, rmcp serves a stolen session to anyone authenticated.
    let server = start(Setup::default()).await;
    let owner = Client::new("alice", &[]);
    let thief = Client::new("mallory", &[]);
    let session = owner.open_session(&server.url).await;
    let reply = thief.call(&server.url, Some(&session), "whoami").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.tool_text().contains(&thief.jkt()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_session_ids_are_a_bad_request() {
    let server = start_bound().await;
    let owner = Client::new("alice", &[]);
    let session = owner.open_session(&server.url).await;
    let url = &server.url;
    let proof = owner.key.proof("POST", url).access_token(&owner.token).sign().unwrap();
    let call =
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "whoami", "arguments": {} } });
    let response = reqwest::Client::new()
        .post(url)
        .header("authorization", format!("DPoP {}", owner.token))
        .header("dpop", proof)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-session-id", &session)
        .header("mcp-session-id", "another")
        .body(call.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(server.runs.tools(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_refuses_new_sessions_and_keeps_the_live_one() {
    let store = InMemorySessionStore::new(1, Duration::from_secs(600));
    let server = start(Setup { sessions: Some(SessionBindingLayer::new(store)), ..Setup::default() }).await;
    let first = Client::new("alice", &[]);
    let session = first.open_session(&server.url).await;

    let second = Client::new("bob", &[]);
    let refused = second.send("POST", &server.url, None, Some(&support::initialize())).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.session(), None, "the client learnt a session id that is not bound");

    assert_eq!(first.call(&server.url, Some(&session), "whoami").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_over_its_session_quota_gets_429_and_others_still_open_sessions() {
    let store = InMemorySessionStore::new(10, Duration::from_secs(600)).with_per_owner_quota(1);
    let server = start(Setup { sessions: Some(SessionBindingLayer::new(store)), ..Setup::default() }).await;
    let alice = Client::new("alice", &[]);
    let session = alice.open_session(&server.url).await;

    let refused = alice.send("POST", &server.url, None, Some(&support::initialize())).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.body.contains(r#""error":"too_many_sessions""#), "{}", refused.body);
    assert_eq!(refused.session(), None, "the client learnt a session id that is not bound");

    let bob = Client::new("bob", &[]);
    let other = bob.open_session(&server.url).await;
    assert_eq!(bob.call(&server.url, Some(&other), "whoami").await.status, 200);
    assert_eq!(alice.call(&server.url, Some(&session), "whoami").await.status, 200);
}

/// A store that cannot answer.
struct BrokenStore;

impl SessionStore for BrokenStore {
    fn bind<'a>(&'a self, _: SessionKey, _: &'a SessionOwner) -> SessionFuture<'a, Binding> {
        Box::pin(async { Err(SessionStoreError::Unavailable("connection refused".into())) })
    }

    fn owner(&self, _: SessionKey) -> SessionFuture<'_, Option<SessionOwner>> {
        Box::pin(async { Err(SessionStoreError::Unavailable("connection refused".into())) })
    }

    fn unbind(&self, _: SessionKey) -> SessionFuture<'_, ()> {
        Box::pin(async { Err(SessionStoreError::Unavailable("connection refused".into())) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_answer_refuses_with_503() {
    let server = start(Setup { sessions: Some(SessionBindingLayer::new(BrokenStore)), ..Setup::default() }).await;
    let client = Client::new("alice", &[]);

    let opened = client.send("POST", &server.url, None, Some(&support::initialize())).await;
    assert_eq!(opened.status, 503, "{}", opened.body);
    assert_eq!(opened.session(), None);

    let reply = client.call(&server.url, Some("any-session"), "whoami").await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(server.runs.tools(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_dpop_layer_in_front_nothing_passes() {
    let server =
        start(Setup { sessions: Some(SessionBindingLayer::in_memory()), without_dpop: true, ..Setup::default() }).await;
    let client = Client::new("alice", &[]);
    let reply = client.send("POST", &server.url, None, Some(&support::initialize())).await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(reply.session(), None);
}
