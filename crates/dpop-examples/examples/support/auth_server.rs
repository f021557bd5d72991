//! A development authorization server: just enough OAuth 2.0 for the examples and the tests.
//!
//! **Not for production.** There are no users and no consent (every authorization request is
//! approved at once, for the user `dev-user`), clients do not authenticate, anyone may register
//! one, the signing key lives in memory (or in a file given by the developer), grants are
//! forgotten at every start, and it speaks plain HTTP.
//!
//! - `GET /.well-known/oauth-authorization-server`: RFC 8414 metadata, with
//!   `dpop_signing_alg_values_supported` (RFC 9449 §5.1).
//! - `GET /jwks`: the public key that signs the access tokens.
//! - `POST /register`: RFC 7591 registration of a public client (`token_endpoint_auth_method`
//!   `none`) for the authorization code grant.
//! - `GET /authorize`: the authorization code grant (RFC 6749 §4.1) with PKCE S256 required
//!   (RFC 7636), the RFC 8707 `resource` and RFC 9449 §10 `dpop_jkt`; approved without asking
//!   anyone, answered with a redirect carrying the code, `state` and `iss` (RFC 9207).
//! - `POST /token`: `authorization_code`, `refresh_token`, and `client_credentials` for the
//!   configured clients. Every token request's DPoP proof is checked by the library's
//!   [`TokenEndpoint`] (RFC 9449 §5, §8: 400 JSON `invalid_dpop_proof` or `use_dpop_nonce` with a
//!   `DPoP-Nonce`; this server always requires its nonces), including the `dpop_jkt` of the
//!   authorization request. The answer is an RFC 9068 JWT access token for the resource, bound to
//!   the proof's key by `cnf.jkt`, of type `DPoP`; refresh tokens are bound to that key too and
//!   replaced at each use.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use dpop_guard::nonce::{NonceIssuer, NonceKey};
use dpop_guard::token_endpoint::{TokenEndpoint, TokenEndpointRejection};
use dpop_guard::{DpopKey, DpopVerifier, access_token_hash};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Error, unix_now};

/// The RFC 8414 metadata path.
pub(crate) const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
/// The subject of tokens from the authorization code grant: the one user, who approves it all.
pub(crate) const DEV_USER: &str = "dev-user";
/// How long an authorization code can be exchanged.
const CODE_LIFETIME: Duration = Duration::from_secs(60);
/// The most clients, codes and refresh tokens kept at once, each: beyond, requests are refused.
const MAX_GRANTS: usize = 10_000;

/// What the server issues, and to whom.
#[derive(Debug)]
pub(crate) struct AuthServerConfig {
    /// The only resource (RFC 8707) it issues tokens for: their `aud`.
    pub(crate) resource: String,
    /// The client ids configured in advance: they may use the client credentials grant, and the
    /// authorization code grant with any loopback redirect URI (RFC 8252 §7.3).
    pub(crate) clients: Vec<String>,
    /// The scopes it grants; a request without `scope` gets them all.
    pub(crate) scopes: Vec<String>,
    /// How long an access token lives.
    pub(crate) token_lifetime: Duration,
    /// The key that signs the access tokens; a new one at every start when `None`.
    pub(crate) signing_key: Option<DpopKey>,
}

impl AuthServerConfig {
    /// Tokens for `resource`, for the client `client_id`, with `scopes`, for 5 minutes, signed by
    /// a new key.
    pub(crate) fn new(resource: &str, client_id: &str, scopes: &[&str]) -> Self {
        Self {
            resource: resource.to_owned(),
            clients: vec![client_id.to_owned()],
            scopes: scopes.iter().map(|&scope| scope.to_owned()).collect(),
            token_lifetime: Duration::from_secs(300),
            signing_key: None,
        }
    }
}

/// A development authorization server: its identity and public keys. Its routes are served by
/// [`AuthServer::start`], or by the caller ([`AuthServer::router`]).
#[derive(Debug)]
pub(crate) struct AuthServer {
    issuer: String,
    public_jwks: Value,
}

struct Issuer {
    config: AuthServerConfig,
    issuer: String,
    /// Checks the DPoP proofs of token requests: nonces, `dpop_jkt`, no replay.
    endpoint: TokenEndpoint,
    /// Signs the access tokens.
    key: DpopKey,
    kid: String,
    issued: AtomicU64,
    grants: Mutex<Grants>,
}

/// What the server remembers between requests.
#[derive(Default)]
struct Grants {
    /// Registered clients and their redirect URIs.
    registered: HashMap<String, Vec<String>>,
    codes: HashMap<String, Code>,
    refresh_tokens: HashMap<String, Grant>,
}

/// An authorization code, until it is exchanged or expires.
struct Code {
    grant: Grant,
    redirect_uri: String,
    code_challenge: String,
    dpop_jkt: Option<String>,
    expires: Instant,
}

/// What a token is issued for.
#[derive(Clone)]
struct Grant {
    client_id: String,
    subject: String,
    scope: String,
    /// The key the refresh token is bound to (RFC 9449 §5); set when tokens are issued.
    jkt: String,
}

impl AuthServer {
    /// Starts the server on an ephemeral port of 127.0.0.1, on the current Tokio runtime; its
    /// issuer identifier is `http://127.0.0.1:port`.
    ///
    /// # Errors
    ///
    /// No port, or no key.
    pub(crate) async fn start(config: AuthServerConfig) -> Result<Self, Error> {
        let listener = tokio::net::TcpListener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let issuer = format!("http://{}", listener.local_addr()?);
        let (server, app) = Self::router(config, &issuer)?;
        super::serve(listener, app, "development authorization server");
        Ok(server)
    }

    /// The server with the issuer identifier `issuer` (`http(s)://host[:port]`, no path), and
    /// its routes, for the caller to serve at that origin.
    ///
    /// # Errors
    ///
    /// An issuer that is not an absolute URL, or no key.
    pub(crate) fn router(mut config: AuthServerConfig, issuer: &str) -> Result<(Self, Router), Error> {
        let key = match config.signing_key.take() {
            Some(key) => key,
            None => DpopKey::generate()?,
        };
        let kid = key.thumbprint().to_string();
        let mut jwk = key.public_jwk();
        if let Some(members) = jwk.as_object_mut() {
            members.insert("kid".into(), kid.clone().into());
            members.insert("use".into(), "sig".into());
            members.insert("alg".into(), "ES256".into());
        }
        let public_jwks = json!({ "keys": [jwk] });
        // Nonces of its own (RFC 9449 §8): this server's, not the resource server's.
        let verifier = DpopVerifier::builder().nonces(NonceIssuer::new(NonceKey::generate(0)?)).build()?;
        let endpoint = TokenEndpoint::new(verifier, &format!("{issuer}/token"))?;
        let state = Arc::new(Issuer {
            issuer: issuer.to_owned(),
            config,
            endpoint,
            key,
            kid,
            issued: AtomicU64::new(0),
            grants: Mutex::new(Grants::default()),
        });
        let jwks = public_jwks.clone();
        let app = Router::new()
            .route(METADATA_PATH, get(metadata))
            .route("/jwks", get(move || std::future::ready(Json(jwks))))
            .route("/register", post(register))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(state);
        tracing::warn!(
            %issuer,
            "development authorization server: approves every request without asking anyone; never use it in production"
        );
        Ok((Self { issuer: issuer.to_owned(), public_jwks }, app))
    }

    /// The issuer identifier (`iss`).
    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Where the public keys are served.
    pub(crate) fn jwks_url(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    /// The public keys as a JWK Set document.
    pub(crate) fn jwks_json(&self) -> String {
        self.public_jwks.to_string()
    }

    /// The token endpoint.
    pub(crate) fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }
}

async fn metadata(State(state): State<Arc<Issuer>>) -> Json<Value> {
    let issuer = &state.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": state.endpoint.url(),
        "registration_endpoint": format!("{issuer}/register"),
        "jwks_uri": format!("{issuer}/jwks"),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": state.config.scopes,
        "dpop_signing_alg_values_supported": ["ES256"],
        "authorization_response_iss_parameter_supported": true,
    }))
}

/// RFC 7591: a public client for the authorization code grant.
async fn register(State(state): State<Arc<Issuer>>, request: Result<Json<Value>, JsonRejection>) -> Response {
    let Ok(Json(request)) = request else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_client_metadata", "The body is not a JSON object");
    };
    let uris: Vec<String> = request
        .get("redirect_uris")
        .and_then(Value::as_array)
        .map(|uris| uris.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    if uris.is_empty() || !uris.iter().all(|uri| usable_redirect_uri(uri)) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            "redirect_uris: https URLs, or http on a loopback address, without fragment",
        );
    }
    if request.get("token_endpoint_auth_method").is_some_and(|method| method != "none") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_client_metadata", "Only public clients (none)");
    }
    let client_id = match random_text() {
        Ok(id) => id,
        Err(error) => return server_error(&error),
    };
    {
        let mut grants = state.grants();
        if grants.registered.len() >= MAX_GRANTS {
            return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "Too many clients");
        }
        grants.registered.insert(client_id.clone(), uris.clone());
    }
    let name = request.get("client_name").and_then(Value::as_str).unwrap_or_default();
    tracing::info!(%client_id, client_name = name, "client registered");
    let body = json!({
        "client_id": client_id,
        "client_id_issued_at": unix_now().unwrap_or_default(),
        "client_name": name,
        "redirect_uris": uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    (StatusCode::CREATED, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// An authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3, RFC 8707, RFC 9449 §10).
#[derive(Debug, Deserialize)]
struct AuthorizationRequest {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    dpop_jkt: Option<String>,
}

/// Approves at once: redirects with a code. Errors about the client or its redirect URI are
/// answered here (never redirected to a URI that is not the client's, RFC 6749 §4.1.2.1); the
/// others go back to the client.
async fn authorize(
    State(state): State<Arc<Issuer>>,
    request: Result<Query<AuthorizationRequest>, QueryRejection>,
) -> Response {
    let Ok(Query(request)) = request else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Malformed authorization request");
    };
    let (Some(client_id), Some(redirect_uri)) = (request.client_id.clone(), request.redirect_uri.clone()) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "client_id and redirect_uri are required");
    };
    if !state.redirect_allowed(&client_id, &redirect_uri) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Unknown client or redirect_uri");
    }
    let back = |error: &str, description: &str| {
        tracing::info!(%client_id, error, description, "authorization request refused");
        let mut params = vec![("error", error), ("error_description", description), ("iss", state.issuer.as_str())];
        params.extend(request.state.as_deref().map(|value| ("state", value)));
        Redirect::to(&with_query(&redirect_uri, &params)).into_response()
    };
    if request.response_type.as_deref() != Some("code") {
        return back("unsupported_response_type", "Only response_type=code");
    }
    let Some(code_challenge) = request.code_challenge.clone() else {
        return back("invalid_request", "PKCE is required (code_challenge)");
    };
    if request.code_challenge_method.as_deref() != Some("S256") {
        return back("invalid_request", "PKCE code_challenge_method must be S256");
    }
    if request.resource.as_deref().is_some_and(|resource| resource != state.config.resource) {
        return back("invalid_target", "Tokens are issued for another resource");
    }
    let Some(scope) = state.granted_scope(request.scope.as_deref()) else {
        return back("invalid_scope", "Unknown scope");
    };
    let code = match random_text() {
        Ok(code) => code,
        Err(error) => return server_error(&error),
    };
    {
        let mut grants = state.grants();
        let now = Instant::now();
        grants.codes.retain(|_, code| code.expires > now);
        if grants.codes.len() >= MAX_GRANTS {
            return back("temporarily_unavailable", "Too many pending authorization codes");
        }
        let grant = Grant { client_id: client_id.clone(), subject: DEV_USER.to_owned(), scope, jkt: String::new() };
        let pending = Code {
            grant,
            redirect_uri: redirect_uri.clone(),
            code_challenge,
            dpop_jkt: request.dpop_jkt.clone(),
            expires: now + CODE_LIFETIME,
        };
        grants.codes.insert(code.clone(), pending);
    }
    tracing::warn!(%client_id, user = DEV_USER, "authorization approved without asking anyone (development server)");
    let mut params = vec![("code", code.as_str()), ("iss", state.issuer.as_str())];
    params.extend(request.state.as_deref().map(|value| ("state", value)));
    Redirect::to(&with_query(&redirect_uri, &params)).into_response()
}

/// A token request (RFC 6749 §4.1.3, §4.4.2, §6; RFC 7636 §4.5; RFC 8707 `resource`).
#[derive(Debug, Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
}

async fn token(
    State(state): State<Arc<Issuer>>,
    headers: HeaderMap,
    request: Result<Form<TokenRequest>, FormRejection>,
) -> Response {
    let Ok(Form(request)) = request else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Malformed token request");
    };
    if request.resource.as_deref().is_some_and(|resource| resource != state.config.resource) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_target", "Tokens are issued for another resource");
    }
    let proofs = headers.get_all("dpop").iter().map(|value| value.as_bytes());
    let grant = match request.grant_type.as_deref() {
        Some("authorization_code") => {
            // The code's `dpop_jkt` is needed to check the proof, and the code is spent only
            // once the proof passed: a client asked for a nonce tries again with the same code.
            let dpop_jkt = request.code.as_deref().and_then(|code| state.grants().codes.get(code)?.dpop_jkt.clone());
            let accepted = match state.endpoint.check(proofs, dpop_jkt.as_deref()).await {
                Ok(accepted) => accepted,
                Err(rejection) => return refusal(&rejection),
            };
            state.redeem_code(&request).map(|grant| (grant, accepted))
        }
        Some("refresh_token") => match state.endpoint.check(proofs, None).await {
            Ok(accepted) => {
                let jkt = accepted.jkt().to_owned();
                state.redeem_refresh_token(&request, &jkt).map(|grant| (grant, accepted))
            }
            Err(rejection) => return refusal(&rejection),
        },
        Some("client_credentials") => match state.endpoint.check(proofs, None).await {
            Ok(accepted) => state.client_credentials(&request).map(|grant| (grant, accepted)),
            Err(rejection) => return refusal(&rejection),
        },
        _ => Err(("unsupported_grant_type", "authorization_code, refresh_token or client_credentials")),
    };
    let (mut grant, accepted) = match grant {
        Ok(granted) => granted,
        Err((error, description)) => {
            let status = if error == "invalid_client" { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST };
            return oauth_error(status, error, description);
        }
    };
    grant.jkt = accepted.jkt().to_owned();
    let with_refresh = request.grant_type.as_deref() != Some("client_credentials");
    let mut response = match state.issue(&grant, with_refresh) {
        Ok(body) => ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response(),
        Err(error) => return server_error(&error),
    };
    // The next nonce, when the one used is past half its life (RFC 9449 §8.2).
    for (name, value) in accepted.response_headers() {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

impl Issuer {
    fn grants(&self) -> std::sync::MutexGuard<'_, Grants> {
        self.grants.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The scope to grant for `requested`: all the configured ones when absent, `None` when it
    /// names another.
    fn granted_scope(&self, requested: Option<&str>) -> Option<String> {
        match requested {
            None => Some(self.config.scopes.join(" ")),
            Some(requested) => requested
                .split(' ')
                .all(|scope| self.config.scopes.iter().any(|known| known == scope))
                .then(|| requested.to_owned()),
        }
    }

    /// A configured client may be sent back to any loopback redirect URI (RFC 8252 §7.3); a
    /// registered one to its own, the port aside for loopback ones.
    fn redirect_allowed(&self, client_id: &str, redirect_uri: &str) -> bool {
        if !usable_redirect_uri(redirect_uri) {
            return false;
        }
        if self.config.clients.iter().any(|id| id == client_id) {
            return is_loopback(redirect_uri);
        }
        let grants = self.grants();
        let Some(registered) = grants.registered.get(client_id) else { return false };
        registered.iter().any(|uri| uri == redirect_uri || same_loopback_uri(uri, redirect_uri))
    }

    /// Spends the code: the same client and redirect URI, and the PKCE verifier (RFC 7636 §4.6).
    fn redeem_code(&self, request: &TokenRequest) -> Result<Grant, (&'static str, &'static str)> {
        let code = request.code.as_deref().ok_or(("invalid_request", "code is required"))?;
        let pending = self.grants().codes.remove(code).ok_or(("invalid_grant", "Unknown or used code"))?;
        if pending.expires <= Instant::now() {
            return Err(("invalid_grant", "The code has expired"));
        }
        if request.client_id.as_deref() != Some(pending.grant.client_id.as_str())
            || request.redirect_uri.as_deref() != Some(pending.redirect_uri.as_str())
        {
            return Err(("invalid_grant", "The code was issued to another client or redirect_uri"));
        }
        let verifier = request.code_verifier.as_deref().ok_or(("invalid_request", "code_verifier is required"))?;
        if !(43..=128).contains(&verifier.len()) || s256(verifier) != pending.code_challenge {
            return Err(("invalid_grant", "PKCE verification failed"));
        }
        Ok(pending.grant)
    }

    /// Spends the refresh token, which only the key it is bound to may use (RFC 9449 §5).
    fn redeem_refresh_token(&self, request: &TokenRequest, jkt: &str) -> Result<Grant, (&'static str, &'static str)> {
        let token = request.refresh_token.as_deref().ok_or(("invalid_request", "refresh_token is required"))?;
        let mut grants = self.grants();
        let grant = grants.refresh_tokens.get(token).ok_or(("invalid_grant", "Unknown or used refresh token"))?;
        if request.client_id.as_deref() != Some(grant.client_id.as_str()) {
            return Err(("invalid_grant", "The refresh token was issued to another client"));
        }
        if grant.jkt != jkt {
            return Err(("invalid_grant", "The refresh token is bound to another DPoP key"));
        }
        grants.refresh_tokens.remove(token).ok_or(("invalid_grant", "Unknown or used refresh token"))
    }

    /// The client credentials grant, for configured clients: the subject is the client.
    fn client_credentials(&self, request: &TokenRequest) -> Result<Grant, (&'static str, &'static str)> {
        let client_id = request.client_id.clone().filter(|id| self.config.clients.contains(id));
        let client_id = client_id.ok_or(("invalid_client", "Unknown client"))?;
        let scope = self.granted_scope(request.scope.as_deref()).ok_or(("invalid_scope", "Unknown scope"))?;
        Ok(Grant { subject: client_id.clone(), client_id, scope, jkt: String::new() })
    }

    /// The token response: an RFC 9068 JWT access token bound to the grant's key (RFC 9449
    /// §6.1), and a refresh token bound to it too.
    fn issue(&self, grant: &Grant, with_refresh: bool) -> Result<Value, Error> {
        let now = unix_now()?;
        let lifetime = i64::try_from(self.config.token_lifetime.as_secs())?;
        let serial = self.issued.fetch_add(1, Ordering::Relaxed);
        let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": self.kid });
        let claims = json!({
            "iss": self.issuer,
            "sub": grant.subject,
            "aud": self.config.resource,
            "exp": now + lifetime,
            "iat": now,
            "jti": format!("{}-{now}-{serial}", self.kid),
            "client_id": grant.client_id,
            "scope": grant.scope,
            "cnf": { "jkt": grant.jkt },
        });
        let access_token = self.key.sign_jws(&header.to_string(), &claims.to_string())?;
        let mut body = json!({
            "access_token": access_token,
            "token_type": "DPoP",
            "expires_in": self.config.token_lifetime.as_secs(),
            "scope": grant.scope,
        });
        if with_refresh {
            let refresh_token = random_text()?;
            let mut grants = self.grants();
            if grants.refresh_tokens.len() >= MAX_GRANTS {
                return Err("too many refresh tokens".into());
            }
            grants.refresh_tokens.insert(refresh_token.clone(), grant.clone());
            if let Some(members) = body.as_object_mut() {
                members.insert("refresh_token".into(), refresh_token.into());
            }
        }
        tracing::info!(client_id = %grant.client_id, sub = %grant.subject, jkt = %grant.jkt, scope = %grant.scope,
                       "access token issued");
        Ok(body)
    }
}

/// RFC 7636 S256: BASE64URL(SHA-256(verifier)), the very transformation of DPoP's `ath`.
fn s256(verifier: &str) -> String {
    access_token_hash(verifier)
}

/// https, or http on a loopback address (RFC 8252 §7.3); no fragment (RFC 6749 §3.1.2).
fn usable_redirect_uri(uri: &str) -> bool {
    !uri.contains('#') && (uri.starts_with("https://") || is_loopback(uri))
}

fn is_loopback(uri: &str) -> bool {
    ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|prefix| uri.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/'])))
}

/// Two loopback URIs that differ at most in the port.
fn same_loopback_uri(a: &str, b: &str) -> bool {
    fn without_port(uri: &str) -> Option<(&str, &str)> {
        let rest = uri.strip_prefix("http://")?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let host = authority.rsplit_once(':').filter(|(_, port)| !port.contains(']')).map_or(authority, |(h, _)| h);
        Some((host, path))
    }
    is_loopback(a) && is_loopback(b) && without_port(a).is_some() && without_port(a) == without_port(b)
}

/// `uri` with `params` added to its query.
fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let encoded: Vec<String> = params.iter().map(|(name, value)| format!("{name}={}", form_encode(value))).collect();
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{}", encoded.join("&"))
}

/// `application/x-www-form-urlencoded` for one value.
fn form_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => encoded.push(char::from(byte)),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// An unguessable string for client ids, codes and refresh tokens: the thumbprint (SHA-256,
/// base64url) of a key just made by the library's generator.
fn random_text() -> Result<String, Error> {
    Ok(DpopKey::generate()?.thumbprint().to_string())
}

/// A refused DPoP proof: the library's response (400 JSON, `DPoP-Nonce` with
/// `use_dpop_nonce`), already logged by it.
fn refusal(rejection: &TokenEndpointRejection) -> Response {
    let status = StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, rejection.body()).into_response();
    for (name, value) in rejection.headers() {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn server_error(error: &Error) -> Response {
    tracing::error!(%error, "development authorization server failed");
    oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "The request could not be completed")
}

/// An RFC 6749 §5.2 error response, logged.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    tracing::info!(status = status.as_u16(), error, description, "authorization server request refused");
    let body = json!({ "error": error, "error_description": description });
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}
