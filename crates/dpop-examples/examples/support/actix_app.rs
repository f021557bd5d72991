//! The same protection on actix-web: `.wrap(Dpop::with_guard(guard))` on the app, and a handler
//! that reads the verified identity with the `Authenticated` extractor.

use std::net::TcpListener;
use std::thread::JoinHandle;

use actix_web::{App, HttpResponse, HttpServer, web};
use dpop_guard::actix::{Authenticated, Dpop};
use dpop_guard::token::{CachedValidator, JwtValidator};
use dpop_guard::{Algorithm, DpopGuard};

use dpop_guard::client::DpopSession;
use dpop_guard::client::oauth::OAuthClient;

use super::auth_server::AuthServer;
use super::client::http_client;
use super::{Error, identity};

/// The client the authorization server knows.
pub(crate) const CLIENT_ID: &str = "actix-client";
/// The scope the API requires.
pub(crate) const SCOPE: &str = "api";

/// `GET /whoami`: who is calling. Only verified requests get here.
async fn whoami(auth: Authenticated) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(identity(&auth).to_string())
}

/// The guard of the API at `base` (its resource identifier and the tokens' audience): tokens
/// from `auth_server`, with the `api` scope.
///
/// # Errors
///
/// An invalid configuration.
pub(crate) fn guard(base: &str, auth_server: &AuthServer) -> Result<DpopGuard, Error> {
    let validator = JwtValidator::builder(auth_server.issuer(), base)
        .jwks_url(auth_server.jwks_url())
        .algorithms([Algorithm::ES256])
        .build()?;
    Ok(DpopGuard::builder()
        .resource(base)
        .authorization_server(auth_server.issuer())
        .scopes_supported([SCOPE])
        .token_validator(CachedValidator::new(validator))
        .required_scopes([SCOPE])
        .build()?)
}

/// Serves the API on `listener` in a new thread, on its own actix runtime, until the process
/// ends. The thread's result is the server's.
pub(crate) fn spawn(listener: TcpListener, guard: DpopGuard) -> JoinHandle<std::io::Result<()>> {
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                App::new()
                    // Every route, and the RFC 9728 metadata document, which the middleware serves.
                    .wrap(Dpop::with_guard(guard.clone()))
                    .route("/whoami", web::get().to(whoami))
            })
            .workers(2)
            .disable_signals()
            .listen(listener)?
            .run()
            .await
        })
    })
}

/// What a client answered: its status, `WWW-Authenticate` and body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) challenge: Option<String>,
    pub(crate) body: String,
}

impl Answer {
    async fn read(response: reqwest::Response) -> Result<Self, Error> {
        let status = response.status().as_u16();
        let challenge = response.headers().get("www-authenticate").and_then(|value| value.to_str().ok());
        let challenge = challenge.map(str::to_owned);
        Ok(Self { status, challenge, body: response.text().await? })
    }
}

/// What a client sees: `GET /whoami` without a token, then, with the client library, a
/// DPoP-bound token of `auth_server` (client credentials) and the request with a proof of
/// `session`'s key.
///
/// # Errors
///
/// No HTTP response, or no token.
pub(crate) async fn try_it(
    base: &str,
    auth_server: &AuthServer,
    session: &DpopSession,
) -> Result<(Answer, Answer), Error> {
    let url = format!("{base}/whoami");
    let anonymous = Answer::read(http_client()?.get(&url).send().await?).await?;
    let oauth = OAuthClient::with_http(http_client()?, session.clone());
    let server = oauth.authorization_server(auth_server.issuer()).await?;
    let tokens = oauth.client_credentials(&server, CLIENT_ID, Some(SCOPE), base).await?;
    let http = dpop_guard::client::reqwest::client(http_client()?, session.clone());
    let request = http.get(&url).header("authorization", format!("DPoP {}", tokens.access_token));
    let identified = Answer::read(request.send().await?).await?;
    Ok((anonymous, identified))
}
