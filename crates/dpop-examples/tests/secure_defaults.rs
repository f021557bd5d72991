//! The secure defaults, over real HTTP on 127.0.0.1 against real servers: a guard built per
//! actix worker or per hyper connection still accepts each proof once; the nonce policy sees the
//! path as `htu` does (`/%6Dcp` is `/mcp`); an actix-web server terminating TLS itself checks
//! `htu` against `https`; a proof signed under the RFC 9864 name `Ed25519` passes where EdDSA is
//! allowed; a proof-only layer hands handlers `ProofOnly`, never `Authenticated`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dpop_guard::{
    Algorithm, DpopGuard, DpopKey, DpopVerifier, NoncePolicy, Thumbprint, access_token_hash, nonce::NonceIssuer,
};
use serde_json::json;
use support::{Client, Framework, RawRequest, RawResponse, guard_builder, send, test_validator};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

const REPLAYED: &str =
    r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof has already been used", algs="ES256""#;
const HTU_MISMATCH: &str = r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof `htu` does not match the request URI", algs="ES256""#;

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn is_success(response: &RawResponse) -> bool {
    (200..300).contains(&response.status)
}

/// Sends `request` once on each of `connections` new connections and checks that exactly one
/// response is a success and every other one is the replay refusal.
async fn accepted_exactly_once(addr: SocketAddr, request: &RawRequest, connections: usize) {
    let mut accepted = 0;
    for _ in 0..connections {
        let response = send(addr, request).await;
        if is_success(&response) {
            accepted += 1;
        } else {
            assert_eq!(response.status, 401, "{response:?}");
            assert_eq!(response.all("www-authenticate"), [REPLAYED], "{response:?}");
        }
    }
    assert_eq!(accepted, 1, "one proof must be accepted exactly once");
}

// ---------------------------------------------------------------------------------------------
// One replay store per process.

#[tokio::test]
async fn actix_accepts_a_proof_once_whatever_the_worker_when_each_worker_builds_its_guard() {
    use actix_web::{App, HttpServer, web};
    use dpop_actix::Dpop;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let server_hits = Arc::clone(&hits);
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            // The trap: the guard built inside the factory, so once per worker.
            HttpServer::new(move || {
                let hits = Arc::clone(&server_hits);
                App::new().wrap(Dpop::new(test_validator())).route(
                    "/mcp",
                    web::post().to(move || {
                        hits.fetch_add(1, Ordering::SeqCst);
                        async { "ok" }
                    }),
                )
            })
            .workers(4)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run()
            .await
        })
    });

    let client = Client::new(format!("http://{addr}"));
    // Eight connections, one after the other: actix hands them to its four workers in turn.
    accepted_exactly_once(addr, &client.valid("POST", "/mcp"), 8).await;
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn tower_accepts_a_proof_once_when_each_connection_builds_its_service() {
    use dpop_tower::DpopLayer;
    use tower::ServiceBuilder;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let server_hits = Arc::clone(&hits);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let hits = Arc::clone(&server_hits);
            // A new layer, guard and service for every connection.
            let service = ServiceBuilder::new().layer(DpopLayer::new(test_validator())).service(tower::service_fn(
                move |_: http::Request<hyper::body::Incoming>| {
                    hits.fetch_add(1, Ordering::SeqCst);
                    async { Ok::<_, Infallible>(http::Response::new(http_body_util::Full::from("ok"))) }
                },
            ));
            let service = hyper_util::service::TowerToHyperService::new(service);
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });

    let client = Client::new(format!("http://{addr}"));
    accepted_exactly_once(addr, &client.valid("POST", "/mcp"), 8).await;
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------------------------
// The nonce policy sees the path as `htu` and the router do.

fn nonce_guard(_base: &str) -> DpopGuard {
    let verifier = DpopVerifier::builder().nonces(NonceIssuer::process_wide().unwrap()).build().unwrap();
    guard_builder().verifier(verifier).nonce_policy(NoncePolicy::when(|_, path| path == "/mcp")).build().unwrap()
}

#[tokio::test]
async fn a_percent_encoded_path_selected_by_the_nonce_policy_needs_a_nonce() {
    for framework in Framework::ALL {
        let server = framework.start_with(nonce_guard).await;
        let client = Client::new(server.base());
        // `/%6Dcp` is `/mcp` (RFC 3986 §6.2.2.2); the proof names it as sent, which `htu`
        // normalizes to the same.
        let proof = client.proof_for("POST", &client.url("/%6Dcp"));
        let response = send(server.addr, &client.with_proof("POST", "/%6Dcp", &proof)).await;
        // The tower server sends every other path to the guarded service, actix-web routes
        // `/%6Dcp` to the `/mcp` resource, and axum runs its layer on the fallback of the router
        // it wraps: the guard decides on all three.
        assert_eq!(response.status, 401, "{framework:?}: {response:?}");
        let challenge = response.all("www-authenticate");
        assert_eq!(challenge.len(), 1, "{framework:?}: {response:?}");
        assert!(challenge[0].starts_with(r#"DPoP error="use_dpop_nonce""#), "{framework:?}: {response:?}");
        let nonce = response.all("dpop-nonce");
        assert_eq!(nonce.len(), 1, "{framework:?}: {response:?}");
        assert_eq!(server.handler_runs(), 0, "{framework:?}");

        // With the nonce, the guard lets the request through.
        let proof = client.key.proof("POST", &client.url("/%6Dcp")).access_token(&client.token).nonce(nonce[0]).sign();
        let response = send(server.addr, &client.with_proof("POST", "/%6Dcp", &proof.unwrap())).await;
        if framework == Framework::Axum {
            // axum matches routes on the path as sent: `/%6Dcp` is no route, and its fallback
            // answers 404 without any handler.
            assert_eq!(response.status, 404, "{framework:?}: {response:?}");
            assert_eq!(server.handler_runs(), 0, "{framework:?}");
        } else {
            assert!(is_success(&response), "{framework:?}: {response:?}");
            assert_eq!(server.handler_runs(), 1, "{framework:?}");
        }

        // A route the predicate does not select needs no nonce.
        let before = server.handler_runs();
        let response = send(server.addr, &client.valid("POST", "/api/mcp")).await;
        assert!(is_success(&response), "{framework:?}: {response:?}");
        assert!(response.all("www-authenticate").is_empty(), "{framework:?}: {response:?}");
        assert_eq!(server.handler_runs(), before + 1, "{framework:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// A server terminating TLS itself: actix-web's rustls listener makes the scheme `https`.

/// A throw-away CA and a certificate for 127.0.0.1 and localhost it signed.
struct Certificates {
    ca: rustls::pki_types::CertificateDer<'static>,
    server: rustls::pki_types::CertificateDer<'static>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn certificates() -> Certificates {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "dpop-guard test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "dpop-guard test server");
    let server = params.signed_by(&server_key, &issuer).unwrap();
    Certificates {
        ca: ca.der().clone(),
        server: server.der().clone(),
        server_key: rustls::pki_types::PrivatePkcs8KeyDer::from(server_key.serialize_der()).into(),
    }
}

/// The rustls provider both ends use, named explicitly: the process may have several compiled
/// in, and then no default.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Writes `bytes`, reads until the peer closes and parses the HTTP/1.1 response.
async fn exchange(mut stream: impl AsyncRead + AsyncWrite + Unpin, bytes: &[u8]) -> RawResponse {
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
    let mut raw = Vec::new();
    // A peer closing without TLS close_notify ends the read with an error: what came is enough.
    let _ = stream.read_to_end(&mut raw).await;
    support::parse_response(&raw)
}

#[tokio::test]
async fn an_actix_tls_listener_makes_the_scheme_https() {
    use actix_web::{App, HttpServer, web};
    use dpop_actix::Dpop;

    let certificates = certificates();
    let server_config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificates.server.clone()], certificates.server_key.clone_key())
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let server_hits = Arc::clone(&hits);
    // No public origin: the scheme can only come from the listener.
    let guard = guard_builder().build().unwrap();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                let hits = Arc::clone(&server_hits);
                App::new().wrap(Dpop::with_guard(guard.clone())).route(
                    "/mcp",
                    web::post().to(move || {
                        hits.fetch_add(1, Ordering::SeqCst);
                        async { "ok" }
                    }),
                )
            })
            .workers(1)
            .disable_signals()
            .listen_rustls_0_23(listener, server_config)
            .unwrap()
            .run()
            .await
        })
    });

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certificates.ca).unwrap();
    let client_config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let server_name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let send_tls = async |request: &RawRequest| {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let tls = connector.connect(server_name.clone(), tcp).await.unwrap();
        exchange(tls, &support::wire(&addr.to_string(), request)).await
    };

    let client = Client::new(format!("https://{addr}"));
    let honest = send_tls(&client.valid("POST", "/mcp")).await;
    assert!(is_success(&honest), "{honest:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // A proof for the plain-HTTP URL of the same server is for another URI.
    let http_proof = client.proof_for("POST", &format!("http://{addr}/mcp"));
    let response = send_tls(&client.with_proof("POST", "/mcp", &http_proof)).await;
    assert_eq!(response.status, 401, "{response:?}");
    assert_eq!(response.all("www-authenticate"), [HTU_MISMATCH], "{response:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------------------------
// Ed25519 (RFC 9864) wherever EdDSA is allowed.

/// An Ed25519 key (ring) signing proofs by hand, under either JOSE name.
struct Ed25519Client {
    pair: ring::signature::Ed25519KeyPair,
    jwk: serde_json::Value,
}

impl Ed25519Client {
    fn new() -> Self {
        use ring::signature::{Ed25519KeyPair, KeyPair as _};
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())});
        Self { pair, jwk }
    }

    /// The token the test validator binds to this key: `bound.<RFC 7638 thumbprint>`.
    fn token(&self) -> String {
        format!("bound.{}", Thumbprint::of_jwk_json(&self.jwk.to_string()).unwrap())
    }

    fn proof(&self, alg: &str, jti: &str, url: &str) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": alg, "jwk": self.jwk});
        let claims = json!({
            "jti": jti, "htm": "POST", "htu": url, "iat": now(), "ath": access_token_hash(&self.token()),
        });
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = self.pair.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    fn request(&self, alg: &str, jti: &str, base: &str) -> RawRequest {
        RawRequest::new("POST", "/mcp")
            .header("authorization", format!("DPoP {}", self.token()))
            .header("dpop", self.proof(alg, jti, &format!("{base}/mcp")))
    }
}

#[tokio::test]
async fn ed25519_proofs_pass_where_eddsa_is_allowed() {
    if !Algorithm::EdDSA.is_supported() {
        eprintln!("skipped: the crypto backend has no EdDSA");
        return;
    }
    for framework in Framework::ALL {
        let verifier = DpopVerifier::builder().algorithms([Algorithm::EdDSA]).build().unwrap();
        let server = framework.start(guard_builder().verifier(verifier).build().unwrap()).await;
        let client = Ed25519Client::new();
        let jkt = Thumbprint::of_jwk_json(&client.jwk.to_string()).unwrap().to_string();
        for (alg, jti) in [("Ed25519", "fully-specified"), ("EdDSA", "polymorphic")] {
            let response = send(server.addr, &client.request(alg, jti, &server.base())).await;
            assert_eq!(response.status, 200, "{framework:?} {alg}: {response:?}");
            assert_eq!(response.body, format!("dpop {jkt}"), "{framework:?} {alg}");
        }
        assert_eq!(server.handler_runs(), 2, "{framework:?}");

        // Refused by the default allow-list, which advertises ES256 only.
        let server = framework.start(guard_builder().build().unwrap()).await;
        let response = send(server.addr, &client.request("Ed25519", "default-list", &server.base())).await;
        assert_eq!(response.status, 401, "{framework:?}: {response:?}");
        let challenge = response.all("www-authenticate");
        assert_eq!(challenge.len(), 1, "{framework:?}: {response:?}");
        assert!(challenge[0].starts_with(r#"DPoP error="invalid_dpop_proof""#), "{framework:?}: {response:?}");
        assert!(challenge[0].ends_with(r#"algs="ES256""#), "{framework:?}: {response:?}");
        assert_eq!(server.handler_runs(), 0, "{framework:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Proof-only is a type: `ProofOnly`, never `Authenticated`.

/// A client whose access token no authorization server ever issued.
fn unvalidated_client(base: String) -> Client {
    Client { base, key: DpopKey::generate().unwrap(), token: "i-am-admin".to_owned() }
}

/// Checks a proof-only server with `/typed` (takes `ProofOnly`) and `/claims` (takes
/// `Authenticated`); `runs` counts the `/claims` handler.
async fn check_proof_only_server(addr: SocketAddr, runs: &AtomicUsize, name: &str) {
    let client = unvalidated_client(format!("http://{addr}"));
    let response = send(addr, &client.valid("POST", "/typed")).await;
    assert_eq!(response.status, 200, "{name}: {response:?}");
    assert_eq!(response.body, format!("proof-only {} i-am-admin", client.key.thumbprint()), "{name}");

    let response = send(addr, &client.valid("POST", "/claims")).await;
    assert_eq!(response.status, 401, "{name}: {response:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 0, "{name}: a handler taking Authenticated ran behind a proof-only layer");
}

#[tokio::test]
async fn axum_proof_only_hands_handlers_proof_only_never_authenticated() {
    use axum::Router;
    use axum::routing::post;
    use dpop_axum::{Authenticated, DpopLayer, ProofOnly};

    let runs = Arc::new(AtomicUsize::new(0));
    let claims_runs = Arc::clone(&runs);
    let app = Router::new()
        .route(
            "/typed",
            post(|proof: ProofOnly| async move {
                format!("proof-only {} {}", proof.jkt(), proof.unvalidated_access_token())
            }),
        )
        .route(
            "/claims",
            post(move |auth: Authenticated| {
                claims_runs.fetch_add(1, Ordering::SeqCst);
                async move { format!("{:?}", auth.claims().subject) }
            }),
        )
        .layer(DpopLayer::proof_only());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    check_proof_only_server(addr, &runs, "axum").await;
}

#[tokio::test]
async fn actix_proof_only_hands_handlers_proof_only_never_authenticated() {
    use actix_web::{App, HttpServer, web};
    use dpop_actix::{Authenticated, Dpop, ProofOnly};

    async fn typed(proof: ProofOnly) -> String {
        format!("proof-only {} {}", proof.jkt(), proof.unvalidated_access_token())
    }
    async fn claims(auth: Authenticated, runs: web::Data<Arc<AtomicUsize>>) -> String {
        runs.fetch_add(1, Ordering::SeqCst);
        format!("{:?}", auth.claims().subject)
    }

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let server_runs = Arc::clone(&runs);
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                App::new()
                    .app_data(web::Data::new(Arc::clone(&server_runs)))
                    .wrap(Dpop::proof_only())
                    .route("/typed", web::post().to(typed))
                    .route("/claims", web::post().to(claims))
            })
            .workers(1)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run()
            .await
        })
    });
    check_proof_only_server(addr, &runs, "actix").await;
}
