//! `RedisSessionStore` on the Redis at 127.0.0.1:6379: two MCP server instances share their
//! session bindings (and, through rmcp's own session store, their sessions), so a session
//! opened on one is refused to other callers on both and keeps working for its owner on both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dpop_mcp::{Binding, RedisSessionStore, SessionBindingLayer, SessionKey, SessionOwner, SessionStore};
use dpop_test_support::{REDIS_URL, redis_or_skip};
use redis::aio::MultiplexedConnection;
use rmcp::transport::streamable_http_server::session::store::{
    SessionState, SessionStore as RmcpSessionStore, SessionStoreError as RmcpStoreError,
};
use support::{Client, Setup, start};

async fn connection() -> MultiplexedConnection {
    redis::Client::open(REDIS_URL).unwrap().get_multiplexed_async_connection().await.unwrap()
}

/// A key prefix no other run uses.
fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("dpop-mcp-test:{test}:{}:{nanos}:", std::process::id())
}

/// rmcp's session state shared by the two instances, so the second can restore a session the
/// first opened (what a Redis-backed rmcp store does across replicas).
#[derive(Default)]
struct SharedRmcpSessions(Mutex<HashMap<String, SessionState>>);

#[async_trait::async_trait]
impl RmcpSessionStore for SharedRmcpSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, RmcpStoreError> {
        Ok(self.0.lock().unwrap().get(session_id).cloned())
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), RmcpStoreError> {
        self.0.lock().unwrap().insert(session_id.to_owned(), state.clone());
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), RmcpStoreError> {
        self.0.lock().unwrap().remove(session_id);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_bindings() {
    if !redis_or_skip("two_instances_share_the_bindings").await {
        return;
    }
    let prefix = unique_prefix("instances");
    let rmcp_sessions: Arc<SharedRmcpSessions> = Arc::default();
    let mut servers = Vec::new();
    for _ in 0..2 {
        let store = RedisSessionStore::new(connection().await).prefix(prefix.clone());
        let rmcp_store: Arc<dyn RmcpSessionStore> = rmcp_sessions.clone();
        servers.push(
            start(Setup {
                sessions: Some(SessionBindingLayer::new(store)),
                rmcp_store: Some(rmcp_store),
                ..Setup::default()
            })
            .await,
        );
    }
    let (a, b) = (&servers[0], &servers[1]);
    let owner = Client::new("alice", &[]);
    let thief = Client::new("mallory", &[]);
    let session = owner.open_session(&a.url).await;

    // Instance B knows the session (rmcp restores it) and who opened it (Redis).
    let reply = owner.call(&b.url, Some(&session), "whoami").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.tool_text().contains(&owner.jkt()));
    assert_eq!(b.runs.tools(), 1);

    for server in [a, b] {
        let refused = thief.call(&server.url, Some(&session), "whoami").await;
        assert_eq!(refused.status, 404, "{}", refused.body);
        assert!(refused.body.contains("session_not_found"), "{}", refused.body);
    }
    assert_eq!(a.runs.tools() + b.runs.tools(), 1, "a tool ran for the thief");

    // Ended on B: refused on A too, by the layer.
    let ended = owner.send("DELETE", &b.url, Some(&session), None).await;
    assert!((200..300).contains(&ended.status), "{} {}", ended.status, ended.body);
    let after = owner.call(&a.url, Some(&session), "whoami").await;
    assert_eq!(after.status, 404, "{}", after.body);
    assert!(after.body.contains("session_not_found"), "{}", after.body);
}

#[tokio::test]
async fn bind_is_set_nx_with_the_idle_timeout_and_owner_restarts_it() {
    if !redis_or_skip("bind_is_set_nx_with_the_idle_timeout_and_owner_restarts_it").await {
        return;
    }
    let prefix = unique_prefix("commands");
    let store =
        RedisSessionStore::new(connection().await).prefix(prefix.clone()).idle_timeout(Duration::from_secs(600));
    let session = SessionKey::of("session-1");
    let alice = SessionOwner::new(Some("alice-key"), Some("alice"));
    let mallory = SessionOwner::new(Some("mallory-key"), Some("mallory"));

    assert_eq!(store.bind(session, &alice).await.unwrap(), Binding::New);
    assert_eq!(store.bind(session, &mallory).await.unwrap(), Binding::AlreadyBound);
    assert_eq!(store.owner(session).await.unwrap(), Some(alice.clone()));

    let mut redis = connection().await;
    let key = store.redis_key(session);
    assert_eq!(key, format!("{prefix}{}", session.to_hex()));
    let stored: String = redis::cmd("GET").arg(&key).query_async(&mut redis).await.unwrap();
    assert_eq!(stored, alice.encode());
    assert!(!stored.contains("alice|") && !stored.ends_with("alice"), "the subject is stored in clear: {stored}");
    // The idle timeout is set, and a read sets it again.
    let _: () = redis::cmd("PEXPIRE").arg(&key).arg(1_000_000_000u64).query_async(&mut redis).await.unwrap();
    store.owner(session).await.unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut redis).await.unwrap();
    assert!((1..=600_000).contains(&ttl), "{ttl}");

    store.unbind(session).await.unwrap();
    assert_eq!(store.owner(session).await.unwrap(), None);
    assert_eq!(store.bind(session, &mallory).await.unwrap(), Binding::New);
    store.unbind(session).await.unwrap();
}

#[tokio::test]
async fn an_unreadable_binding_is_an_error_not_a_pass() {
    if !redis_or_skip("an_unreadable_binding_is_an_error_not_a_pass").await {
        return;
    }
    let store = RedisSessionStore::new(connection().await).prefix(unique_prefix("garbage"));
    let session = SessionKey::of("session-1");
    let mut redis = connection().await;
    let key = store.redis_key(session);
    let _: () =
        redis::cmd("SET").arg(&key).arg("not an owner").arg("PX").arg(60_000).query_async(&mut redis).await.unwrap();
    assert!(store.owner(session).await.is_err());
    let _: () = redis::cmd("DEL").arg(&key).query_async(&mut redis).await.unwrap();
}
