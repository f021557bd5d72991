//! `replay_insert/{one_key,many_keys}/{1,2,4,8}`: inserts into one shared `InMemoryReplayStore`
//! with the default limits from 1, 2, 4 and 8 threads at once, in the steady state of a server
//! (entries expire while new ones arrive).
//!
//! `one_key`: every proof is signed by the same client key (an agent, a gateway: the load
//! benchmark's case); `many_keys`: every proof by another key. Criterion reports inserts per
//! second over all threads: compare each thread count with 1 thread of the same run. Beyond the
//! machine's core count the threads only share cores, so the ratio there shows contention
//! (it should stay flat, not fall), never speed.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dpop_core::replay::ReplayKey;
use dpop_core::{Thumbprint, clock::ManualClock, replay::InMemoryReplayStore, replay::ReplayStore};

/// Distinct proofs per thread; a thread cycles through them, moving the clock past their expiry
/// before reusing one, so the store's size stays bounded whatever the iteration count.
const PER_THREAD: usize = 50_000;
const TTL: Duration = Duration::from_secs(1);

fn keys(thread: usize, one_key: bool) -> Vec<ReplayKey> {
    (0..PER_THREAD)
        .map(|i| {
            let mut client = [0u8; 32];
            let id = if one_key { 0 } else { (thread * PER_THREAD + i) as u64 + 1 };
            client[..8].copy_from_slice(&id.to_le_bytes());
            // Validated, as behind a guard that validates tokens: the whole capacity is theirs.
            ReplayKey::new(&Thumbprint::from_bytes(client), &format!("{thread}-{i}")).with_validated_token()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("replay_insert");
    for (name, one_key) in [("one_key", true), ("many_keys", false)] {
        for threads in [1usize, 2, 4, 8] {
            let pools: Vec<Vec<ReplayKey>> = (0..threads).map(|t| keys(t, one_key)).collect();
            group.throughput(Throughput::Elements(threads as u64));
            group.bench_with_input(BenchmarkId::new(name, threads), &threads, |b, &threads| {
                b.iter_custom(|iters| {
                    let clock = ManualClock::at(1_000_000);
                    // The default limits, so the default number of shards: at most 8 × 50,000
                    // entries are live, far below the default quota and high-water mark.
                    let store = InMemoryReplayStore::builder().clock(clock.clone()).build().unwrap();
                    let barrier = Barrier::new(threads + 1);
                    std::thread::scope(|scope| {
                        for pool in &pools {
                            let (store, clock, barrier) = (&store, &clock, &barrier);
                            scope.spawn(move || {
                                barrier.wait();
                                for i in 0..iters as usize {
                                    let index = i % PER_THREAD;
                                    if index == 0 && i > 0 {
                                        clock.advance(2);
                                    }
                                    insert(store, pool[index]);
                                }
                            });
                        }
                        barrier.wait();
                        let start = Instant::now();
                        // Leaving the scope joins every thread: the time is the slowest one's.
                        start
                    })
                    .elapsed()
                });
            });
        }
    }
    group.finish();
}

/// One insert; the in-memory store answers on the first poll.
fn insert(store: &InMemoryReplayStore, key: ReplayKey) {
    let mut future = std::pin::pin!(store.insert_if_absent(key, TTL));
    let waker = std::task::Waker::noop();
    match future.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
        std::task::Poll::Ready(result) => {
            black_box(result.unwrap());
        }
        std::task::Poll::Pending => panic!("the in-memory replay store never waits"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
