//! A development authorization server: just enough OAuth 2.0 for the demo and the tests.
//!
//! **Not for production.** Clients do not authenticate (any registered `client_id` gets a
//! token), there are no users and no consent, the one signing key lives in memory and changes at
//! every start, tokens cannot be revoked, and it speaks plain HTTP.
//!
//! - `GET /.well-known/oauth-authorization-server`: RFC 8414 metadata, with
//!   `dpop_signing_alg_values_supported` (RFC 9449 §5.1).
//! - `GET /jwks`: the public key that signs the access tokens.
//! - `POST /token`: the `client_credentials` grant. The request must carry a DPoP proof, which
//!   this server verifies itself (RFC 9449 §5: `htm` POST, `htu` this endpoint, no access token
//!   so no `ath`, never replayed). The answer is an RFC 9068 JWT access token for the requested
//!   resource (RFC 8707), bound to the proof's key by `cnf.jkt`, of type `DPoP`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use dpop_guard::{DpopKey, DpopVerifier, ProofRequest};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Error, unix_now};

/// The RFC 8414 metadata path.
pub(crate) const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

/// What the server issues, and to whom.
#[derive(Clone, Debug)]
pub(crate) struct AuthServerConfig {
    /// The only resource (RFC 8707) it issues tokens for: their `aud`.
    pub(crate) resource: String,
    /// The client ids it knows.
    pub(crate) clients: Vec<String>,
    /// The scopes it grants; a request without `scope` gets them all.
    pub(crate) scopes: Vec<String>,
    /// How long a token lives.
    pub(crate) token_lifetime: Duration,
}

impl AuthServerConfig {
    /// Tokens for `resource`, for the client `client_id`, with `scopes`, for 5 minutes.
    pub(crate) fn new(resource: &str, client_id: &str, scopes: &[&str]) -> Self {
        Self {
            resource: resource.to_owned(),
            clients: vec![client_id.to_owned()],
            scopes: scopes.iter().map(|&scope| scope.to_owned()).collect(),
            token_lifetime: Duration::from_secs(300),
        }
    }
}

/// A running development authorization server.
#[derive(Debug)]
pub(crate) struct AuthServer {
    issuer: String,
    public_jwks: Value,
}

struct Issuer {
    config: AuthServerConfig,
    issuer: String,
    token_endpoint: String,
    /// Signs the access tokens.
    key: DpopKey,
    kid: String,
    /// Checks the DPoP proofs sent to the token endpoint (and that none is replayed).
    verifier: DpopVerifier,
    issued: AtomicU64,
}

impl AuthServer {
    /// Starts the server on an ephemeral port of 127.0.0.1, on the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// No port, or no key.
    pub(crate) async fn start(config: AuthServerConfig) -> Result<Self, Error> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let issuer = format!("http://{}", listener.local_addr()?);
        let key = DpopKey::generate()?;
        let kid = key.thumbprint().to_string();
        let mut jwk = key.public_jwk();
        if let Some(members) = jwk.as_object_mut() {
            members.insert("kid".into(), kid.clone().into());
            members.insert("use".into(), "sig".into());
            members.insert("alg".into(), "ES256".into());
        }
        let public_jwks = json!({ "keys": [jwk] });
        let state = Arc::new(Issuer {
            token_endpoint: format!("{issuer}/token"),
            issuer: issuer.clone(),
            config,
            key,
            kid,
            verifier: DpopVerifier::new(),
            issued: AtomicU64::new(0),
        });
        let jwks = public_jwks.clone();
        let app = Router::new()
            .route(METADATA_PATH, get(metadata))
            .route("/jwks", get(move || std::future::ready(Json(jwks))))
            .route("/token", post(token))
            .with_state(state);
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "development authorization server stopped");
            }
        });
        tracing::info!(%issuer, "development authorization server started");
        Ok(Self { issuer, public_jwks })
    }

    /// The issuer identifier (`iss`), `http://127.0.0.1:port`.
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
    Json(json!({
        "issuer": state.issuer,
        "token_endpoint": state.token_endpoint,
        "jwks_uri": format!("{}/jwks", state.issuer),
        "grant_types_supported": ["client_credentials"],
        // RFC 8414 requires the member; without an authorization endpoint there are none.
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": state.config.scopes,
        "dpop_signing_alg_values_supported": ["ES256"],
    }))
}

/// The token request (RFC 6749 §4.4.2, RFC 8707 `resource`).
#[derive(Debug, Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
}

async fn token(State(state): State<Arc<Issuer>>, headers: HeaderMap, Form(request): Form<TokenRequest>) -> Response {
    // RFC 9449 §5: the proof is for this very request, and carries no `ath` (there is no token yet).
    let proofs = headers.get_all("dpop").iter().map(|value| value.as_bytes());
    let proof = match state.verifier.verify(proofs, &ProofRequest::new("POST", &state.token_endpoint)).await {
        Ok(proof) => proof,
        Err(error) => {
            tracing::info!(%error, "token request refused");
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof", &error.description());
        }
    };
    if request.grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Only client_credentials is supported");
    }
    let Some(client_id) = request.client_id.filter(|id| state.config.clients.contains(id)) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unknown client");
    };
    let resource = request.resource.unwrap_or_else(|| state.config.resource.clone());
    if resource != state.config.resource {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_target", "Tokens are issued for another resource");
    }
    let scope = match request.scope {
        None => state.config.scopes.join(" "),
        Some(requested) if requested.split(' ').all(|scope| state.config.scopes.iter().any(|s| s == scope)) => {
            requested
        }
        Some(_) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", "Unknown scope"),
    };
    match issue(&state, &client_id, &resource, &scope, &proof.jkt()) {
        Ok(access_token) => {
            tracing::info!(%client_id, jkt = %proof.jkt(), %scope, "access token issued");
            let body = json!({
                "access_token": access_token,
                "token_type": "DPoP",
                "expires_in": state.config.token_lifetime.as_secs(),
                "scope": scope,
            });
            ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
        }
        Err(error) => {
            tracing::error!(%error, "could not sign an access token");
            oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "Could not issue a token")
        }
    }
}

/// An RFC 9068 JWT access token bound to the key `jkt` (RFC 9449 §6.1).
fn issue(state: &Issuer, client_id: &str, resource: &str, scope: &str, jkt: &str) -> Result<String, Error> {
    let now = unix_now()?;
    let lifetime = i64::try_from(state.config.token_lifetime.as_secs())?;
    let serial = state.issued.fetch_add(1, Ordering::Relaxed);
    let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": state.kid });
    let claims = json!({
        "iss": state.issuer,
        // No user in the client credentials grant: the subject is the client (RFC 9068 §2.2).
        "sub": client_id,
        "aud": resource,
        "exp": now + lifetime,
        "iat": now,
        // Unique: this server's key is new at every start.
        "jti": format!("{}-{serial}", state.kid),
        "client_id": client_id,
        "scope": scope,
        "cnf": { "jkt": jkt },
    });
    Ok(state.key.sign_jws(&header.to_string(), &claims.to_string())?)
}

/// An RFC 6749 §5.2 error response.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({ "error": error, "error_description": description });
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}
