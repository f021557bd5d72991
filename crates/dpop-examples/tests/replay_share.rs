//! Two guards sharing one replay store, over real HTTP on 127.0.0.1: fresh keys flooding a
//! proof-only endpoint fill only the proof-only records' share of the store, and a client whose
//! access token the other endpoint validates and finds bound to its key is still served.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use dpop_guard::replay::InMemoryReplayStore;
use dpop_guard::{DpopGuard, DpopKey, DpopVerifier};
use support::{Client, Framework, guard_builder, send};

/// The shared store's capacity: proof-only records may hold half of it.
const CAPACITY: usize = 20;

#[tokio::test]
async fn a_fresh_key_flood_through_a_proof_only_guard_leaves_validated_clients_served() {
    for framework in Framework::ALL {
        let store = InMemoryReplayStore::builder().capacity(CAPACITY).build().unwrap();
        let verifier = || DpopVerifier::builder().replay_store(store.clone()).build().unwrap();
        let proof_only = framework.start(DpopGuard::builder().proof_only().verifier(verifier()).build().unwrap()).await;
        let authenticated = framework.start(guard_builder().verifier(verifier()).build().unwrap()).await;

        // A new key for every request, with a token nobody validates, until the guard refuses.
        let mut served = 0;
        let refusal = loop {
            assert!(served <= CAPACITY, "{framework:?}: the proof-only guard never refused");
            let flooder =
                Client { base: proof_only.base(), key: DpopKey::generate().unwrap(), token: "never-issued".to_owned() };
            let response = send(proof_only.addr, &flooder.valid("POST", "/mcp")).await;
            if response.status != 200 {
                break response;
            }
            assert_eq!(response.body, format!("proof-only {}", flooder.key.thumbprint()), "{framework:?}");
            served += 1;
        };
        assert_eq!(refusal.status, 503, "{framework:?}: {refusal:?}");
        assert_eq!(refusal.all("retry-after"), ["1"], "{framework:?}: {refusal:?}");
        // Proof-only records filled their half of the store, not the store.
        assert_eq!(served, CAPACITY / 2, "{framework:?}");
        assert_eq!(store.len(), CAPACITY / 2, "{framework:?}");

        // A client of the guard that validates tokens: served, request after request.
        let client = Client::new(authenticated.base());
        for _ in 0..3 {
            let response = send(authenticated.addr, &client.valid("POST", "/mcp")).await;
            assert_eq!(response.status, 200, "{framework:?}: {response:?}");
            assert_eq!(response.body, format!("dpop {}", client.key.thumbprint()), "{framework:?}");
        }
        assert_eq!(authenticated.handler_runs(), 3, "{framework:?}");
    }
}
