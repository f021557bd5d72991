//! With the `metrics` feature, every decision of the guard increments
//! `dpop_guard_requests_total` once, labelled with the outcome and the RFC error code.
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use dpop_core::headers::HeaderValues;
use dpop_core::{DpopError, DpopGuard, DpopKey, RequestUri};
use metrics::{Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

/// Counts increments per rendered key (`name{label=value,…}`).
#[derive(Clone, Default)]
struct Counts(Arc<Mutex<BTreeMap<String, u64>>>);

struct CountOf(Counts, String);

impl CounterFn for CountOf {
    fn increment(&self, value: u64) {
        *self.0.0.lock().unwrap().entry(self.1.clone()).or_default() += value;
    }

    fn absolute(&self, value: u64) {
        self.0.0.lock().unwrap().insert(self.1.clone(), value);
    }
}

impl Recorder for Counts {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let labels: Vec<String> = key.labels().map(|label| format!("{}={}", label.key(), label.value())).collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        Counter::from_arc(Arc::new(CountOf(self.clone(), name)))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn every_decision_is_counted_once_with_its_outcome_and_code() {
    let counts = Counts::default();
    let guard = DpopGuard::proof_only();
    let uri = RequestUri { scheme: None, authority: None, path: "/mcp" };
    let key = DpopKey::generate().unwrap();
    let proof = key.proof("GET", "http://mcp.test/mcp").access_token("t").sign().unwrap();
    let headers = |name: &'static str| -> HeaderValues<'_> {
        match name {
            "authorization" => [&b"DPoP t"[..]].into_iter().collect(),
            "dpop" => [proof.as_bytes()].into_iter().collect(),
            "host" => [&b"mcp.test"[..]].into_iter().collect(),
            _ => HeaderValues::NONE,
        }
    };
    metrics::with_local_recorder(&counts, || {
        let _ = guard.challenge();
        let _ = guard.reject(DpopError::Replayed);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(guard.authorize("GET", &uri, headers)).unwrap();
    });
    let counts = counts.0.lock().unwrap().clone();
    let expected: BTreeMap<String, u64> = [
        ("dpop_guard_requests_total{outcome=admitted,code=proof_only}".to_owned(), 1),
        ("dpop_guard_requests_total{outcome=rejected,code=invalid_dpop_proof}".to_owned(), 1),
        ("dpop_guard_requests_total{outcome=rejected,code=unauthorized}".to_owned(), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts, expected);
}
