//! The servers under load. Each runs in its own process (`dpop-bench serve KIND`), on its own
//! runtime with a fixed worker count, so it never shares threads with the load generator.
//!
//! A server binds `127.0.0.1:0`, prints `LISTENING <port>` on stdout, and exits when its
//! standard input closes: the parent closes it to stop it, and a server never outlives a
//! parent that died.

use std::fmt;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::serve::ListenerExt as _;
use dpop_core::{DpopGuard, DpopVerifier, PublicKey, replay::InMemoryReplayStore, replay::ReplayStore};
use dpop_redis::RedisReplayStore;
use dpop_token::{CachedValidator, JwkSet, JwtValidator};

use crate::BoxError;
use crate::fixture::{ISSUER, PATH, RESOURCE, verify_bare};

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// (a) axum hello world, no authentication: the HTTP ceiling.
    Hello,
    /// (b) axum whose handler only verifies the proof's ES256 signature: the crypto floor.
    Bare,
    /// (c) axum + `DpopLayer`, in-memory replay store, cached JWT validation.
    Axum,
    /// (d) actix-web + `Dpop`, configured as (c).
    Actix,
    /// (c) with the Redis replay store, one server over plain TCP.
    AxumRedis,
    /// (c) with the Redis replay store, one server over TLS (`rediss://`).
    AxumRedisTls,
    /// (c) with the Redis replay store on a Redis Cluster.
    AxumRedisCluster,
}

impl ServerKind {
    /// Every server, in the order they run.
    pub const ALL: [Self; 7] =
        [Self::Hello, Self::Bare, Self::Axum, Self::Actix, Self::AxumRedis, Self::AxumRedisTls, Self::AxumRedisCluster];

    /// The short name used on the command line.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Hello => "hello",
            Self::Bare => "bare",
            Self::Axum => "axum",
            Self::Actix => "actix",
            Self::AxumRedis => "axum-redis",
            Self::AxumRedisTls => "axum-redis-tls",
            Self::AxumRedisCluster => "axum-redis-cluster",
        }
    }

    /// The row label of the report.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Hello => "(a) axum hello, no auth",
            Self::Bare => "(b) axum + bare ES256 verify",
            Self::Axum => "(c) axum + DpopLayer",
            Self::Actix => "(d) actix-web + Dpop",
            Self::AxumRedis => "(c) + RedisReplayStore",
            Self::AxumRedisTls => "(c) + RedisReplayStore TLS",
            Self::AxumRedisCluster => "(c) + RedisReplayStore Cluster",
        }
    }

    /// Parses a short name (or its letter).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "hello" | "a" => Some(Self::Hello),
            "bare" | "b" => Some(Self::Bare),
            "axum" | "c" => Some(Self::Axum),
            "actix" | "d" => Some(Self::Actix),
            "axum-redis" | "redis" => Some(Self::AxumRedis),
            "axum-redis-tls" | "redis-tls" => Some(Self::AxumRedisTls),
            "axum-redis-cluster" | "redis-cluster" => Some(Self::AxumRedisCluster),
            _ => None,
        }
    }

    /// Whether the server checks signatures, so that every request needs a proof of its own
    /// (the hello server ignores them and may see the same proof again).
    #[must_use]
    pub const fn verifies(self) -> bool {
        !matches!(self, Self::Hello)
    }

    /// How the server's replay store reaches Redis (`None`: it uses no Redis).
    #[must_use]
    pub const fn redis_transport(self) -> Option<RedisTransport> {
        match self {
            Self::AxumRedis => Some(RedisTransport::Tcp),
            Self::AxumRedisTls => Some(RedisTransport::Tls),
            Self::AxumRedisCluster => Some(RedisTransport::Cluster),
            Self::Hello | Self::Bare | Self::Axum | Self::Actix => None,
        }
    }
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a server needs besides its kind.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Runtime worker threads (axum: tokio workers; actix-web: workers).
    pub workers: usize,
    /// The authorization server's public JWK set.
    pub jwks: String,
    /// The client's public JWK, for the bare-verification server.
    pub client_jwk: String,
    /// Where the Redis-backed servers connect (the others ignore it).
    pub redis: Option<RedisTarget>,
}

/// How a Redis-backed server reaches Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisTransport {
    /// One server over plain TCP (`redis://`).
    Tcp,
    /// One server over TLS (`rediss://`).
    Tls,
    /// A Redis Cluster (its nodes over TCP or TLS).
    Cluster,
}

/// The Redis nodes a store connects to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisNodes {
    /// One server: `redis://host:port` or `rediss://host:port`.
    Single(String),
    /// Some nodes of a Cluster (the store discovers the others).
    Cluster(Vec<String>),
}

impl RedisNodes {
    /// The nodes of a comma-separated list of Cluster node URLs.
    ///
    /// # Errors
    ///
    /// A list without a URL.
    pub fn cluster_from_list(list: &str) -> Result<Self, BoxError> {
        let urls: Vec<String> =
            list.split(',').map(str::trim).filter(|url| !url.is_empty()).map(str::to_owned).collect();
        if urls.is_empty() {
            return Err("no Redis Cluster node URL in the list".into());
        }
        Ok(Self::Cluster(urls))
    }

    fn urls(&self) -> &[String] {
        match self {
            Self::Single(url) => std::slice::from_ref(url),
            Self::Cluster(urls) => urls,
        }
    }
}

/// Where the replay store of a Redis-backed server connects. The parent builds it per server
/// kind, checks it with [`RedisTarget::connect`] and hands it to the server process as flags
/// ([`RedisTarget::to_args`]), which connects the same way: one path for TCP, TLS and Cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisTarget {
    /// The server or Cluster nodes.
    pub nodes: RedisNodes,
    /// A PEM file of the CA that signed the servers' certificates (`rediss://` with a private
    /// CA); `None`: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The prefix of this run's keys.
    pub prefix: String,
}

impl RedisTarget {
    /// How this target is reached.
    #[must_use]
    pub fn transport(&self) -> RedisTransport {
        match &self.nodes {
            RedisNodes::Cluster(_) => RedisTransport::Cluster,
            RedisNodes::Single(url) if url.starts_with("rediss://") => RedisTransport::Tls,
            RedisNodes::Single(_) => RedisTransport::Tcp,
        }
    }

    /// The node URLs, comma-separated, for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        self.nodes.urls().join(",")
    }

    /// The flags of `dpop-bench serve` that pass this target on.
    #[must_use]
    pub fn to_args(&self) -> Vec<String> {
        let mut args = match &self.nodes {
            RedisNodes::Single(url) => vec!["--redis-url".to_owned(), url.clone()],
            RedisNodes::Cluster(urls) => vec!["--redis-cluster-urls".to_owned(), urls.join(",")],
        };
        if let Some(ca_file) = &self.ca_file {
            args.extend(["--redis-ca".to_owned(), ca_file.to_string_lossy().into_owned()]);
        }
        args.extend(["--redis-prefix".to_owned(), self.prefix.clone()]);
        args
    }

    /// A store with the default settings on this target, checked with a `PING`: the store
    /// itself starts with its circuit open when Redis is down, and a benchmark wants a live
    /// server. Needs a Tokio runtime.
    ///
    /// # Errors
    ///
    /// A node that is not on loopback, an unreadable CA file, a refused configuration (for
    /// example an evicting `maxmemory-policy`), or no answer.
    pub async fn connect(&self) -> Result<RedisReplayStore, BoxError> {
        // The run writes hundreds of thousands of keys: never into a shared, remote Redis.
        if let Some(url) = self.nodes.urls().iter().find(|url| !is_loopback_url(url)) {
            return Err(format!("node {url} is not on loopback, and the benchmark writes to loopback only").into());
        }
        let mut builder = RedisReplayStore::builder().prefix(self.prefix.clone());
        if let Some(ca_file) = &self.ca_file {
            let pem = std::fs::read(ca_file).map_err(|e| format!("CA file {}: {e}", ca_file.display()))?;
            builder = builder.tls_root_certificate_pem(pem);
        }
        let store = match &self.nodes {
            RedisNodes::Single(url) => builder.connect(url).await?,
            RedisNodes::Cluster(urls) => builder.connect_cluster(urls).await?,
        };
        store.ping().await?;
        Ok(store)
    }
}

/// Whether `url` (`scheme://[user[:password]@]host[:port][/db]`) names 127.0.0.1, ::1 or
/// localhost.
fn is_loopback_url(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split_once('/').map_or(rest, |(authority, _)| authority);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host_port)| host_port);
    let host = match host_port.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => host_port,
    };
    matches!(host, "127.0.0.1" | "[::1]" | "localhost")
}

/// The in-memory replay store of the benchmark, with the default limits: one client key signs
/// every proof at the full rate, and the default per-key quota must let it through (any
/// refusal is a non-2xx response, which fails the run).
#[must_use]
pub fn memory_store() -> InMemoryReplayStore {
    InMemoryReplayStore::new()
}

/// The guard of (c), (d) and (c)+Redis: default verifier checks on `store`, the resource's
/// origin as the public origin, and a JWT validator on a static JWK set behind a cache.
///
/// # Errors
///
/// An invalid JWK set or configuration.
pub fn guard(jwks: &str, store: impl ReplayStore) -> Result<DpopGuard, BoxError> {
    let verifier = DpopVerifier::builder().replay_store(store).build()?;
    let validator = JwtValidator::builder(ISSUER, RESOURCE).keys(JwkSet::from_json(jwks)?).build()?;
    Ok(DpopGuard::builder()
        .verifier(verifier)
        .resource(RESOURCE)
        .authorization_server(ISSUER)
        .token_validator(CachedValidator::new(validator))
        .build()?)
}

/// Runs the server until standard input closes.
///
/// # Errors
///
/// Configuration, bind or runtime failures.
pub fn serve(kind: ServerKind, options: &ServerOptions) -> Result<(), BoxError> {
    let workers = options.workers.max(1);
    if kind == ServerKind::Actix {
        return serve_actix(guard(&options.jwks, memory_store())?, workers);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()?;
    runtime.block_on(async {
        let router = match kind {
            ServerKind::Hello => Router::new().route(PATH, post(hello)),
            ServerKind::Bare => {
                let key = Arc::new(PublicKey::from_jwk(&options.client_jwk)?.0);
                Router::new().route(PATH, post(bare)).with_state(key)
            }
            ServerKind::Axum => {
                let guard = guard(&options.jwks, memory_store())?;
                Router::new().route(PATH, post(hello)).layer(dpop_axum::DpopLayer::with_guard(guard))
            }
            ServerKind::AxumRedis | ServerKind::AxumRedisTls | ServerKind::AxumRedisCluster => {
                let target = options.redis.as_ref().ok_or("no Redis given (--redis-url or --redis-cluster-urls)")?;
                if kind.redis_transport() != Some(target.transport()) {
                    return Err(format!("{kind} cannot use Redis at {}", target.describe()).into());
                }
                let guard = guard(&options.jwks, target.connect().await?)?;
                Router::new().route(PATH, post(hello)).layer(dpop_axum::DpopLayer::with_guard(guard))
            }
            ServerKind::Actix => return Err(BoxError::from("actix-web runs on its own runtime")),
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        announce(listener.local_addr()?.port())?;
        let listener = listener.tap_io(|stream| {
            // Best effort: a request/response ping-pong wants no Nagle delay.
            let _ = stream.set_nodelay(true);
        });
        axum::serve(listener, router).await?;
        Ok(())
    })
}

fn serve_actix(guard: DpopGuard, workers: usize) -> Result<(), BoxError> {
    use actix_web::{App, HttpServer, web};
    let system = actix_web::rt::System::new();
    system.block_on(async move {
        let server = HttpServer::new(move || {
            App::new().wrap(dpop_actix::Dpop::with_guard(guard.clone())).route(PATH, web::post().to(hello))
        })
        .workers(workers)
        .disable_signals()
        .bind(("127.0.0.1", 0))?;
        let port = server.addrs().first().map(std::net::SocketAddr::port).ok_or("actix-web bound no address")?;
        announce(port)?;
        server.run().await?;
        Ok(())
    })
}

/// Tells the parent the port, then exits when standard input closes.
fn announce(port: u16) -> Result<(), BoxError> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "LISTENING {port}")?;
    stdout.flush()?;
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        std::process::exit(0);
    });
    Ok(())
}

async fn hello() -> &'static str {
    "ok"
}

async fn bare(State(key): State<Arc<PublicKey>>, request: Request) -> Result<&'static str, StatusCode> {
    let proof = request.headers().get("dpop").ok_or(StatusCode::UNAUTHORIZED)?;
    verify_bare(&key, proof.as_bytes()).map_err(|_| StatusCode::UNAUTHORIZED)?;
    Ok("ok")
}

#[cfg(test)]
mod tests {
    use super::is_loopback_url;

    #[test]
    fn only_loopback_urls_pass() {
        for url in [
            "redis://127.0.0.1:6379",
            "rediss://127.0.0.1:16390",
            "redis://localhost",
            "redis://user:secret@127.0.0.1:6379/0",
            "redis://[::1]:6379",
            "redis://[::1]",
        ] {
            assert!(is_loopback_url(url), "{url}");
        }
        for url in
            ["redis://10.0.0.1:6379", "rediss://cache.example.com", "127.0.0.1:6379", "redis://127.0.0.1.example:1"]
        {
            assert!(!is_loopback_url(url), "{url}");
        }
    }
}
