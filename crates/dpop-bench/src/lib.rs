//! Benchmarks of dpop-guard on a real HTTP stack, against the floor DPoP cannot go below: one
//! ES256 signature verification per request.
//!
//! - [`fixture`]: the client key, the authorization server key, a real JWT access token bound
//!   to the client key (`cnf.jkt`), and pools of distinct proofs signed before any clock starts.
//! - [`servers`]: the servers compared (hello world, bare signature check, axum + `DpopLayer`,
//!   actix-web + `Dpop`, axum + `DpopLayer` with Redis over TCP, over TLS and on a Cluster),
//!   each run in its own process.
//! - [`loadgen`]: a closed-loop hyper load generator on keep-alive connections to 127.0.0.1,
//!   with hdrhistogram latencies.
//!
//! The `dpop-bench` binary ties them together; `scripts/bench.sh` runs everything.

#![forbid(unsafe_code)]

pub mod fixture;
pub mod loadgen;
pub mod servers;

/// The error type of the harness: any failure ends the run with a message.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One request through the guard in process, as an adapter would hand it over: `POST /mcp`
/// with `Authorization: DPoP <token>` and `DPoP: <proof>`, then `check` and `complete` (token
/// validation, binding, replay record).
///
/// # Errors
///
/// The guard rejected the request, or a store made it wait.
pub fn authorize(
    guard: &dpop_core::DpopGuard,
    proof: &[u8],
    authorization: &[u8],
) -> Result<dpop_core::Admission, BoxError> {
    use dpop_core::{RequestUri, headers::HeaderValues};
    let uri = RequestUri { scheme: None, authority: None, path: fixture::PATH };
    let headers = |name: &'static str| match name {
        "authorization" => [authorization].into_iter().collect(),
        "dpop" => [proof].into_iter().collect(),
        _ => HeaderValues::NONE,
    };
    poll_ready(guard.authorize(fixture::METHOD, &uri, headers))?
        .map_err(|rejection| format!("rejected: {:?}", rejection.error()).into())
}

/// A future that completes without waiting (the in-memory stores never wait), run without an
/// executor, so that none is measured.
///
/// # Errors
///
/// The future was not ready on its first poll.
pub fn poll_ready<F: Future>(future: F) -> Result<F::Output, BoxError> {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => Ok(output),
        Poll::Pending => Err("the future was expected to complete without waiting".into()),
    }
}
