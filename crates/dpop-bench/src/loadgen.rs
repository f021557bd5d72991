//! A closed-loop HTTP/1.1 load generator: `connections` keep-alive connections to
//! `127.0.0.1:port`, each sending its next request as soon as the previous response is read.
//!
//! Every request carries its own pre-signed DPoP proof (taken from a shared [`Pool`], each
//! used once) and the shared access token; header values are built before the clock starts,
//! so a request costs the generator only the assembly of a small header map. The generator
//! runs on a current-thread runtime on the calling thread: one core, never the server's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::header::{AUTHORIZATION, HOST};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;

use crate::BoxError;
use crate::fixture::PATH;

/// The longest a single request may take before the connection is given up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest latency recorded, in nanoseconds (longer ones are clamped).
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// How long and how hard to load.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// The server's port on 127.0.0.1.
    pub port: u16,
    /// Concurrent keep-alive connections (each with one request in flight).
    pub connections: usize,
    /// Load before measuring (not recorded).
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// A fixed number of requests instead of a time window (all measured, no warm-up); the
    /// duration is then only a time limit. For profiling runs.
    pub requests: Option<u64>,
}

/// The requests' header values, built before the run.
#[derive(Debug)]
pub struct Pool {
    proofs: Vec<HeaderValue>,
    authorization: HeaderValue,
    host: HeaderValue,
    recycle: bool,
    next: AtomicU64,
}

impl Pool {
    /// A pool of `proofs`, each used once, unless `recycle` (for a server that ignores them).
    ///
    /// # Errors
    ///
    /// A value that cannot be an HTTP header value.
    pub fn new(proofs: Vec<String>, access_token: &str, port: u16, recycle: bool) -> Result<Self, BoxError> {
        let proofs = proofs
            .into_iter()
            .map(|proof| HeaderValue::from_maybe_shared(Bytes::from(proof)))
            .collect::<Result<Vec<_>, _>>()?;
        if proofs.is_empty() {
            return Err("empty proof pool".into());
        }
        let authorization = HeaderValue::from_maybe_shared(Bytes::from(format!("DPoP {access_token}")))?;
        let host = HeaderValue::from_maybe_shared(Bytes::from(format!("127.0.0.1:{port}")))?;
        Ok(Self { proofs, authorization, host, recycle, next: AtomicU64::new(0) })
    }

    /// The number of proofs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.proofs.len()
    }

    /// Whether the pool has no proof (never: [`Pool::new`] refuses that).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.proofs.is_empty()
    }

    /// The next request, or `None` when every proof was used.
    fn next_request(&self) -> Option<Request<Empty<Bytes>>> {
        let index = usize::try_from(self.next.fetch_add(1, Ordering::Relaxed)).ok()?;
        let proof = if self.recycle { self.proofs.get(index % self.proofs.len()) } else { self.proofs.get(index) }?;
        let mut request = Request::new(Empty::new());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = Uri::from_static(PATH);
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        headers.insert(AUTHORIZATION, self.authorization.clone());
        headers.insert("dpop", proof.clone());
        Some(request)
    }
}

/// What a run measured.
#[derive(Debug)]
pub struct LoadReport {
    /// Successful responses completed inside the measured window.
    pub requests: u64,
    /// Non-2xx responses and transport failures (the whole run).
    pub errors: u64,
    /// The measured window (shorter than asked when the pool ran out).
    pub window: Duration,
    /// Latencies of the measured requests, in nanoseconds.
    pub histogram: Histogram<u64>,
    /// The proof pool ran out before the end.
    pub exhausted: bool,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// Requests sent in the whole run, warm-up included.
    pub sent: u64,
    /// The whole run, warm-up included.
    pub run_time: Duration,
    /// CPU time the server process used during the whole run, when the caller measured it.
    pub server_cpu: Option<Duration>,
}

impl LoadReport {
    /// Successful requests per second over the measured window.
    #[must_use]
    pub fn requests_per_second(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 { self.requests as f64 / secs } else { 0.0 }
    }

    /// The server's CPU use during the run: the share of one CPU, and CPU time per request.
    #[must_use]
    pub fn server_cpu_use(&self) -> Option<(f64, Duration)> {
        let cpu = self.server_cpu?;
        let share = cpu.as_secs_f64() / self.run_time.as_secs_f64().max(f64::MIN_POSITIVE);
        Some((share, cpu / u32::try_from(self.sent.max(1)).unwrap_or(u32::MAX)))
    }

    /// The latency at `quantile` (0..=1), in microseconds.
    #[must_use]
    pub fn latency_us(&self, quantile: f64) -> f64 {
        self.histogram.value_at_quantile(quantile) as f64 / 1000.0
    }
}

struct ConnectionResult {
    histogram: Histogram<u64>,
    measured: u64,
    errors: u64,
    sent: u64,
    last_done: Option<Instant>,
    exhausted: bool,
    error: Option<String>,
}

/// Runs the load on a current-thread runtime on this thread; returns when the window is over.
///
/// # Errors
///
/// The runtime could not start or no connection could be made.
pub fn run(spec: &LoadSpec, pool: Arc<Pool>) -> Result<LoadReport, BoxError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run_async(spec, pool))
}

async fn run_async(spec: &LoadSpec, pool: Arc<Pool>) -> Result<LoadReport, BoxError> {
    // Connect everything first: connection setup is not part of the load.
    let mut senders = Vec::with_capacity(spec.connections);
    for _ in 0..spec.connections.max(1) {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", spec.port)).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends with an error when the server closes the connection: nothing to report.
            let _ = connection.await;
        });
        senders.push(sender);
    }

    let start = Instant::now();
    let (measure_from, end) = match spec.requests {
        Some(_) => (start, start + spec.duration),
        None => (start + spec.warmup, start + spec.warmup + spec.duration),
    };
    let limit = spec.requests;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::with_capacity(senders.len());
    for sender in senders {
        let (pool, stop, histogram) = (Arc::clone(&pool), Arc::clone(&stop), new_histogram()?);
        tasks.push(tokio::spawn(connection_loop(sender, histogram, pool, stop, measure_from, end, limit)));
    }

    let mut histogram = new_histogram()?;
    let mut report = LoadReport {
        requests: 0,
        errors: 0,
        window: Duration::ZERO,
        histogram: new_histogram()?,
        exhausted: false,
        first_error: None,
        sent: 0,
        run_time: Duration::ZERO,
        server_cpu: None,
    };
    let mut last_done = measure_from;
    for task in tasks {
        let result = task.await?;
        histogram.add(&result.histogram)?;
        report.requests += result.measured;
        report.errors += result.errors;
        report.sent += result.sent;
        report.exhausted |= result.exhausted;
        if report.first_error.is_none() {
            report.first_error = result.error;
        }
        if let Some(done) = result.last_done {
            last_done = last_done.max(done);
        }
    }
    report.histogram = histogram;
    report.run_time = start.elapsed();
    report.window = if report.exhausted || limit.is_some() {
        last_done.saturating_duration_since(measure_from)
    } else {
        end.saturating_duration_since(measure_from)
    };
    Ok(report)
}

async fn connection_loop(
    mut sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    histogram: Histogram<u64>,
    pool: Arc<Pool>,
    stop: Arc<AtomicBool>,
    measure_from: Instant,
    end: Instant,
    limit: Option<u64>,
) -> ConnectionResult {
    let mut result =
        ConnectionResult { histogram, measured: 0, errors: 0, sent: 0, last_done: None, exhausted: false, error: None };
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        if limit.is_some_and(|limit| pool.next.load(Ordering::Relaxed) >= limit) {
            break;
        }
        let Some(request) = pool.next_request() else {
            result.exhausted = true;
            stop.store(true, Ordering::Relaxed);
            break;
        };
        result.sent += 1;
        let began = Instant::now();
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            // Read the whole body: the response is complete only then.
            response.into_body().collect().await?;
            Ok::<_, hyper::Error>(status)
        })
        .await;
        let done = Instant::now();
        match outcome {
            Ok(Ok(status)) if status.is_success() => {
                if began >= measure_from && done <= end {
                    let nanos = u64::try_from((done - began).as_nanos()).unwrap_or(MAX_LATENCY_NS);
                    result.histogram.saturating_record(nanos.min(MAX_LATENCY_NS));
                    result.measured += 1;
                    result.last_done = Some(done);
                }
            }
            Ok(Ok(status)) => {
                result.errors += 1;
                if result.error.is_none() {
                    result.error = Some(format!("HTTP {status}"));
                }
            }
            Ok(Err(error)) => {
                result.errors += 1;
                result.error.get_or_insert_with(|| format!("transport: {error}"));
                break;
            }
            Err(_) => {
                result.errors += 1;
                result.error.get_or_insert_with(|| "request timed out".to_owned());
                break;
            }
        }
    }
    result
}

fn new_histogram() -> Result<Histogram<u64>, BoxError> {
    Ok(Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)?)
}
