//! Real servers (tower on hyper, axum, actix-web) built the same way from one `DpopGuard`, and a
//! raw HTTP/1.1 client that can send anything: repeated fields, odd bytes, any `Host`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod cases;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dpop_guard::{
    AuthScheme, Authentication, DpopGuard, DpopGuardBuilder, DpopKey, InvalidToken, ProofOnlyAuthentication,
    TokenClaims, TokenError, TokenValidator, validator_fn,
};
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The three frameworks every case runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framework {
    Tower,
    Axum,
    Actix,
}

impl Framework {
    pub const ALL: [Self; 3] = [Self::Tower, Self::Axum, Self::Actix];

    /// Starts a server of this framework deciding with `guard`, on 127.0.0.1.
    pub async fn start(self, guard: DpopGuard) -> TestServer {
        self.start_with(|_| guard).await
    }

    /// Starts a server whose guard is made from its base URL (`http://127.0.0.1:port`).
    pub async fn start_with(self, make_guard: impl FnOnce(&str) -> DpopGuard) -> TestServer {
        let hits = Arc::new(AtomicUsize::new(0));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let guard = make_guard(&format!("http://{addr}"));
        match self {
            Self::Tower => start_tower(listener, guard, Arc::clone(&hits)),
            Self::Axum => start_axum(listener, guard, Arc::clone(&hits)),
            Self::Actix => start_actix(listener, guard, Arc::clone(&hits)),
        }
        TestServer { addr, hits }
    }
}

/// A running server: where it listens and how often a handler ran.
pub struct TestServer {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl TestServer {
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn handler_runs(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// What a handler answers: who the request authenticated as.
fn describe(authentication: Option<&Authentication>, proof_only: Option<&ProofOnlyAuthentication>) -> String {
    match (authentication, proof_only) {
        (Some(auth), _) if auth.scheme() == AuthScheme::Dpop => {
            format!("dpop {}", auth.jkt().unwrap_or_default())
        }
        (Some(_), _) => "bearer".to_owned(),
        (None, Some(proof_only)) => format!("proof-only {}", proof_only.jkt()),
        (None, None) => "anonymous".to_owned(),
    }
}

/// The test authorization server's tokens: `bound.<jkt>` is valid and bound to that key,
/// [`TOKEN`] is valid and unbound (a Bearer token), anything else was never issued.
pub fn test_validator() -> impl TokenValidator {
    validator_fn(|token: &str| {
        let mut claims = TokenClaims::default();
        claims.subject = Some("test-user".to_owned());
        if let Some(jkt) = token.strip_prefix("bound.") {
            claims.cnf_jkt = Some(jkt.to_owned());
        } else if token != TOKEN {
            return Err(TokenError::Invalid(InvalidToken::Other("unknown token")));
        }
        Ok(claims)
    })
}

/// A guard builder validating tokens with [`test_validator`].
pub fn guard_builder() -> DpopGuardBuilder {
    DpopGuard::builder().token_validator(test_validator())
}

/// The token [`test_validator`] binds to `key`.
pub fn bound_token(key: &DpopKey) -> String {
    format!("bound.{}", key.thumbprint())
}

// Every server serves the same routes:
//   /mcp, /api/mcp        protected (in axum and actix, /api is a nested router / scope)
//   /open/required        no layer; the handler requires authentication (extractor)
//   /open/optional        no layer; the handler takes optional authentication

type Body = UnsyncBoxBody<hyper::body::Bytes, Infallible>;

fn start_tower(listener: std::net::TcpListener, guard: DpopGuard, hits: Arc<AtomicUsize>) {
    use dpop_tower::DpopLayer;
    use hyper::service::service_fn;
    use tower::{Service as _, ServiceBuilder, ServiceExt as _};

    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let handler_hits = Arc::clone(&hits);
    let protected = ServiceBuilder::new().layer(DpopLayer::with_guard(guard)).service(tower::service_fn(
        move |request: http::Request<hyper::body::Incoming>| {
            handler_hits.fetch_add(1, Ordering::SeqCst);
            let extensions = request.extensions();
            let body = describe(extensions.get::<Authentication>(), extensions.get::<ProofOnlyAuthentication>());
            async move { Ok::<_, Infallible>(http::Response::new(http_body_util::Full::from(body))) }
        },
    ));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (protected, hits) = (protected.clone(), Arc::clone(&hits));
            let router = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let (mut protected, hits) = (protected.clone(), Arc::clone(&hits));
                async move {
                    let response: http::Response<Body> = match request.uri().path() {
                        "/open/required" => {
                            let rejection = dpop_guard::Rejection::unguarded_route(dpop_guard::AlgorithmSet::default());
                            dpop_tower::reply_response(&rejection.reply()).map(|b| b.boxed_unsync())
                        }
                        "/open/optional" => {
                            hits.fetch_add(1, Ordering::SeqCst);
                            http::Response::new(http_body_util::Full::from(describe(None, None)).boxed_unsync())
                        }
                        _ => {
                            let ready = protected.ready().await?;
                            ready.call(request).await?.map(|b| b.boxed_unsync())
                        }
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, router));
        }
    });
}

fn start_axum(listener: std::net::TcpListener, guard: DpopGuard, hits: Arc<AtomicUsize>) {
    use axum::Router;
    use axum::routing::any;
    use dpop_axum::{Authenticated, DpopLayer, ProofOnly};

    // Behind the layer: whichever of the two the guard hands over.
    let protected = |hits: &Arc<AtomicUsize>| {
        let hits = Arc::clone(hits);
        move |auth: Option<Authenticated>, proof_only: Option<ProofOnly>| {
            hits.fetch_add(1, Ordering::SeqCst);
            async move { describe(auth.as_deref(), proof_only.as_deref()) }
        }
    };
    let required_hits = Arc::clone(&hits);
    let optional_hits = Arc::clone(&hits);
    let api = Router::new().route("/mcp", any(protected(&hits))).layer(DpopLayer::with_guard(guard.clone()));
    let app = Router::new()
        .route("/mcp", any(protected(&hits)))
        .layer(DpopLayer::with_guard(guard))
        .nest("/api", api)
        .route(
            "/open/required",
            any(move |auth: Authenticated| {
                required_hits.fetch_add(1, Ordering::SeqCst);
                async move { describe(Some(&auth.0), None) }
            }),
        )
        .route(
            "/open/optional",
            any(move |auth: Option<Authenticated>| {
                optional_hits.fetch_add(1, Ordering::SeqCst);
                async move { describe(auth.as_deref(), None) }
            }),
        );
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
}

fn start_actix(listener: std::net::TcpListener, guard: DpopGuard, hits: Arc<AtomicUsize>) {
    use actix_web::{App, HttpServer, web};
    use dpop_actix::{Authenticated, Dpop, ProofOnly};

    async fn protected(
        auth: Option<Authenticated>,
        proof_only: Option<ProofOnly>,
        hits: web::Data<Arc<AtomicUsize>>,
    ) -> String {
        hits.fetch_add(1, Ordering::SeqCst);
        describe(auth.as_deref(), proof_only.as_deref())
    }
    async fn required(auth: Authenticated, hits: web::Data<Arc<AtomicUsize>>) -> String {
        hits.fetch_add(1, Ordering::SeqCst);
        describe(Some(&auth.0), None)
    }
    async fn optional(auth: Option<Authenticated>, hits: web::Data<Arc<AtomicUsize>>) -> String {
        hits.fetch_add(1, Ordering::SeqCst);
        describe(auth.as_deref(), None)
    }

    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                App::new()
                    .app_data(web::Data::new(Arc::clone(&hits)))
                    .configure(dpop_actix::metadata(guard.clone()))
                    .service(web::scope("/api").wrap(Dpop::with_guard(guard.clone())).route("/mcp", web::to(protected)))
                    .service(
                        web::scope("/open").route("/required", web::to(required)).route("/optional", web::to(optional)),
                    )
                    .service(web::resource("/mcp").wrap(Dpop::with_guard(guard.clone())).to(protected))
            })
            .workers(2)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run()
            .await
        })
    });
}

/// A request as bytes on the wire will carry it.
#[derive(Clone, Debug)]
pub struct RawRequest {
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(&'static str, Vec<u8>)>,
}

impl RawRequest {
    pub fn new(method: &'static str, path: &str) -> Self {
        Self { method, path: path.to_owned(), headers: Vec::new() }
    }

    pub fn header(mut self, name: &'static str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name, value.as_ref().to_vec()));
        self
    }
}

/// What came back.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }
}

/// Sends one request on a new connection (`Connection: close`) and reads the whole response.
pub async fn send(addr: SocketAddr, request: &RawRequest) -> RawResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(&wire(&addr.to_string(), request)).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    parse_response(&raw)
}

/// The bytes of `request` on the wire: a `host` field (`host`, unless the request has its own),
/// the request's fields as given, no body, `Connection: close`.
pub fn wire(host: &str, request: &RawRequest) -> Vec<u8> {
    let mut wire = format!("{} {} HTTP/1.1\r\n", request.method, request.path).into_bytes();
    if !request.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
        wire.extend_from_slice(format!("host: {host}\r\n").as_bytes());
    }
    for (name, value) in &request.headers {
        wire.extend_from_slice(name.as_bytes());
        wire.extend_from_slice(b": ");
        wire.extend_from_slice(value);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"content-length: 0\r\nconnection: close\r\n\r\n");
    wire
}

/// A raw HTTP/1.1 response, parsed leniently (tests assert on what they need).
pub fn parse_response(raw: &[u8]) -> RawResponse {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|line| line.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    RawResponse { status, headers, body: body.to_owned() }
}

/// The client side of a case: a key, a token bound to it and the server's base URL.
pub struct Client {
    pub base: String,
    pub key: DpopKey,
    /// An access token [`test_validator`] accepts, bound to `key`.
    pub token: String,
}

/// A valid, unbound access token of the test authorization server (a Bearer token).
pub const TOKEN: &str = "test-access-token";

impl Client {
    pub fn new(base: String) -> Self {
        let key = DpopKey::generate().unwrap();
        Self { base, token: bound_token(&key), key }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A valid proof for `method` on `url`, for this client's token.
    pub fn proof_for(&self, method: &str, url: &str) -> String {
        self.key.proof(method, url).access_token(&self.token).sign().unwrap()
    }

    /// A proof whose header and claims `change` edited, signed by this key.
    pub fn mutated(&self, method: &str, path: &str, change: impl FnOnce(&mut Value, &mut Value)) -> String {
        let url = self.url(path);
        let builder = self.key.proof(method, &url).access_token(&self.token);
        let (mut header, mut claims) = (builder.header(), builder.claims().unwrap());
        change(&mut header, &mut claims);
        self.key.sign_jws(&header.to_string(), &claims.to_string()).unwrap()
    }

    /// `Authorization: DPoP <token>` with `proof` on `method path`.
    pub fn with_proof(&self, method: &'static str, path: &str, proof: &str) -> RawRequest {
        RawRequest::new(method, path).header("authorization", format!("DPoP {}", self.token)).header("dpop", proof)
    }

    /// A valid DPoP request on `method path`.
    pub fn valid(&self, method: &'static str, path: &str) -> RawRequest {
        self.with_proof(method, path, &self.proof_for(method, &self.url(path)))
    }
}
