//! The layer beyond the case table: defaults, bounds, and concurrent replays over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use std::sync::Arc;

use dpop_guard::{AlgorithmSet, DpopGuard, DpopVerifier};
use support::{Client, Framework, RawRequest, TOKEN, send, test_validator};
use tokio::sync::Barrier;

const fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

#[test]
fn layers_services_and_guards_are_send_sync_clone() {
    assert_send_sync_clone::<DpopGuard>();
    assert_send_sync_clone::<DpopVerifier>();
    assert_send_sync_clone::<dpop_tower::DpopLayer>();
    assert_send_sync_clone::<dpop_axum::DpopLayer>();
    assert_send_sync_clone::<dpop_tower::DpopService<axum::Router>>();
    assert_send_sync_clone::<dpop_actix::Dpop>();
    assert_send_sync_clone::<dpop_axum::Authenticated>();
}

#[tokio::test]
async fn the_response_future_is_send() {
    use tower::{Service as _, ServiceExt};
    fn assert_send<T: Send>(_: &T) {}
    let mut service =
        tower::ServiceBuilder::new().layer(dpop_tower::DpopLayer::new(test_validator())).service(axum::Router::new());
    let ready = ServiceExt::<http::Request<axum::body::Body>>::ready(&mut service).await.unwrap();
    let future = ready.call(http::Request::new(axum::body::Body::empty()));
    assert_send(&future);
    assert_eq!(future.await.unwrap().status(), 401);
}

#[tokio::test]
async fn the_default_layer_is_es256_dpop_only_with_a_300_second_window() {
    let layer = dpop_axum::DpopLayer::new(test_validator());
    assert!(!layer.guard().is_proof_only());
    assert_eq!(layer.guard().algorithms(), AlgorithmSet::default());
    assert_eq!(layer.guard().algorithms().to_space_separated(), "ES256");
    assert!(!layer.guard().allows_bearer());
    assert_eq!(layer.guard().verifier().replay_ttl().as_secs(), 601);

    let server = Framework::Axum.start(layer.guard().clone()).await;
    let client = Client::new(server.base());
    let now =
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).unwrap();
    let url = client.url("/mcp");
    let at = |iat: i64| client.key.proof("GET", &url).access_token(&client.token).issued_at(iat).sign().unwrap();
    assert_eq!(send(server.addr, &client.with_proof("GET", "/mcp", &at(now - 290))).await.status, 200);
    assert_eq!(send(server.addr, &client.with_proof("GET", "/mcp", &at(now - 310))).await.status, 401);
    assert_eq!(send(server.addr, &client.with_proof("GET", "/mcp", &at(now + 290))).await.status, 200);
    assert_eq!(send(server.addr, &client.with_proof("GET", "/mcp", &at(now + 310))).await.status, 401);
    let bearer = RawRequest::new("GET", "/mcp").header("authorization", format!("Bearer {TOKEN}"));
    assert_eq!(send(server.addr, &bearer).await.status, 401);
}

async fn concurrent_replay(framework: Framework) {
    let server = Arc::new(framework.start(DpopGuard::new(test_validator())).await);
    let client = Client::new(server.base());
    let request = Arc::new(client.valid("POST", "/mcp"));
    let barrier = Arc::new(Barrier::new(32));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (server, request, barrier) = (Arc::clone(&server), Arc::clone(&request), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                send(server.addr, &request).await.status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 401), "{statuses:?}");
    assert_eq!(server.handler_runs(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_proof_from_32_concurrent_clients_passes_once_through_axum() {
    concurrent_replay(Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_proof_from_32_concurrent_clients_passes_once_through_actix() {
    concurrent_replay(Framework::Actix).await;
}
