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

/// Collects what the fmt subscriber writes, to read it back.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_inner_service_runs_in_a_span_that_names_the_key_and_subject_never_the_token() {
    use dpop_core::{DpopKey, TokenClaims, validator_fn};

    let key = DpopKey::generate().unwrap();
    let jkt = key.thumbprint().to_string();
    let bound_to = jkt.clone();
    let guard = DpopGuard::new(validator_fn(move |_| {
        let mut claims = TokenClaims::default();
        claims.subject = Some("alice".to_owned());
        claims.client_id = Some("agent-7".to_owned());
        claims.cnf_jkt = Some(bound_to.clone());
        Ok(claims)
    }));
    let inner = service_fn(|_: Request<String>| async {
        tracing::info!("handler ran");
        Ok::<_, Infallible>(Response::new("hello".to_owned()))
    });
    let token = "secret-access-token";
    let proof = key.proof("POST", "http://mcp.test/mcp").access_token(token).sign().unwrap();
    let request = Request::post("/mcp")
        .header("host", "mcp.test")
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof.as_str())
        .body(String::new())
        .unwrap();

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    let status = tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let mut service = DpopService::new(inner, guard);
            service.ready().await.unwrap().call(request).await.unwrap().status()
        })
    });
    assert_eq!(status, 200);
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = log.lines().find(|line| line.contains("handler ran")).expect("the handler's event was logged");
    assert!(line.contains(&format!("jkt=\"{jkt}\"")), "{line}");
    assert!(line.contains("sub=\"alice\"") && line.contains("client_id=\"agent-7\""), "{line}");
    assert!(!log.contains(token) && !log.contains(proof.as_str()), "the token or the proof was logged: {log}");
}
