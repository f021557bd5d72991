//! How fast proofs are refused while Redis is unreachable, and how long the store takes to
//! recover once it is back.
//!
//! ```text
//! cargo run --release -p dpop-redis --example outage_latency [seconds] [tasks]
//! ```
//!
//! The store talks to Redis (`DPOP_REDIS_URL`, default `redis://127.0.0.1:6379`) through a
//! TCP proxy in this process. Two outages are simulated in turn: Redis *down* (connections
//! are closed and new ones refused) and Redis *blackholed* (connections stay open, nothing
//! gets through, as in a network partition). For each: `tasks` (default 64) tasks insert fresh
//! keys for `seconds` (default 3) while the proxy blocks Redis; the latency of every refusal
//! is recorded, including those that waited for the timeout before the circuit opened. Then
//! the proxy forwards again, and the time until the first proof is accepted is reported.

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dpop_core::replay::{Insertion, ReplayKey};
use dpop_core::{Thumbprint, replay::ReplayStore};
use dpop_redis::RedisReplayStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const FORWARD: u8 = 0;
const DOWN: u8 = 1;
const BLACKHOLE: u8 = 2;
const TTL: Duration = Duration::from_secs(10);

/// A proxy whose mode applies to new and open connections alike.
struct Proxy {
    mode: Arc<AtomicU8>,
    /// Bumped to end every open connection.
    epoch: Arc<AtomicU64>,
    url: String,
}

impl Proxy {
    async fn start(upstream: String) -> Result<Self, Box<dyn Error>> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("redis://{}", listener.local_addr()?);
        let mode = Arc::new(AtomicU8::new(FORWARD));
        let epoch = Arc::new(AtomicU64::new(0));
        let (accept_mode, accept_epoch) = (mode.clone(), epoch.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (mode, epoch, upstream) = (accept_mode.clone(), accept_epoch.clone(), upstream.clone());
                tokio::spawn(async move {
                    let _ = connection(client, upstream, mode, epoch).await;
                });
            }
        });
        Ok(Self { mode, epoch, url })
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }
}

async fn connection(
    mut client: TcpStream,
    upstream: String,
    mode: Arc<AtomicU8>,
    epoch: Arc<AtomicU64>,
) -> std::io::Result<()> {
    let born = epoch.load(Ordering::SeqCst);
    match mode.load(Ordering::SeqCst) {
        DOWN => return Ok(()),
        BLACKHOLE => {
            // Hold it, silently, until the mode changes.
            while epoch.load(Ordering::SeqCst) == born {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            return Ok(());
        }
        _ => {}
    }
    let mut server = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (mut client_rx, mut client_tx) = client.split();
    let (mut server_rx, mut server_tx) = server.split();
    let mut up = [0u8; 16 * 1024];
    let mut down = [0u8; 16 * 1024];
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    loop {
        if epoch.load(Ordering::SeqCst) != born {
            if mode.load(Ordering::SeqCst) == BLACKHOLE {
                // Silent: read and drop, answer nothing.
                loop {
                    if client_rx.read(&mut up).await? == 0 {
                        return Ok(());
                    }
                }
            }
            return Ok(());
        }
        tokio::select! {
            n = client_rx.read(&mut up) => {
                let n = n?;
                if n == 0 { return Ok(()); }
                server_tx.write_all(up.get(..n).unwrap_or_default()).await?;
            }
            n = server_rx.read(&mut down) => {
                let n = n?;
                if n == 0 { return Ok(()); }
                client_tx.write_all(down.get(..n).unwrap_or_default()).await?;
            }
            _ = tick.tick() => {}
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1).min(sorted.len() - 1)).copied().unwrap_or_default()
}

async fn outage(
    store: &RedisReplayStore,
    proxy: &Proxy,
    name: &str,
    mode: u8,
    tasks: usize,
    duration: Duration,
    run: u64,
) -> Result<(), Box<dyn Error>> {
    proxy.set(mode);
    let deadline = Instant::now() + duration;
    let mut handles = Vec::new();
    for task in 0..tasks {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let client = Thumbprint::from_bytes([u8::try_from(task % 256).unwrap_or(0); 32]);
            let (mut latencies, mut accepted) = (Vec::new(), 0usize);
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let key = ReplayKey::new(&client, &format!("{run}-{task}-{n}"));
                let begin = Instant::now();
                match store.insert_if_absent(key, TTL).await {
                    Err(_) => latencies.push(begin.elapsed()),
                    Ok(_) => accepted += 1,
                }
                // A client does not retry in a tight loop; nor does this.
                tokio::task::yield_now().await;
            }
            (latencies, accepted)
        }));
    }
    let (mut latencies, mut accepted) = (Vec::new(), 0);
    for handle in handles {
        let (mut task_latencies, task_accepted) = handle.await?;
        latencies.append(&mut task_latencies);
        accepted += task_accepted;
    }
    latencies.sort_unstable();
    println!(
        "{name:<11} {refusals:>9} refusals  p50 {p50:>9.1?}  p99 {p99:>9.1?}  p99.9 {p999:>9.1?}  max {max:>9.1?}  accepted {accepted}",
        refusals = latencies.len(),
        p50 = percentile(&latencies, 50.0),
        p99 = percentile(&latencies, 99.0),
        p999 = percentile(&latencies, 99.9),
        max = latencies.last().copied().unwrap_or_default(),
    );

    proxy.set(FORWARD);
    let back = Instant::now();
    let client = Thumbprint::from_bytes([255; 32]);
    for attempt in 0u64.. {
        let key = ReplayKey::new(&client, &format!("{run}-recovery-{attempt}"));
        if let Ok(Insertion::Inserted) = store.insert_if_absent(key, TTL).await {
            println!(
                "{:<11} recovered {:.3} s after Redis came back ({attempt} refused attempts)",
                "",
                back.elapsed().as_secs_f64()
            );
            break;
        }
        if back.elapsed() > Duration::from_secs(30) {
            println!("{:<11} no recovery within 30 s", "");
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().map_or(Ok(3.0), |s| s.parse())?;
    let tasks: usize = args.next().map_or(Ok(64), |s| s.parse())?;
    let duration = Duration::from_secs_f64(seconds.clamp(0.5, 60.0));
    let tasks = tasks.clamp(1, 4096);
    let url = std::env::var("DPOP_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let upstream = url.trim_start_matches("redis://").trim_end_matches('/').to_owned();
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as u64;

    let proxy = Proxy::start(upstream).await?;
    let store = RedisReplayStore::builder().prefix(format!("dpop-outage:{run}:")).connect(&proxy.url).await?;
    store.ping().await?;
    println!("{tasks} tasks, {duration:?} per outage, store timeout {:?}", store.timeout());
    outage(&store, &proxy, "down", DOWN, tasks, duration, run).await?;
    outage(&store, &proxy, "blackholed", BLACKHOLE, tasks, duration, run.wrapping_add(1)).await?;
    Ok(())
}
