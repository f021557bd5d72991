//! Real servers on 127.0.0.1 for the client tests: an axum resource server behind
//! `dpop_axum::DpopLayer` with a real guard, and a small authorization server whose token
//! endpoint is `dpop_core::token_endpoint::TokenEndpoint`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dpop_axum::{Authenticated, DpopLayer};
use dpop_core::token_endpoint::TokenEndpoint;
use dpop_core::{
    DpopGuard, DpopVerifier, NoncePolicy, TokenClaims, TokenError, clock::Clock, clock::ManualClock,
    clock::SystemClock, nonce::NonceIssuer, nonce::NonceKey, validator_fn,
};
use serde_json::{Value, json};
use sha2::Digest as _;

/// A clock `seconds` ahead of the system clock, movable.
pub fn clock_ahead(seconds: u64) -> ManualClock {
    ManualClock::at(SystemClock.now() + seconds)
}

/// One request a server answered: method, path, status, content type.
pub type Logged = (String, String, u16, String);

/// Requests and refusals a server saw.
#[derive(Clone, Default)]
pub struct Counters {
    requests: Arc<AtomicUsize>,
    refusals: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<Logged>>>,
}

impl Counters {
    /// Every request as (method, path, status, content type).
    pub fn log(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
    pub fn refusals(&self) -> usize {
        self.refusals.load(Ordering::SeqCst)
    }
}

/// Counts every request and every 4xx answer; with a clock, sets `Date` from it.
fn outer_layer(router: Router, counters: Counters, clock: Option<ManualClock>) -> Router {
    router.layer(axum::middleware::from_fn(move |request: Request, next: Next| {
        let (counters, clock) = (counters.clone(), clock.clone());
        async move {
            counters.requests.fetch_add(1, Ordering::SeqCst);
            let (method, path) = (request.method().to_string(), request.uri().path().to_owned());
            let mut response = next.run(request).await;
            let content_type =
                response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
            counters.log.lock().unwrap().push((method, path, response.status().as_u16(), content_type.to_owned()));
            if response.status().is_client_error() {
                counters.refusals.fetch_add(1, Ordering::SeqCst);
            }
            if let Some(clock) = clock {
                let date = httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(clock.now()));
                response.headers_mut().insert(header::DATE, HeaderValue::from_str(&date).unwrap());
            }
            response
        }
    }))
}

/// The access tokens of [`AuthServer`]: `at.<jkt>.<n>` is bound to `jkt`; `bearer.<n>` is not.
pub fn token_validator() -> impl dpop_core::TokenValidator {
    validator_fn(|token: &str| {
        let mut claims = TokenClaims::default();
        claims.subject = Some("client".to_owned());
        if let Some(rest) = token.strip_prefix("at.") {
            let jkt = rest.split('.').next().unwrap_or_default();
            claims.cnf_jkt = Some(jkt.to_owned());
            return Ok(claims);
        }
        if token.starts_with("bearer.") {
            return Ok(claims);
        }
        Err(TokenError::Invalid(dpop_core::InvalidToken::Other("unknown token")))
    })
}

/// How a resource server is set up.
#[derive(Clone, Default)]
pub struct ResourceOptions {
    /// POST requests must carry a nonce.
    pub nonces_on_post: bool,
    /// The server's clock (verifier, nonces, `Date`); system clock otherwise.
    pub clock: Option<ManualClock>,
    /// `Date` from the system clock even with [`clock`](Self::clock) (a server whose verifier
    /// clock and `Date` disagree).
    pub system_date: bool,
    /// Nonces on their own clock (to make them stale).
    pub nonce_clock: Option<ManualClock>,
    /// The issuer named in the RFC 9728 metadata.
    pub authorization_server: Option<String>,
}

/// An axum resource server behind `DpopLayer`:
/// `/api` (GET, POST: answers the token's `jkt`), `/upload` (POST: answers the body's length),
/// `/mcp` when started with [`ResourceServer::start_mcp`].
pub struct ResourceServer {
    pub base: String,
    pub counters: Counters,
}

impl ResourceServer {
    pub async fn start(options: ResourceOptions) -> Self {
        Self::start_with(options, Router::new()).await
    }

    pub async fn start_with(options: ResourceOptions, extra: Router) -> Self {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut verifier = DpopVerifier::builder();
        if let Some(clock) = &options.clock {
            verifier = verifier.clock(clock.clone());
        }
        let nonce_clock: Option<Arc<dyn Clock>> = match (&options.nonce_clock, &options.clock) {
            (Some(clock), _) | (None, Some(clock)) => Some(Arc::new(clock.clone())),
            _ => None,
        };
        if options.nonces_on_post {
            let mut issuer = NonceIssuer::new(NonceKey::generate(1).unwrap());
            if let Some(clock) = nonce_clock {
                issuer = issuer.clock(clock);
            }
            verifier = verifier.nonces(issuer);
        }
        let mut guard = DpopGuard::builder()
            .verifier(verifier.build().unwrap())
            .token_validator(token_validator())
            .resource(&format!("{base}/api"));
        if let Some(issuer) = &options.authorization_server {
            guard = guard.authorization_server(issuer.clone());
        }
        if options.nonces_on_post {
            guard = guard.nonce_policy(NoncePolicy::when(|method, _| method == "POST"));
        }
        let guard = guard.build().unwrap();
        let app = Router::new()
            .route("/api", get(whoami).post(whoami))
            .route("/upload", post(upload))
            .merge(extra)
            .layer(DpopLayer::with_guard(guard))
            .route("/broken", get(always_use_nonce).post(always_use_nonce));
        let counters = Counters::default();
        let date_clock = if options.system_date { None } else { options.clock.clone() };
        let app = outer_layer(app, counters.clone(), date_clock);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, counters }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A broken server: every request is answered `use_dpop_nonce` with yet another nonce.
async fn always_use_nonce() -> Response {
    static SERIAL: AtomicUsize = AtomicUsize::new(0);
    let nonce = format!("nonce{}", SERIAL.fetch_add(1, Ordering::SeqCst));
    let challenge = r#"DPoP algs="ES256", error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#;
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge.to_owned()), (HeaderName::from_static("dpop-nonce"), nonce)],
    )
        .into_response()
}

async fn whoami(auth: Authenticated) -> String {
    auth.jkt().unwrap_or_default().to_owned()
}

async fn upload(_auth: Authenticated, body: Bytes) -> String {
    body.len().to_string()
}

/// How an authorization server is set up.
#[derive(Clone, Default)]
pub struct AuthOptions {
    /// Token requests must carry a nonce.
    pub nonces: bool,
    /// The server's clock (verifier, nonces, `Date`).
    pub clock: Option<ManualClock>,
    /// Answers `token_type: Bearer` with unbound tokens.
    pub bearer: bool,
    /// Token lifetime in seconds (`expires_in`).
    pub expires_in: u64,
    /// Publishes only the OpenID Connect Discovery document, no RFC 8414 metadata.
    pub openid_only: bool,
    /// Its metadata names [`FOREIGN_ISSUER`] as the issuer.
    pub foreign_issuer: bool,
    /// `/authorize` answers a page with an approval link for a person to follow, instead of
    /// redirecting at once.
    pub person_approves: bool,
}

/// The issuer the metadata of an [`AuthOptions::foreign_issuer`] server names.
pub const FOREIGN_ISSUER: &str = "https://elsewhere.example";

/// The approval link of the page a [`AuthOptions::person_approves`] server answers: the redirect
/// to the client's redirect URI.
pub fn approval_link(page: &str) -> String {
    let (_, link) = page.split_once("href=\"").expect("an approval link");
    let (link, _) = link.split_once('"').expect("a closed href");
    link.replace("&quot;", "\"").replace("&amp;", "&")
}

/// A small authorization server: RFC 8414 metadata (or OpenID Connect Discovery), `/authorize`
/// (approves at once, or on a page; redirects with a code, `state` and `iss`), `/token`
/// (authorization code with PKCE S256, refresh token, client credentials; DPoP proofs checked by
/// `TokenEndpoint`), `/register` (RFC 7591).
pub struct AuthServer {
    pub issuer: String,
    pub counters: Counters,
    state: Arc<AsState>,
}

struct AsState {
    issuer: String,
    /// The issuer its metadata names.
    metadata_issuer: String,
    person_approves: bool,
    endpoint: TokenEndpoint,
    bearer: bool,
    expires_in: u64,
    codes: Mutex<HashMap<String, Grant>>,
    refresh: Mutex<HashMap<String, String>>,
    clients: Mutex<Vec<String>>,
    serial: AtomicUsize,
    last_resource: Mutex<Option<String>>,
}

#[derive(Clone)]
struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    resource: Option<String>,
    dpop_jkt: Option<String>,
}

impl AuthServer {
    pub async fn start(options: AuthOptions) -> Self {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let mut verifier = DpopVerifier::builder();
        if let Some(clock) = &options.clock {
            verifier = verifier.clock(clock.clone());
        }
        if options.nonces {
            let mut nonces = NonceIssuer::new(NonceKey::generate(2).unwrap());
            if let Some(clock) = &options.clock {
                nonces = nonces.clock(clock.clone());
            }
            verifier = verifier.nonces(nonces);
        }
        let endpoint = TokenEndpoint::new(verifier.build().unwrap(), &format!("{issuer}/token")).unwrap();
        let state = Arc::new(AsState {
            issuer: issuer.clone(),
            metadata_issuer: if options.foreign_issuer { FOREIGN_ISSUER.to_owned() } else { issuer.clone() },
            person_approves: options.person_approves,
            endpoint,
            bearer: options.bearer,
            expires_in: if options.expires_in == 0 { 300 } else { options.expires_in },
            codes: Mutex::default(),
            refresh: Mutex::default(),
            clients: Mutex::new(vec!["preregistered".to_owned()]),
            serial: AtomicUsize::new(0),
            last_resource: Mutex::default(),
        });
        let metadata_path = if options.openid_only {
            "/.well-known/openid-configuration"
        } else {
            "/.well-known/oauth-authorization-server"
        };
        let app = Router::new()
            .route(metadata_path, get(as_metadata))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/register", post(register))
            .with_state(Arc::clone(&state));
        let counters = Counters::default();
        let app = outer_layer(app, counters.clone(), options.clock.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { issuer, counters, state }
    }

    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// The `resource` of the last token request.
    pub fn last_resource(&self) -> Option<String> {
        self.state.last_resource.lock().unwrap().clone()
    }

    /// Client ids registered through `/register`.
    pub fn registered_clients(&self) -> Vec<String> {
        self.state.clients.lock().unwrap().iter().filter(|id| *id != "preregistered").cloned().collect()
    }
}

async fn as_metadata(State(state): State<Arc<AsState>>) -> Json<Value> {
    let issuer = &state.issuer;
    Json(json!({
        "issuer": state.metadata_issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "registration_endpoint": format!("{issuer}/register"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "dpop_signing_alg_values_supported": ["ES256"],
        "authorization_response_iss_parameter_supported": true,
    }))
}

async fn authorize(State(state): State<Arc<AsState>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let field = |name: &str| query.get(name).cloned();
    if field("response_type").as_deref() != Some("code") || field("code_challenge_method").as_deref() != Some("S256") {
        return (StatusCode::BAD_REQUEST, "response_type code with S256 only").into_response();
    }
    let (Some(client_id), Some(redirect_uri), Some(challenge)) =
        (field("client_id"), field("redirect_uri"), field("code_challenge"))
    else {
        return (StatusCode::BAD_REQUEST, "client_id, redirect_uri and code_challenge are required").into_response();
    };
    let code = format!("code{}", state.serial.fetch_add(1, Ordering::SeqCst));
    let grant = Grant {
        client_id,
        redirect_uri: redirect_uri.clone(),
        challenge,
        resource: field("resource"),
        dpop_jkt: field("dpop_jkt"),
    };
    state.codes.lock().unwrap().insert(code.clone(), grant);
    let mut answer = form_urlencoded::Serializer::new(String::new());
    answer.append_pair("code", &code).append_pair("iss", &state.issuer);
    if let Some(value) = field("state") {
        answer.append_pair("state", &value);
    }
    let location = format!("{redirect_uri}?{}", answer.finish());
    if state.person_approves {
        let link = location.replace('&', "&amp;").replace('"', "&quot;");
        return axum::response::Html(format!("<p>Let the client in?</p><a href=\"{link}\">Approve</a>"))
            .into_response();
    }
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

async fn register(State(state): State<Arc<AsState>>, Json(request): Json<Value>) -> Response {
    let id = format!("client{}", state.serial.fetch_add(1, Ordering::SeqCst));
    state.clients.lock().unwrap().push(id.clone());
    let mut response = request.as_object().cloned().unwrap_or_default();
    response.insert("client_id".into(), id.into());
    (StatusCode::CREATED, Json(Value::Object(response))).into_response()
}

fn oauth_error(error: &str) -> Response {
    (StatusCode::BAD_REQUEST, [(header::CACHE_CONTROL, "no-store")], Json(json!({ "error": error }))).into_response()
}

async fn token(
    State(state): State<Arc<AsState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).cloned();
    let grant = match field("grant_type").as_deref() {
        Some("authorization_code") => {
            // Only looked at here: a request refused for its proof (a nonce to fetch) must not
            // use the code up. It is removed once the proof passed.
            let Some(grant) = field("code").and_then(|code| state.codes.lock().unwrap().get(&code).cloned()) else {
                return oauth_error("invalid_grant");
            };
            let verifier = field("code_verifier").unwrap_or_default();
            let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
            if challenge != grant.challenge
                || field("redirect_uri").as_deref() != Some(grant.redirect_uri.as_str())
                || field("client_id").as_deref() != Some(grant.client_id.as_str())
            {
                return oauth_error("invalid_grant");
            }
            Some(grant)
        }
        Some("refresh_token" | "client_credentials") => None,
        _ => return oauth_error("unsupported_grant_type"),
    };
    let proofs = headers.get_all("dpop").iter().map(HeaderValue::as_bytes);
    let accepted = match state.endpoint.check(proofs, grant.as_ref().and_then(|g| g.dpop_jkt.as_deref())).await {
        Ok(accepted) => accepted,
        Err(rejection) => {
            let mut response = (StatusCode::from_u16(rejection.status()).unwrap(), rejection.body()).into_response();
            for (name, value) in rejection.headers() {
                response.headers_mut().insert(name, HeaderValue::from_str(value).unwrap());
            }
            return response;
        }
    };
    let jkt = accepted.jkt().to_owned();
    if let Some(code) = field("code").filter(|_| grant.is_some())
        && state.codes.lock().unwrap().remove(&code).is_none()
    {
        return oauth_error("invalid_grant");
    }
    if field("grant_type").as_deref() == Some("refresh_token") {
        let bound = field("refresh_token").and_then(|token| state.refresh.lock().unwrap().remove(&token));
        if bound.as_deref() != Some(jkt.as_str()) {
            return oauth_error("invalid_grant");
        }
    }
    *state.last_resource.lock().unwrap() = field("resource").or_else(|| grant.and_then(|g| g.resource));
    let serial = state.serial.fetch_add(1, Ordering::SeqCst);
    let refresh_token = format!("rt{serial}");
    state.refresh.lock().unwrap().insert(refresh_token.clone(), jkt.clone());
    let (access_token, token_type) =
        if state.bearer { (format!("bearer.{serial}"), "Bearer") } else { (format!("at.{jkt}.{serial}"), "DPoP") };
    let body = json!({
        "access_token": access_token,
        "token_type": token_type,
        "expires_in": state.expires_in,
        "refresh_token": refresh_token,
    });
    let mut response = ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response();
    for (name, value) in accepted.response_headers() {
        response.headers_mut().insert(name, HeaderValue::from_str(value).unwrap());
    }
    response
}
