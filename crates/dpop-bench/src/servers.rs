//! The servers under load. Each runs in its own process (`dpop-bench serve KIND`), on its own
//! runtime with a fixed worker count, so it never shares threads with the load generator.
//!
//! A server binds `127.0.0.1:0`, prints `LISTENING <port>` on stdout, and exits when its
//! standard input closes: the parent closes it to stop it, and a server never outlives a
//! parent that died.

use std::fmt;
use std::io::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::serve::ListenerExt as _;
use dpop_core::{DpopGuard, DpopVerifier, PublicKey, replay::InMemoryReplayStore, replay::ReplayStore};
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
    /// (c) with the Redis replay store.
    AxumRedis,
}

impl ServerKind {
    /// Every server, in the order they run.
    pub const ALL: [Self; 5] = [Self::Hello, Self::Bare, Self::Axum, Self::Actix, Self::AxumRedis];

    /// The short name used on the command line.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Hello => "hello",
            Self::Bare => "bare",
            Self::Axum => "axum",
            Self::Actix => "actix",
            Self::AxumRedis => "axum-redis",
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
            _ => None,
        }
    }

    /// Whether the server checks signatures, so that every request needs a proof of its own
    /// (the hello server ignores them and may see the same proof again).
    #[must_use]
    pub const fn verifies(self) -> bool {
        !matches!(self, Self::Hello)
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
    /// The Redis server, for [`ServerKind::AxumRedis`].
    pub redis_url: String,
    /// The prefix of this run's Redis keys.
    pub redis_prefix: String,
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
            ServerKind::AxumRedis => {
                let store = dpop_redis::RedisReplayStore::builder()
                    .prefix(options.redis_prefix.clone())
                    .connect(&options.redis_url)
                    .await?;
                store.ping().await?;
                let guard = guard(&options.jwks, store)?;
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
