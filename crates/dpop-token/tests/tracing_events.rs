//! Every rejection emits a tracing event with its reason, never the token. Alone in its test
//! binary: tracing caches per-callsite interest process-wide, so a test running in parallel
//! without a subscriber could hide the events from this one.
// Test code: a failed unwrap or index is a failed test (as clippy.toml allows in #[test]s).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use common::{AsKey, KID, NOW, claims};
use dpop_core::{DpopKey, TokenValidator};
use serde_json::json;

/// A tracing subscriber that keeps every event's fields as text.
struct Capture(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

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
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn every_rejection_is_traced_without_the_token() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let _guard = tracing::subscriber::set_default(Capture(Arc::clone(&events)));
    let as_key = AsKey::new(KID);
    let validator = common::validator_trusting(&as_key);
    let good = claims(&DpopKey::generate().unwrap().thumbprint().to_string());
    let with = |name: &str, value: serde_json::Value| {
        let mut claims = good.clone();
        claims[name] = value;
        as_key.token(&claims)
    };
    let tokens = [
        with("iss", json!("https://evil.example.com")),
        with("exp", json!(NOW - 3600)),
        as_key.sign(&json!({"alg": "ES256", "typ": "at+jwt", "kid": "nope"}), &good),
        AsKey::new(KID).token(&good),
        "not-a-jwt".to_owned(),
    ];
    for token in &tokens {
        assert!(validator.validate(token).await.is_err());
    }
    let events = events.lock().unwrap();
    assert_eq!(events.len(), tokens.len(), "{events:?}");
    for (event, expected) in events.iter().zip([
        "wrong issuer",
        "token expired",
        "unknown signing key",
        "invalid signature",
        "malformed token",
    ]) {
        assert!(event.contains(&format!("reason=\"{expected}\"")), "{event}");
    }
    for token in &tokens {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!events.iter().any(|event| event.contains(signature)), "token leaked");
    }
}
