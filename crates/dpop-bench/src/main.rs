//! `dpop-bench`: the load benchmark of dpop-guard.
//!
//! ```text
//! dpop-bench run [options]             every server in turn, one table (what scripts/bench.sh runs)
//! dpop-bench serve KIND [options]      one server (started by `run`; exits when stdin closes)
//! dpop-bench guard-loop [options]      DpopGuard::authorize in a loop, in process (for profilers)
//! dpop-bench criterion-ratio DIR A B   medians of two criterion benchmarks and their ratio
//! ```
//!
//! `run` options:
//!
//! ```text
//! --servers LIST        comma-separated: hello,bare,axum,actix,axum-redis,axum-redis-tls,
//!                       axum-redis-cluster (default: all)
//! --duration SECS       measured time per server, split over the rounds (default 10)
//! --warmup SECS         load before measuring, per server and round (default 0.5)
//! --rounds N            servers take turns N times, so background noise hits all alike (default 4)
//! --connections N       keep-alive connections, one request in flight each (default 32)
//! --requests N          a fixed number of requests instead of a window (profiling)
//! --server-workers N    server runtime workers (default 1)
//! --server-cpus LIST    taskset CPU list of the servers (default 1)
//! --client-cpus LIST    taskset CPU list of the load generator (default 0)
//! --no-pin              do not pin (also automatic without taskset or with one CPU)
//! --redis-port PORT     Redis on 127.0.0.1 for axum-redis (default 6379; skipped if absent)
//! --redis-tls-url URL   rediss:// URL of a TLS Redis on loopback for axum-redis-tls (skipped
//!                       without it)
//! --redis-ca FILE       PEM CA of the rediss:// servers (default: the system's roots)
//! --redis-cluster-urls LIST
//!                       comma-separated redis:// (or rediss://) URLs of Cluster nodes on
//!                       loopback for axum-redis-cluster (skipped without them)
//! --server-prefix CMD   run servers under CMD (e.g. "perf record -o perf.data --")
//! ```
//!
//! A Redis-backed server is skipped, with the reason in its row, when its Redis is not given,
//! does not answer, or refuses the store (an evicting `maxmemory-policy`, a wrong CA).
//! `scripts/redis-test-servers.sh` starts throw-away TLS and Cluster servers.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dpop_bench::fixture::{self, Fixture};
use dpop_bench::loadgen::{self, LoadReport, LoadSpec, Pool};
use dpop_bench::servers::{self, RedisNodes, RedisTarget, RedisTransport, ServerKind, ServerOptions};
use dpop_bench::{BoxError, authorize};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => Options::parse(args.get(1..).unwrap_or_default()).and_then(|options| run(&options)),
        Some("serve") => serve(args.get(1..).unwrap_or_default()),
        Some("guard-loop") => guard_loop(args.get(1..).unwrap_or_default()),
        Some("criterion-ratio") => criterion_ratio(args.get(1..).unwrap_or_default()),
        _ => Err("usage: dpop-bench run|serve|guard-loop|criterion-ratio [options] (see the crate docs)".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dpop-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `run`'s options.
struct Options {
    servers: Vec<ServerKind>,
    duration: Duration,
    warmup: Duration,
    connections: usize,
    requests: Option<u64>,
    rounds: usize,
    server_workers: usize,
    server_cpus: String,
    client_cpus: String,
    pin: bool,
    redis_port: u16,
    redis_tls_url: Option<String>,
    redis_ca: Option<PathBuf>,
    redis_cluster: Option<RedisNodes>,
    server_prefix: Vec<String>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, BoxError> {
        let mut options = Self {
            servers: ServerKind::ALL.to_vec(),
            duration: Duration::from_secs(10),
            warmup: Duration::from_millis(500),
            connections: 32,
            requests: None,
            rounds: 4,
            server_workers: 1,
            server_cpus: "1".to_owned(),
            client_cpus: "0".to_owned(),
            pin: true,
            redis_port: 6379,
            redis_tls_url: None,
            redis_ca: None,
            redis_cluster: None,
            server_prefix: Vec::new(),
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| BoxError::from(format!("{flag} needs a value")));
            match flag.as_str() {
                "--servers" => {
                    options.servers = value()?
                        .split(',')
                        .map(|name| ServerKind::from_name(name.trim()).ok_or(format!("unknown server {name}")))
                        .collect::<Result<_, _>>()?;
                }
                "--duration" => options.duration = Duration::from_secs_f64(value()?.parse()?),
                "--warmup" => options.warmup = Duration::from_secs_f64(value()?.parse()?),
                "--connections" => options.connections = value()?.parse::<usize>()?.clamp(1, 4096),
                "--requests" => options.requests = Some(value()?.parse()?),
                "--rounds" => options.rounds = value()?.parse::<usize>()?.clamp(1, 100),
                "--server-workers" => options.server_workers = value()?.parse::<usize>()?.clamp(1, 256),
                "--server-cpus" => options.server_cpus.clone_from(value()?),
                "--client-cpus" => options.client_cpus.clone_from(value()?),
                "--no-pin" => options.pin = false,
                "--redis-port" => options.redis_port = value()?.parse()?,
                "--redis-tls-url" => {
                    let url = value()?;
                    if !url.starts_with("rediss://") {
                        return Err(format!("--redis-tls-url needs a rediss:// URL, not {url}").into());
                    }
                    options.redis_tls_url = Some(url.clone());
                }
                "--redis-ca" => options.redis_ca = Some(PathBuf::from(value()?)),
                "--redis-cluster-urls" => options.redis_cluster = Some(RedisNodes::cluster_from_list(value()?)?),
                "--server-prefix" => {
                    options.server_prefix = value()?.split_whitespace().map(str::to_owned).collect();
                }
                other => return Err(format!("unknown option {other}").into()),
            }
        }
        if options.duration > Duration::from_secs(600) || options.warmup > Duration::from_secs(600) {
            return Err("duration and warm-up are limited to 600 s each".into());
        }
        Ok(options)
    }

    /// Where a server of `transport` connects, or why it cannot run.
    fn redis_target(&self, transport: RedisTransport, prefix: &str) -> Result<RedisTarget, String> {
        let nodes = match transport {
            RedisTransport::Tcp => RedisNodes::Single(format!("redis://127.0.0.1:{}", self.redis_port)),
            RedisTransport::Tls => RedisNodes::Single(self.redis_tls_url.clone().ok_or("no --redis-tls-url given")?),
            RedisTransport::Cluster => self.redis_cluster.clone().ok_or("no --redis-cluster-urls given")?,
        };
        // The store refuses a CA for plain redis:// nodes (a plain Cluster, say).
        let tls = match &nodes {
            RedisNodes::Single(url) => url.starts_with("rediss://"),
            RedisNodes::Cluster(urls) => urls.iter().all(|url| url.starts_with("rediss://")),
        };
        Ok(RedisTarget { nodes, ca_file: if tls { self.redis_ca.clone() } else { None }, prefix: prefix.to_owned() })
    }
}

/// One line of the report.
struct Row {
    kind: ServerKind,
    outcome: Result<LoadReport, String>,
}

fn run(options: &Options) -> Result<(), BoxError> {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let pin = options.pin && cpus > 1 && taskset_works();
    let rounds = if options.requests.is_some() { 1 } else { options.rounds };
    let per_round = options.duration / u32::try_from(rounds)?;
    let load_time = (options.warmup + per_round) * u32::try_from(rounds * options.servers.len())?;
    if options.requests.is_none() && load_time > Duration::from_secs(240) {
        return Err("the proofs, signed first, would age past the verifier's 300 s iat window: shorten the run".into());
    }
    let fixture = Fixture::generate()?;
    let (jwks, client_jwk) = (fixture.jwks_json(), fixture.client_public_jwk());
    let verify_secs = calibrate_verify(&fixture)?;
    let floor = options.server_workers as f64 / verify_secs;

    println!("machine      {} ({cpus} CPUs), crypto backend {}", cpu_model(), dpop_core::crypto_backend());
    println!(
        "load         {} keep-alive connections; per server {} round(s) of {} s warm-up + {} s measured, \
         servers interleaved{}",
        options.connections,
        rounds,
        options.warmup.as_secs_f64(),
        per_round.as_secs_f64(),
        options.requests.map(|n| format!(" (fixed {n} requests)")).unwrap_or_default()
    );
    println!(
        "placement    servers: separate processes, {} runtime worker(s){}; load generator: one current-thread runtime{}",
        options.server_workers,
        if pin { format!(" on CPU {}", options.server_cpus) } else { ", unpinned".to_owned() },
        if pin { format!(" on CPU {}", options.client_cpus) } else { ", unpinned".to_owned() },
    );
    println!(
        "calibration  bare ES256 verify {:.1} µs in this process → at most {:.0} req/s for {} worker(s)",
        verify_secs * 1e6,
        floor,
        options.server_workers
    );

    // Start every server (idle ones wait in epoll and cost nothing), then sign the proofs.
    let exe = std::env::current_exe()?;
    let run_id = format!("{}-{}", std::process::id(), std::time::UNIX_EPOCH.elapsed()?.as_millis());
    let mut rows: Vec<Row> = Vec::new();
    let mut running: Vec<(ServerKind, Server)> = Vec::new();
    for &kind in &options.servers {
        let redis = match kind.redis_transport().map(|transport| redis_ready(options, transport, &run_id)) {
            None => None,
            Some(Ok(target)) => Some(target),
            Some(Err(why)) => {
                let why = format!("skipped: {why}");
                println!("{:<30} {why}", kind.label());
                rows.push(Row { kind, outcome: Err(why) });
                continue;
            }
        };
        let server_options = ServerOptions {
            workers: options.server_workers,
            jwks: jwks.clone(),
            client_jwk: client_jwk.clone(),
            redis,
        };
        let cpus = pin.then_some(options.server_cpus.as_str());
        match Server::spawn(&exe, kind, cpus, options, &server_options) {
            Ok(server) => running.push((kind, server)),
            Err(error) => rows.push(Row { kind, outcome: Err(error.to_string()) }),
        }
    }
    let mut pools = Vec::with_capacity(running.len());
    for (kind, server) in &running {
        pools.push(round_pools(*kind, server.port, options, &fixture, floor, rounds)?);
    }

    // Round-robin: every server sees the same background noise, not one server a quiet minute.
    let mut results: Vec<Option<Result<LoadReport, String>>> = running.iter().map(|_| None).collect();
    for round in 0..rounds {
        for (index, (kind, server)) in running.iter().enumerate() {
            let Some(pool) = pools.get_mut(index).and_then(|p| p.get_mut(round)).and_then(Option::take) else {
                continue;
            };
            if matches!(results.get(index), Some(Some(Err(_)))) {
                continue;
            }
            if pin {
                set_affinity(&options.client_cpus);
            }
            let spec = LoadSpec {
                port: server.port,
                connections: options.connections,
                warmup: options.warmup,
                duration: if options.requests.is_some() { Duration::from_secs(600) } else { per_round },
                requests: options.requests,
            };
            let cpu_before = process_cpu(server.child.id());
            let mut outcome = loadgen::run(&spec, pool).map_err(|e| e.to_string());
            if let (Ok(report), Some(before), Some(after)) = (&mut outcome, cpu_before, process_cpu(server.child.id()))
            {
                report.server_cpu = Some(after.saturating_sub(before));
            }
            if let Ok(report) = &outcome {
                if report.exhausted {
                    eprintln!("[{kind}] round {round}: the proof pool ran out early: the window was shortened");
                }
                if let Some(error) = &report.first_error {
                    eprintln!("[{kind}] round {round}: {} errors, first: {error}", report.errors);
                }
            }
            if let Some(slot) = results.get_mut(index) {
                *slot = Some(match (slot.take(), outcome) {
                    (None, outcome) => outcome,
                    (Some(Ok(total)), Ok(report)) => merge(total, report),
                    (Some(Err(error)), _) | (_, Err(error)) => Err(error),
                });
            }
        }
    }
    let mut kinds = Vec::with_capacity(running.len());
    for (kind, mut server) in running {
        server.stop();
        kinds.push(kind);
    }
    for (kind, outcome) in kinds.into_iter().zip(results) {
        let outcome = outcome.unwrap_or_else(|| Err("not run".to_owned()));
        if let Ok(report) = &outcome {
            println!(
                "{:<30} {:>9.0} req/s  p50 {:>8.1} µs  p99 {:>8.1} µs  p999 {:>8.1} µs  errors {}",
                kind.label(),
                report.requests_per_second(),
                report.latency_us(0.50),
                report.latency_us(0.99),
                report.latency_us(0.999),
                report.errors,
            );
        }
        rows.push(Row { kind, outcome });
    }
    rows.sort_by_key(|row| ServerKind::ALL.iter().position(|k| *k == row.kind));
    print_table(&rows);
    if rows.iter().any(|row| row.outcome.as_ref().is_ok_and(|r| r.errors > 0)) {
        return Err("some requests failed: see above".into());
    }
    Ok(())
}

/// CPU time used so far by every thread of process `pid` (Linux `/proc/PID/task/*/schedstat`).
/// Under a `--server-prefix` wrapper this is the wrapper's, not the server's.
fn process_cpu(pid: u32) -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// Adds a round's measurements to the total.
fn merge(mut total: LoadReport, round: LoadReport) -> Result<LoadReport, String> {
    total.histogram.add(&round.histogram).map_err(|e| e.to_string())?;
    total.requests += round.requests;
    total.errors += round.errors;
    total.window += round.window;
    total.sent += round.sent;
    total.exhausted |= round.exhausted;
    total.first_error = total.first_error.or(round.first_error);
    total.run_time += round.run_time;
    total.server_cpu = total.server_cpu.zip(round.server_cpu).map(|(a, b)| a + b);
    Ok(total)
}

/// One proof pool per round for `kind`. No server can beat one signature verification per
/// request per worker: sign that many (with a margin for a pessimistic calibration), each proof
/// used once. The hello server ignores proofs and recycles a small pool.
fn round_pools(
    kind: ServerKind,
    port: u16,
    options: &Options,
    fixture: &Fixture,
    floor: f64,
    rounds: usize,
) -> Result<Vec<Option<Arc<Pool>>>, BoxError> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let per_round = (options.warmup + options.duration / u32::try_from(rounds)?).as_secs_f64();
    let size = match (kind.verifies(), options.requests) {
        (true, Some(n)) => usize::try_from(n)?.saturating_add(options.connections),
        (true, None) => (floor * 1.5 * per_round) as usize + options.connections,
        (false, _) => 10_000,
    };
    // About 0.7 KB per pre-built proof: keep the pools of one server under ~2 GB.
    if size.saturating_mul(rounds) > 3_000_000 {
        return Err(format!("{kind}: {} proofs would be needed: shorten the run", size.saturating_mul(rounds)).into());
    }
    if options.pin {
        set_affinity(&format!("0-{}", threads.saturating_sub(1)));
    }
    let signing = Instant::now();
    let mut pools = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let proofs = fixture.proofs(size, threads)?;
        pools.push(Some(Arc::new(Pool::new(proofs, &fixture.access_token, port, !kind.verifies())?)));
    }
    eprintln!("[{kind}] {rounds} × {size} proofs signed in {:.1} s (not measured)", signing.elapsed().as_secs_f64());
    Ok(pools)
}

/// A server child process.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
}

impl Server {
    fn spawn(
        exe: &Path,
        kind: ServerKind,
        cpus: Option<&str>,
        options: &Options,
        server: &ServerOptions,
    ) -> Result<Self, BoxError> {
        let mut argv: Vec<String> = Vec::new();
        if let Some(cpus) = cpus {
            argv.extend(["taskset".to_owned(), "-c".to_owned(), cpus.to_owned()]);
        }
        argv.extend(options.server_prefix.iter().cloned());
        argv.push(exe.to_string_lossy().into_owned());
        argv.extend([
            "serve".to_owned(),
            kind.name().to_owned(),
            "--workers".to_owned(),
            server.workers.to_string(),
            "--jwks".to_owned(),
            server.jwks.clone(),
            "--client-jwk".to_owned(),
            server.client_jwk.clone(),
        ]);
        argv.extend(server.redis.iter().flat_map(RedisTarget::to_args));
        let (program, rest) = argv.split_first().ok_or("empty command")?;
        let mut child = Command::new(program)
            .args(rest)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no server stdout")?;
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut first = String::new();
            let _ = lines.read_line(&mut first);
            let _ = sender.send(first);
            // Keep draining so the server never blocks on a full pipe.
            let _ = std::io::copy(&mut lines, &mut std::io::sink());
        });
        // Generous: a server under valgrind takes seconds to start.
        let line = match receiver.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("server {kind} did not start").into());
            }
        };
        let Some(port) = line.trim().strip_prefix("LISTENING ").and_then(|p| p.parse().ok()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("server {kind} failed to start (said {:?})", line.trim()).into());
        };
        Ok(Self { child, stdin, port })
    }

    /// Closes the server's stdin (it exits by itself, letting wrappers such as perf or
    /// valgrind write their output), then kills it if it is still there after 60 s.
    fn stop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn print_table(rows: &[Row]) {
    let ok = |kind| rows.iter().find(|r| r.kind == kind).and_then(|r| r.outcome.as_ref().ok());
    let floor = ok(ServerKind::Bare);
    println!();
    println!(
        "| {:<30} | {:>9} | {:>9} | {:>9} | {:>9} | {:>11} | {:>9} | {:>7} | {:>10} | {:>6} |",
        "server", "req/s", "p50 µs", "p99 µs", "p999 µs", "req/s ÷ (b)", "p99 ÷ (b)", "srv CPU", "CPU µs/req", "errors"
    );
    println!(
        "|{:-<32}|{:->11}|{:->11}|{:->11}|{:->11}|{:->13}|{:->11}|{:->9}|{:->12}|{:->8}|",
        "", "", "", "", "", "", "", "", "", ""
    );
    for row in rows {
        match &row.outcome {
            Ok(report) => {
                let rps = report.requests_per_second();
                let p99 = report.latency_us(0.99);
                let (rps_ratio, p99_ratio) = floor.map_or((String::from("-"), String::from("-")), |b| {
                    (format!("{:.3}", rps / b.requests_per_second()), format!("{:.3}", p99 / b.latency_us(0.99)))
                });
                let (share, per_request) =
                    report.server_cpu_use().map_or((String::from("-"), String::from("-")), |(s, r)| {
                        (format!("{:.0}%", s * 100.0), format!("{:.1}", r.as_secs_f64() * 1e6))
                    });
                println!(
                    "| {:<30} | {:>9.0} | {:>9.1} | {:>9.1} | {:>9.1} | {:>11} | {:>9} | {:>7} | {:>10} | {:>6} |",
                    row.kind.label(),
                    rps,
                    report.latency_us(0.5),
                    p99,
                    report.latency_us(0.999),
                    rps_ratio,
                    p99_ratio,
                    share,
                    per_request,
                    report.errors
                );
            }
            Err(why) => println!("| {:<30} | {why} |", row.kind.label()),
        }
    }
    println!();
    let memory = ok(ServerKind::Axum);
    if let Some(b) = floor {
        let verdict = |pass: bool| if pass { "PASS" } else { "MISS" };
        for kind in [ServerKind::Axum, ServerKind::Actix] {
            if let Some(r) = ok(kind) {
                let ratio = r.requests_per_second() / b.requests_per_second();
                println!("target {:<30} req/s ≥ 0.90 × (b): {ratio:.3}  {}", kind.label(), verdict(ratio >= 0.90));
            }
        }
        if let Some(c) = memory {
            let ratio = c.latency_us(0.99) / b.latency_us(0.99);
            let label = ServerKind::Axum.label();
            println!("target {label:<30} p99 ≤ 1.5 × (b):    {ratio:.3}  {}", verdict(ratio <= 1.5));
        }
    } else {
        println!("targets: need (b) to compare");
    }
    // Each Redis store against (c) in memory, measured in the same interleaved rounds.
    let Some(c) = memory else {
        return;
    };
    for row in rows {
        let name = match row.kind.redis_transport() {
            None => continue,
            Some(RedisTransport::Tcp) => "(c)+Redis",
            Some(RedisTransport::Tls) => "(c)+Redis TLS",
            Some(RedisTransport::Cluster) => "(c)+Redis Cluster",
        };
        match &row.outcome {
            Ok(redis) => println!(
                "{name} ÷ (c): req/s {:.3}, p99 {:.3}",
                redis.requests_per_second() / c.requests_per_second(),
                redis.latency_us(0.99) / c.latency_us(0.99)
            ),
            Err(why) => println!("{name} ÷ (c): - ({why})"),
        }
    }
}

/// The time of one bare ES256 verification here, best of a few batches.
fn calibrate_verify(fixture: &Fixture) -> Result<f64, BoxError> {
    let proofs = fixture.proofs(300, 1)?;
    let key = fixture::public_key(&fixture.client)?;
    let split = fixture::split_signatures(&proofs)?;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        for (input, signature) in &split {
            key.verify(dpop_core::Algorithm::ES256, input.as_bytes(), signature)?;
        }
        best = best.min(start.elapsed().as_secs_f64() / split.len() as f64);
    }
    Ok(best)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

fn taskset_works() -> bool {
    Command::new("taskset")
        .args(["-p", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Pins every thread of this process to `cpus` (best effort).
fn set_affinity(cpus: &str) {
    let pinned = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !pinned {
        eprintln!("warning: could not pin the load generator to CPU {cpus}");
    }
}

/// The Redis target of a server of `transport`, once a store connected to it as the server's
/// will: a Redis that is not given, absent or refused is a skipped row with the reason, not a
/// server that fails to start.
fn redis_ready(options: &Options, transport: RedisTransport, run_id: &str) -> Result<RedisTarget, String> {
    let target = options.redis_target(transport, &format!("dpop-bench:{run_id}:"))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    // Dropping the runtime ends the store's background tasks.
    runtime.block_on(async {
        match tokio::time::timeout(Duration::from_secs(10), target.connect()).await {
            Ok(Ok(_store)) => Ok(()),
            Ok(Err(error)) => Err(format!("Redis at {}: {error}", target.describe())),
            Err(_elapsed) => Err(format!("Redis at {}: no answer within 10 s", target.describe())),
        }
    })?;
    Ok(target)
}

fn serve(args: &[String]) -> Result<(), BoxError> {
    let (kind, rest) = args.split_first().ok_or("serve KIND [options]")?;
    let kind = ServerKind::from_name(kind).ok_or_else(|| format!("unknown server {kind}"))?;
    let mut options = ServerOptions { workers: 1, jwks: String::new(), client_jwk: String::new(), redis: None };
    let (mut redis_nodes, mut redis_ca, mut redis_prefix) = (None, None, "dpop-bench:".to_owned());
    let mut rest = rest.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--workers" => options.workers = value.parse::<usize>()?.clamp(1, 256),
            "--jwks" => options.jwks.clone_from(value),
            "--client-jwk" => options.client_jwk.clone_from(value),
            "--redis-url" if redis_nodes.is_none() => redis_nodes = Some(RedisNodes::Single(value.clone())),
            "--redis-cluster-urls" if redis_nodes.is_none() => {
                redis_nodes = Some(RedisNodes::cluster_from_list(value)?);
            }
            "--redis-url" | "--redis-cluster-urls" => return Err("one Redis per server".into()),
            "--redis-ca" => redis_ca = Some(PathBuf::from(value)),
            "--redis-prefix" => redis_prefix.clone_from(value),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    options.redis = redis_nodes.map(|nodes| RedisTarget { nodes, ca_file: redis_ca, prefix: redis_prefix });
    servers::serve(kind, &options)
}

/// `guard-loop [--iterations N] [--bare]`: N requests through `DpopGuard::authorize` (or the
/// bare signature check) in process, over N distinct proofs signed first. For callgrind (with
/// `--toggle-collect=*measured_op*`) and dhat (run twice with different N: the difference is
/// the per-request cost, setup excluded).
fn guard_loop(args: &[String]) -> Result<(), BoxError> {
    let mut iterations = 2_000usize;
    let mut pool = 4_000usize;
    let mut bare = false;
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--iterations" => iterations = args.next().ok_or("--iterations needs a value")?.parse()?,
            "--pool" => pool = args.next().ok_or("--pool needs a value")?.parse()?,
            "--bare" => bare = true,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if iterations > pool {
        return Err("--iterations must not exceed --pool (each proof is used once)".into());
    }
    let fixture = Fixture::generate()?;
    // The pool size does not depend on N, so that setup costs cancel out between two runs.
    let proofs = fixture.proofs(pool + 1, 1)?;
    let (warm, proofs) = proofs.split_first().ok_or("no proofs")?;
    let guard = servers::guard(&fixture.jwks_json(), servers::memory_store())?;
    let authorization = format!("DPoP {}", fixture.access_token);
    let key = fixture::public_key(&fixture.client)?;
    // The token validation result is cached from here on.
    authorize(&guard, warm.as_bytes(), authorization.as_bytes())?;
    let mut histogram = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let start = Instant::now();
    for proof in proofs.iter().take(iterations) {
        let began = Instant::now();
        measured_op(&guard, &key, proof.as_bytes(), authorization.as_bytes(), bare)?;
        histogram.saturating_record(u64::try_from(began.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    let elapsed = start.elapsed();
    let us = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{} × {}: {:.2} µs per request; p50 {:.1} µs, p99 {:.1} µs, p999 {:.1} µs, max {:.1} µs",
        iterations,
        if bare { "bare ES256 verify" } else { "DpopGuard::authorize (memory store, cached JWT)" },
        elapsed.as_secs_f64() * 1e6 / iterations.max(1) as f64,
        us(0.5),
        us(0.99),
        us(0.999),
        histogram.max() as f64 / 1000.0
    );
    Ok(())
}

#[inline(never)]
fn measured_op(
    guard: &dpop_core::DpopGuard,
    key: &dpop_core::PublicKey,
    proof: &[u8],
    authorization: &[u8],
    bare: bool,
) -> Result<(), BoxError> {
    if bare { fixture::verify_bare(key, proof) } else { authorize(guard, proof, authorization).map(drop) }
}

/// `criterion-ratio DIR A B`: the medians of benchmarks A and B (e.g. `verify/full`) from
/// criterion's `DIR/<id>/new/estimates.json`, and A ÷ B.
fn criterion_ratio(args: &[String]) -> Result<(), BoxError> {
    let [dir, a, b] = args else {
        return Err("criterion-ratio DIR BENCH_A BENCH_B".into());
    };
    let median = |id: &str| -> Result<f64, BoxError> {
        let path = Path::new(dir).join(id).join("new").join("estimates.json");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let estimates: serde_json::Value = serde_json::from_str(&text)?;
        estimates
            .pointer("/median/point_estimate")
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| format!("{}: no median", path.display()).into())
    };
    let (ma, mb) = (median(a)?, median(b)?);
    println!("{a:<28} median {:>9.2} µs", ma / 1000.0);
    println!("{b:<28} median {:>9.2} µs", mb / 1000.0);
    println!("{a} ÷ {b} = {:.3}", ma / mb);
    Ok(())
}
