//! `verify/full` (parse + every check + in-memory replay insert) beside
//! `verify/signature_only` (the bare ES256 verification of the same proofs), in one run.
//!
//! Both walk the same pool of distinct proofs, signed before the clock starts. Report the ratio
//! full / signature_only: the target is ≤ 1.10.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::hint::black_box;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use dpop_core::{Algorithm, DpopKey, DpopVerifier, EcCurve, ProofRequest, PublicKey, replay::InMemoryReplayStore};

const URL: &str = "https://mcp.example.com/mcp";
const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl";
const POOL: usize = 20_000;

fn bench(c: &mut Criterion) {
    let key = DpopKey::generate().unwrap();
    let proofs: Vec<String> = (0..POOL).map(|_| key.proof("POST", URL).access_token(TOKEN).sign().unwrap()).collect();
    let request = ProofRequest::new("POST", URL).access_token(TOKEN);

    let mut group = c.benchmark_group("verify");
    group.bench_function("full", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            let mut verifier = fresh_verifier();
            for i in 0..iters as usize {
                let index = i % POOL;
                if index == 0 && i > 0 {
                    // Every proof of the pool was used: start over with an empty replay store.
                    verifier = fresh_verifier();
                }
                let proof = proofs[index].as_bytes();
                let start = Instant::now();
                let verified = poll_ready(verifier.verify([proof], black_box(&request)));
                elapsed += start.elapsed();
                verified.unwrap();
            }
            elapsed
        });
    });

    let public_key = es256_public_key(&key);
    let split: Vec<(&str, Vec<u8>)> = proofs
        .iter()
        .map(|proof| {
            let (input, signature) = proof.rsplit_once('.').unwrap();
            (input, URL_SAFE_NO_PAD.decode(signature).unwrap())
        })
        .collect();
    group.bench_function("signature_only", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters as usize {
                let (input, signature) = &split[i % POOL];
                public_key.verify(Algorithm::ES256, black_box(input.as_bytes()), black_box(signature)).unwrap();
            }
            start.elapsed()
        });
    });
    group.finish();
}

/// A verifier with an empty store and no per-key quota: one key signs the whole pool.
fn fresh_verifier() -> DpopVerifier {
    let store = InMemoryReplayStore::builder().per_key_quota(usize::MAX).build().unwrap();
    DpopVerifier::builder().replay_store(store).build().unwrap()
}

/// Runs a future that completes without waiting (the in-memory store never waits), without the
/// cost of an executor in the measurement.
fn poll_ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the in-memory replay store never waits"),
    }
}

/// The key as the verifier sees it, built outside the timed loop.
fn es256_public_key(key: &DpopKey) -> PublicKey {
    let jwk = key.public_jwk();
    let coordinate = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
    let mut point = vec![0x04];
    point.extend(coordinate("x"));
    point.extend(coordinate("y"));
    PublicKey::Ec { curve: EcCurve::P256, point: point.into_boxed_slice() }
}

criterion_group!(benches, bench);
criterion_main!(benches);
