//! `DpopService` as a tower service: constructors and accessors as tower-http has them, and the
//! response future's contract.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use dpop_core::DpopGuard;
use dpop_tower::{DpopLayer, DpopService};
use http::{Request, Response};
use tower::{Layer as _, Service, ServiceExt as _, service_fn};

async fn hello(_: Request<String>) -> Result<Response<String>, Infallible> {
    Ok(Response::new("hello".to_owned()))
}

#[tokio::test]
async fn new_layer_and_accessors() {
    let guard = DpopGuard::proof_only();
    let mut service = DpopService::new(service_fn(hello), guard.clone());
    assert!(service.guard().is_proof_only());
    let _: &mut _ = service.get_mut();
    let _ = service.get_ref();

    // No credentials: the layer answers 401 itself.
    let response = service.ready().await.unwrap().call(Request::new(String::new())).await.unwrap();
    assert_eq!(response.status(), 401);

    let layered: DpopService<_> = DpopService::layer(guard).layer(service.into_inner());
    assert!(layered.guard().is_proof_only());
    let _: DpopLayer = DpopLayer::proof_only();
}

#[tokio::test]
#[should_panic(expected = "polled after completion")]
async fn polling_a_finished_response_future_is_a_bug_not_a_response() {
    let mut service = DpopService::new(service_fn(hello), DpopGuard::proof_only());
    let ready = service.ready().await.unwrap();
    let mut future = pin!(ready.call(Request::new(String::new())));
    let mut context = Context::from_waker(Waker::noop());
    let Poll::Ready(Ok(response)) = future.as_mut().poll(&mut context) else { panic!("a rejection is ready at once") };
    assert_eq!(response.status(), 401);
    let _ = future.as_mut().poll(&mut context);
}
