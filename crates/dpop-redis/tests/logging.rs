//! Store failures are `tracing::error!` events that carry the reason; an unreachable server at
//! start-up is a warning. Alone in its test binary: it installs the global subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{NO_HANG, TTL, key};
use dpop_core::ReplayStore;
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

#[test]
fn failures_are_logged_as_errors_with_the_reason() {
    let capture = Capture::default();
    let events = capture.0.clone();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // Global, not scoped: callsites cache their interest across threads.
    tracing::subscriber::set_global_default(capture).unwrap();
    let error = {
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("redis://127.0.0.1:{}", listener.local_addr().unwrap().port());
            drop(listener);
            let store = RedisReplayStore::builder().timeout(Duration::from_millis(200)).connect(&url).await.unwrap();
            tokio::time::timeout(NO_HANG, store.insert_if_absent(key("logged"), TTL)).await.unwrap().unwrap_err()
        })
    };
    let events = events.lock().unwrap();
    let errors: Vec<&String> =
        events.iter().filter(|(level, _)| *level == tracing::Level::ERROR).map(|(_, fields)| fields).collect();
    let reason = match &error {
        ReplayStoreError::Unavailable(cause) => cause.to_string(),
        other => panic!("{other:?}"),
    };
    assert!(
        errors.iter().any(|fields| fields.contains(&reason)),
        "no error event with reason {reason:?} in {errors:?} (all: {:?})",
        *events
    );
    // The start-up failure was a warning, not an error.
    assert!(events.iter().any(|(level, fields)| *level == tracing::Level::WARN && fields.contains("not reachable")));
}
