//! Store failures are `tracing::error!` events that carry the reason; an unreachable server at
//! start-up is a warning. Alone in its test binary: it installs the global subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{NO_HANG, TTL, key};
use dpop_core::replay::ReplayStore;
use dpop_core::replay::ReplayStoreError;
use dpop_redis::RedisReplayStore;

/// Captures `tracing` events (level and fields) for the current thread.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(tracing::Level, String)>>>);

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={value:?} ", field.name()));
            }
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push((*event.metadata().level(), fields.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn reason(error: &ReplayStoreError) -> String {
    match error {
        ReplayStoreError::Unavailable(cause) => cause.to_string(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn failures_are_logged_with_the_reason() {
    let capture = Capture::default();
    let events = capture.0.clone();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // Global, not scoped: callsites cache their interest across threads.
    tracing::subscriber::set_global_default(capture).unwrap();

    // Down at start-up: a warning, then an error when the circuit opens, then each fast
    // refusal a debug event with its reason.
    let refused = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://127.0.0.1:{}", listener.local_addr().unwrap().port());
        drop(listener);
        let store = RedisReplayStore::builder().timeout(Duration::from_millis(200)).connect(&url).await.unwrap();
        tokio::time::timeout(NO_HANG, store.insert_if_absent(key("logged"), TTL)).await.unwrap().unwrap_err()
    });
    {
        let events = events.lock().unwrap();
        let refusal = reason(&refused);
        assert!(
            events.iter().any(|(level, fields)| *level == tracing::Level::DEBUG && fields.contains(&refusal)),
            "no event with reason {refusal:?} in {:?}",
            *events
        );
        assert!(
            events.iter().any(|(level, fields)| *level == tracing::Level::ERROR
                && fields.contains("circuit opened")
                && fields.contains("Connection refused")),
            "no error event for the circuit opening, with its cause, in {:?}",
            *events
        );
        assert!(
            events.iter().any(|(level, fields)| *level == tracing::Level::WARN && fields.contains("not reachable"))
        );
    }

    // An error reply from a live Redis: an error event with the reason.
    let failed = runtime.block_on(async {
        if !common::redis_or_skip("logging::failures_are_logged_with_the_reason").await {
            return None;
        }
        let prefix = common::unique_prefix("logging");
        let store = common::store(&prefix).await;
        // The counter key holds a string: the script's HMGET fails with WRONGTYPE.
        let proof = key("wrongtype");
        let _: () = redis::cmd("SET")
            .arg(store.quota_key(&proof, TTL))
            .arg("x")
            .arg("EX")
            .arg(60)
            .query_async(&mut common::direct().await)
            .await
            .unwrap();
        let error = store.insert_if_absent(proof, TTL).await.unwrap_err();
        common::cleanup(&prefix).await;
        Some(error)
    });
    if let Some(failed) = failed {
        let failure = reason(&failed);
        assert!(failure.contains("WRONGTYPE"), "{failure}");
        let events = events.lock().unwrap();
        assert!(
            events.iter().any(|(level, fields)| *level == tracing::Level::ERROR && fields.contains(&failure)),
            "no error event with reason {failure:?} in {:?}",
            *events
        );
    }
}
