//! `verify/full_with_jwt_cached` (the guard's whole `check` + `complete` through
//! `DpopGuard::authorize`: credentials, target URI, every proof check, the cached JWT
//! validation, the `cnf.jkt` binding and the in-memory replay insert) beside
//! `verify/signature_only` (the bare ES256 verification of the same proofs), in one run.
//!
//! Both walk the same pool of distinct proofs, signed before the clock starts. Report the ratio
//! full_with_jwt_cached / signature_only: the target is ≤ 1.15.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use dpop_bench::fixture::{self, Fixture};
use dpop_bench::{authorize, servers};
use dpop_core::{Algorithm, DpopGuard};

const POOL: usize = 20_000;

fn bench(c: &mut Criterion) {
    let fixture = Fixture::generate().unwrap();
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let proofs = fixture.proofs(POOL + 1, threads).unwrap();
    let (spare, proofs) = proofs.split_first().unwrap();
    let authorization = format!("DPoP {}", fixture.access_token);
    let jwks = fixture.jwks_json();

    // A guard with an empty replay store and the token already in the validator's cache.
    let fresh_guard = || -> DpopGuard {
        let guard = servers::guard(&jwks, servers::memory_store()).unwrap();
        authorize(&guard, spare.as_bytes(), authorization.as_bytes()).unwrap();
        guard
    };

    let mut group = c.benchmark_group("verify");
    group.bench_function("full_with_jwt_cached", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            let mut guard = fresh_guard();
            for i in 0..iters as usize {
                let index = i % POOL;
                if index == 0 && i > 0 {
                    // Every proof of the pool was used: start over with an empty replay store.
                    guard = fresh_guard();
                }
                let proof = proofs[index].as_bytes();
                let start = Instant::now();
                let authenticated = authorize(&guard, black_box(proof), black_box(authorization.as_bytes()));
                elapsed += start.elapsed();
                authenticated.unwrap();
            }
            elapsed
        });
    });

    let key = fixture::public_key(&fixture.client).unwrap();
    let split = fixture::split_signatures(proofs).unwrap();
    group.bench_function("signature_only", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters as usize {
                let (input, signature) = &split[i % POOL];
                key.verify(Algorithm::ES256, black_box(input.as_bytes()), black_box(signature)).unwrap();
            }
            start.elapsed()
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
