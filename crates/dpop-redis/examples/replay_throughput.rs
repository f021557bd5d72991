//! Replay-check throughput and latency under concurrency: `InMemoryReplayStore` against
//! `RedisReplayStore` on loopback, over plain TCP, TLS and a Cluster, in one run.
//!
//! ```text
//! eval "$(scripts/redis-test-servers.sh start /tmp/dpop-redis-bench)"   # optional: TLS, Cluster
//! cargo run --release -p dpop-redis --example replay_throughput [seconds] [tasks]
//! scripts/redis-test-servers.sh stop /tmp/dpop-redis-bench
//! ```
//!
//! Each of `tasks` (default 64) concurrent tasks inserts fresh keys for `seconds` (default 5)
//! per store. Redis is `DPOP_REDIS_URL` (default `redis://127.0.0.1:6379`), measured with the
//! default per-key quota and without one. With `DPOP_REDIS_TLS_URL` (and `DPOP_REDIS_TLS_CA`,
//! a PEM file of the CA) a TLS server is measured too, with `DPOP_REDIS_CLUSTER_URLS`
//! (comma-separated) a Cluster; each is also given as a ratio to plain TCP. Records are
//! written under a run-specific prefix with a 10 s TTL, so they clean themselves up.

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpop_core::replay::{Insertion, ReplayKey};
use dpop_core::{Thumbprint, replay::InMemoryReplayStore, replay::ReplayStore};
use dpop_redis::RedisReplayStore;

/// Redis records: long enough to outlive the run, short enough to clean up after it.
const REDIS_TTL: Duration = Duration::from_secs(10);
/// In-memory records: expiry is in whole seconds; short so the run stays within capacity.
const MEMORY_TTL: Duration = Duration::from_secs(1);
/// Room for a few seconds of in-memory inserts (a few hundred MB at most).
const MEMORY_CAPACITY: usize = 30_000_000;

struct Report {
    ops: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

async fn run<S: ReplayStore + Clone>(
    store: S,
    ttl: Duration,
    tasks: usize,
    duration: Duration,
    run_id: u64,
) -> Result<Report, Box<dyn Error>> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut handles = Vec::with_capacity(tasks);
    for task in 0..tasks {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let client = Thumbprint::from_bytes([u8::try_from(task % 256).unwrap_or(0); 32]);
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            let mut n = 0u64;
            while Instant::now() < deadline {
                let key = ReplayKey::new(&client, &format!("{run_id}-{task}-{n}"));
                n += 1;
                let begin = Instant::now();
                match store.insert_if_absent(key, ttl).await {
                    Ok(Insertion::Inserted) => latencies.push(begin.elapsed()),
                    Ok(Insertion::AlreadyPresent) | Err(_) => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for handle in handles {
        let (mut task_latencies, task_errors) = handle.await?;
        latencies.append(&mut task_latencies);
        errors += task_errors;
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    Ok(Report { ops: latencies.len(), errors, elapsed, latencies })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest rank.
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1).min(sorted.len() - 1)).copied().unwrap_or_default()
}

fn print(name: &str, report: &Report) {
    let secs = report.elapsed.as_secs_f64();
    println!(
        "{name:<28} {ops:>10} ops in {secs:.2} s = {rate:>10.0} ops/s   p50 {p50:>9.1?}  p99 {p99:>9.1?}  max {max:>9.1?}  errors {errors}",
        ops = report.ops,
        rate = report.ops as f64 / secs,
        p50 = percentile(&report.latencies, 50.0),
        p99 = percentile(&report.latencies, 99.0),
        max = report.latencies.last().copied().unwrap_or_default(),
        errors = report.errors,
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().map_or(Ok(5.0), |s| s.parse())?;
    let tasks: usize = args.next().map_or(Ok(64), |s| s.parse())?;
    let duration = Duration::from_secs_f64(seconds.clamp(0.1, 60.0));
    let tasks = tasks.clamp(1, 4096);
    let url = std::env::var("DPOP_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let run_id = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as u64;
    println!(
        "{tasks} tasks, {duration:?} per store, {} worker threads",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // One store for all tasks; no capacity or per-key quota in the way of the measurement.
    let memory = Arc::new(InMemoryReplayStore::builder().capacity(MEMORY_CAPACITY).per_key_quota(usize::MAX).build()?);
    print("InMemoryReplayStore", &run(memory, MEMORY_TTL, tasks, duration, run_id).await?);

    let prefix = format!("dpop-bench:{run_id}:");
    let redis = RedisReplayStore::builder().prefix(prefix.clone()).connect(&url).await?;
    if let Err(error) = redis.ping().await {
        println!("RedisReplayStore: skipped, {error}");
        return Ok(());
    }
    let plain = run(redis, REDIS_TTL, tasks, duration, run_id).await?;
    print("Redis TCP (1 conn)", &plain);
    let plain_rate = rate(&plain);

    let no_quota = RedisReplayStore::builder().prefix(prefix.clone()).per_key_quota(None).connect(&url).await?;
    let report = run(no_quota, REDIS_TTL, tasks, duration, run_id.wrapping_add(1)).await?;
    print("Redis TCP, no quota", &report);
    println!("{:<28} {:.2} × TCP with quota", "", rate(&report) / plain_rate);

    if let Ok(tls_url) = std::env::var("DPOP_REDIS_TLS_URL") {
        let mut builder = RedisReplayStore::builder().prefix(prefix.clone());
        if let Ok(ca) = std::env::var("DPOP_REDIS_TLS_CA") {
            builder = builder.tls_root_certificate_pem(std::fs::read(ca)?);
        }
        let tls = builder.connect(&tls_url).await?;
        tls.ping().await?;
        let report = run(tls, REDIS_TTL, tasks, duration, run_id).await?;
        print("Redis TLS (1 conn)", &report);
        println!("{:<28} {:.2} × TCP", "", rate(&report) / plain_rate);
    }
    if let Ok(urls) = std::env::var("DPOP_REDIS_CLUSTER_URLS") {
        let cluster = RedisReplayStore::builder().prefix(prefix).connect_cluster(urls.split(',')).await?;
        cluster.ping().await?;
        let report = run(cluster, REDIS_TTL, tasks, duration, run_id).await?;
        print("Redis Cluster (3 masters)", &report);
        println!("{:<28} {:.2} × TCP", "", rate(&report) / plain_rate);
    }
    Ok(())
}

fn rate(report: &Report) -> f64 {
    report.ops as f64 / report.elapsed.as_secs_f64()
}
