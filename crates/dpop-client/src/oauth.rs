//! OAuth 2.0 with DPoP: token requests that carry a proof (RFC 9449 §5), `dpop_jkt` on the
//! authorization request (§10), and MCP's discovery (RFC 9728 → RFC 8414, OpenID Connect
//! Discovery as fallback → RFC 7591 dynamic registration).
//!
//! Token requests — authorization code with PKCE S256 (RFC 7636) and the RFC 8707 `resource`,
//! refresh token, client credentials — go through the [`DpopMiddleware`](crate::DpopMiddleware):
//! a proof without `ath` whose `htu` is the token endpoint, and one retry when the authorization
//! server answers `use_dpop_nonce` (400 JSON). The answer's `token_type` must be `DPoP`; a
//! `Bearer` token is an error unless [`OAuthClient::allow_bearer`] says the caller takes one.
//! Refreshing uses the same session, so the same key: a public client's refresh token is bound
//! to it (§5).
//!
//! Why not rmcp's `auth` feature: its OAuth client (on the `oauth2` crate) sends token requests
//! with a plain `reqwest::Client` and reads only the body of a refusal, so it can neither sign
//! each token request nor follow an authorization server's `DPoP-Nonce`; wrapping it would still
//! leave `dpop_jkt` and the `token_type` rule to write here. This module is that one OAuth client.
//!
//! ```no_run
//! use dpop_client::DpopSession;
//! use dpop_client::oauth::OAuthClient;
//! use dpop_core::DpopKey;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let oauth = OAuthClient::new(DpopSession::new(DpopKey::generate()?));
//! let discovered = oauth.discover("https://mcp.example.com/mcp").await?;
//! let client_id = oauth.register(&discovered.authorization_server, "my MCP client", "http://127.0.0.1:7777/cb").await?;
//! let request = oauth.authorization_request(&discovered, &client_id, "http://127.0.0.1:7777/cb", None)?;
//! // Send the user to request.url(); the redirect to the redirect URI brings the answer back.
//! # let redirect_query = String::new();
//! let code = request.code_from_redirect(&redirect_query)?;
//! let tokens = oauth.exchange_code(&discovered, &client_id, &code, &request).await?;
//! # let _ = tokens;
//! # Ok(())
//! # }
//! ```
//!
//! A native client whose user approves in a browser takes the answer on a loopback redirect URI
//! (RFC 8252 §7.3): [`LoopbackRedirect`].

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use rand_core::RngCore as _;
use reqwest_middleware::ClientWithMiddleware;
use serde_json::Value;
use sha2::Digest as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::error::ClientError;
use crate::session::DpopSession;

/// Metadata documents and token answers are small; nothing larger is read.
const MAX_DOCUMENT: usize = 256 * 1024;
/// The largest request head the loopback listener reads: the redirect's query is in it.
const MAX_REDIRECT_HEAD: usize = 16 * 1024;
/// How long a connection to the loopback listener may take to send its request and take the
/// answer: a browser sends at once; a silent connection must not hold a slot for long.
const REDIRECT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// The most connections the loopback listener answers at once; more are closed unanswered.
const MAX_REDIRECT_CONNECTIONS: usize = 32;

/// What an authorization server publishes (RFC 8414 §2), as far as a DPoP client needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthorizationServer {
    /// `issuer`.
    pub issuer: String,
    /// `authorization_endpoint`, for the authorization code grant.
    pub authorization_endpoint: Option<String>,
    /// `token_endpoint`.
    pub token_endpoint: String,
    /// `registration_endpoint` (RFC 7591).
    pub registration_endpoint: Option<String>,
    /// `dpop_signing_alg_values_supported` (RFC 9449 §5.1).
    pub dpop_algorithms: Vec<String>,
    /// `authorization_response_iss_parameter_supported` (RFC 9207): its authorization
    /// responses carry `iss`, so one without it is refused.
    pub authorization_response_iss: bool,
}

/// The result of MCP discovery: the protected resource and its authorization server.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Discovery {
    /// The resource identifier (RFC 9728 `resource`): the RFC 8707 `resource` of token requests.
    pub resource: String,
    /// The first authorization server the resource names.
    pub authorization_server: AuthorizationServer,
    /// `scopes_supported` of the resource, if published.
    pub scopes: Vec<String>,
}

/// How the token may be presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    /// Bound to the session's key: `Authorization: DPoP`.
    Dpop,
    /// Not bound: `Authorization: Bearer` (only with [`OAuthClient::allow_bearer`]).
    Bearer,
}

/// A token response (RFC 6749 §5.1). `Debug` does not show the tokens.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenSet {
    /// `access_token`.
    pub access_token: String,
    /// `token_type`.
    pub token_type: TokenType,
    /// `expires_in`, seconds.
    pub expires_in: Option<u64>,
    /// `refresh_token`.
    pub refresh_token: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// An authorization request (RFC 6749 §4.1.1 with PKCE, RFC 8707 `resource` and RFC 9449 §10
/// `dpop_jkt`): the URL to send the user to, and the secrets to finish with. `Debug` does not
/// show the PKCE verifier.
#[derive(Clone)]
pub struct AuthorizationRequest {
    url: String,
    state: String,
    code_verifier: String,
    redirect_uri: String,
    resource: String,
    /// The issuer the request goes to: the `iss` of its answer (RFC 9207).
    issuer: String,
    /// Whether the answer must carry `iss` (the server's metadata says it sends it).
    requires_iss: bool,
}

impl AuthorizationRequest {
    /// Where to send the user.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `state` the redirect must bring back.
    #[must_use]
    pub fn state(&self) -> &str {
        &self.state
    }

    /// Checks the `state` of the redirect (RFC 6749 §10.12).
    ///
    /// # Errors
    ///
    /// Another state: the redirect is not the answer to this request.
    pub fn check_state(&self, state: &str) -> Result<(), ClientError> {
        if !bool::from(subtle_eq(state.as_bytes(), self.state.as_bytes())) {
            return Err(ClientError::OAuth("the redirect's state is not this request's".into()).logged());
        }
        Ok(())
    }

    /// The authorization code, from the query of the redirect to the redirect URI (RFC 6749
    /// §4.1.2): the `state` must be this request's (§10.12), `iss` the authorization server's
    /// (RFC 9207; required when its metadata says it sends it), and an `error` answer is an
    /// error.
    ///
    /// # Errors
    ///
    /// Another or no `state`, a parameter given twice, another or a missing `iss`, an `error`
    /// from the authorization server, or no `code`.
    pub fn code_from_redirect(&self, query: &str) -> Result<String, ClientError> {
        match self.read_redirect(query) {
            Redirect::Foreign(error) => Err(error),
            Redirect::Answer(answer) => answer,
        }
    }

    /// Whether a redirect's query is the answer to this request, and what it says.
    fn read_redirect(&self, query: &str) -> Redirect {
        let mut params = HashMap::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if params.insert(name, value).is_some() {
                return Redirect::Foreign(oauth("the redirect gives a parameter twice (RFC 6749 §3.1)"));
            }
        }
        let param = |name: &str| params.get(name).map(AsRef::as_ref);
        if let Err(error) = self.check_state(param("state").unwrap_or_default()) {
            return Redirect::Foreign(error);
        }
        Redirect::Answer(self.code_from_answer(param))
    }

    /// The code of an answer whose `state` is this request's.
    fn code_from_answer<'a>(&self, param: impl Fn(&str) -> Option<&'a str>) -> Result<String, ClientError> {
        match param("iss") {
            Some(iss) if iss != self.issuer => {
                return Err(oauth("the authorization response is from another issuer (RFC 9207)"));
            }
            None if self.requires_iss => {
                return Err(oauth("the authorization response has no iss, which its server promises (RFC 9207)"));
            }
            _ => {}
        }
        if let Some(error) = param("error") {
            let description = param("error_description").unwrap_or("no description");
            return Err(oauth(&format!("authorization refused: {error}: {description}")));
        }
        param("code")
            .filter(|code| !code.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| oauth("the authorization response has no code"))
    }
}

/// What a request to the redirect URI carried.
enum Redirect {
    /// Not the answer to the authorization request (another or no `state`): ignored.
    Foreign(ClientError),
    /// The authorization server's answer: the code, or why there is none.
    Answer(Result<String, ClientError>),
}

impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationRequest").field("url", &self.url).finish_non_exhaustive()
    }
}

/// An OAuth 2.0 client whose token requests carry DPoP proofs of the session's key.
#[derive(Clone, Debug)]
pub struct OAuthClient {
    session: DpopSession,
    dpop: ClientWithMiddleware,
    plain: reqwest::Client,
    allow_bearer: bool,
}

impl OAuthClient {
    /// A client for `session` over a default `reqwest::Client`.
    #[must_use]
    pub fn new(session: DpopSession) -> Self {
        Self::with_http(reqwest::Client::new(), session)
    }

    /// A client for `session` over `http` (timeouts, TLS and proxies as configured there).
    #[must_use]
    pub fn with_http(http: reqwest::Client, session: DpopSession) -> Self {
        let dpop = crate::reqwest::client(http.clone(), session.clone());
        Self { session, dpop, plain: http, allow_bearer: false }
    }

    /// Whether a `token_type: Bearer` answer is taken (default: no, it is an error: the token
    /// would not be bound to the key).
    #[must_use]
    pub const fn allow_bearer(mut self, allow: bool) -> Self {
        self.allow_bearer = allow;
        self
    }

    /// The session whose key signs the token requests.
    #[must_use]
    pub const fn session(&self) -> &DpopSession {
        &self.session
    }

    /// MCP discovery for the resource at `resource_url`: an unauthenticated request answered 401
    /// names the RFC 9728 metadata (`resource_metadata`; without it, the well-known URL of the
    /// resource), which names the authorization server, whose RFC 8414 metadata (or OpenID
    /// Connect Discovery document) gives the endpoints.
    ///
    /// # Errors
    ///
    /// A document is missing, not JSON, or about another resource or issuer.
    pub async fn discover(&self, resource_url: &str) -> Result<Discovery, ClientError> {
        let response = self.plain.get(resource_url).send().await.map_err(http_error)?;
        let params = crate::challenge::challenge_params(response.headers());
        let metadata_url = match crate::challenge::any_param(&params, "resource_metadata") {
            Some(url) => url.to_owned(),
            None => well_known(resource_url, "oauth-protected-resource")?,
        };
        let document = self.get_json(&metadata_url).await?;
        let resource = text(&document, "resource").ok_or_else(|| oauth("resource metadata without `resource`"))?;
        if resource.trim_end_matches('/')
            != resource_url.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/')
        {
            return Err(oauth(&format!("the resource metadata is about {resource}, not {resource_url}")));
        }
        let issuer = document
            .get("authorization_servers")
            .and_then(Value::as_array)
            .and_then(|servers| servers.first())
            .and_then(Value::as_str)
            .ok_or_else(|| oauth("the resource metadata names no authorization server"))?
            .to_owned();
        let authorization_server = self.authorization_server(&issuer).await?;
        let scopes = strings(&document, "scopes_supported");
        Ok(Discovery { resource, authorization_server, scopes })
    }

    /// The metadata of the authorization server `issuer`: RFC 8414, then OpenID Connect
    /// Discovery; the document's `issuer` must be `issuer` (RFC 8414 §3.3).
    ///
    /// # Errors
    ///
    /// Neither document, or one about another issuer, or without a token endpoint.
    pub async fn authorization_server(&self, issuer: &str) -> Result<AuthorizationServer, ClientError> {
        let oauth_url = well_known(issuer, "oauth-authorization-server")?;
        let document = match self.get_json(&oauth_url).await {
            Ok(document) => document,
            Err(error) => {
                tracing::debug!(%error, "no RFC 8414 metadata; trying OpenID Connect Discovery");
                self.get_json(&format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))).await?
            }
        };
        if text(&document, "issuer").as_deref() != Some(issuer) {
            return Err(oauth(&format!("the authorization server metadata is not about {issuer}")));
        }
        let server = AuthorizationServer {
            issuer: issuer.to_owned(),
            authorization_endpoint: text(&document, "authorization_endpoint"),
            token_endpoint: text(&document, "token_endpoint")
                .ok_or_else(|| oauth("the authorization server metadata has no token endpoint"))?,
            registration_endpoint: text(&document, "registration_endpoint"),
            dpop_algorithms: strings(&document, "dpop_signing_alg_values_supported"),
            authorization_response_iss: document
                .get("authorization_response_iss_parameter_supported")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        };
        if !server.dpop_algorithms.iter().any(|alg| alg == "ES256") {
            return Err(oauth("the authorization server does not say it takes ES256 DPoP proofs"));
        }
        Ok(server)
    }

    /// Registers a public client (RFC 7591) for the authorization code grant with `redirect_uri`;
    /// returns its `client_id`. For when no client id is configured.
    ///
    /// # Errors
    ///
    /// No registration endpoint, or the server refused.
    pub async fn register(
        &self,
        server: &AuthorizationServer,
        client_name: &str,
        redirect_uri: &str,
    ) -> Result<String, ClientError> {
        let endpoint = server
            .registration_endpoint
            .as_deref()
            .ok_or_else(|| oauth("the server offers no dynamic registration"))?;
        let request = serde_json::json!({
            "client_name": client_name,
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "dpop_bound_access_tokens": true,
        });
        let response = self
            .plain
            .post(endpoint)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(request.to_string())
            .send()
            .await
            .map_err(http_error)?;
        let (status, document) = read_json(response).await?;
        if !status.is_success() {
            return Err(refused("registration", &document));
        }
        let client_id =
            text(&document, "client_id").ok_or_else(|| oauth("the registration answer has no client_id"))?;
        tracing::info!(%client_id, "registered an OAuth client");
        Ok(client_id)
    }

    /// An authorization request for the resource of `discovery`: PKCE S256, a random `state`,
    /// `resource` (RFC 8707), `dpop_jkt` of the session's key (RFC 9449 §10), and `scope` when
    /// given.
    ///
    /// # Errors
    ///
    /// The server has no authorization endpoint, or no random bytes.
    pub fn authorization_request(
        &self,
        discovery: &Discovery,
        client_id: &str,
        redirect_uri: &str,
        scope: Option<&str>,
    ) -> Result<AuthorizationRequest, ClientError> {
        let endpoint = discovery
            .authorization_server
            .authorization_endpoint
            .as_deref()
            .ok_or_else(|| oauth("the server has no authorization endpoint"))?;
        let code_verifier = random_text(32)?;
        let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(code_verifier.as_bytes()));
        let state = random_text(16)?;
        let jkt = self.session.jkt();
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", &state)
            .append_pair("resource", &discovery.resource)
            .append_pair("dpop_jkt", &jkt);
        if let Some(scope) = scope {
            query.append_pair("scope", scope);
        }
        let separator = if endpoint.contains('?') { '&' } else { '?' };
        let url = format!("{endpoint}{separator}{}", query.finish());
        Ok(AuthorizationRequest {
            url,
            state,
            code_verifier,
            redirect_uri: redirect_uri.to_owned(),
            resource: discovery.resource.clone(),
            issuer: discovery.authorization_server.issuer.clone(),
            requires_iss: discovery.authorization_server.authorization_response_iss,
        })
    }

    /// Exchanges the authorization code for tokens (RFC 6749 §4.1.3 with the PKCE verifier and
    /// `resource`), with a proof of the session's key.
    ///
    /// # Errors
    ///
    /// The server refused, or answered something other than a DPoP token.
    pub async fn exchange_code(
        &self,
        discovery: &Discovery,
        client_id: &str,
        code: &str,
        request: &AuthorizationRequest,
    ) -> Result<TokenSet, ClientError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", request.redirect_uri.as_str()),
            ("client_id", client_id),
            ("code_verifier", request.code_verifier.as_str()),
            ("resource", request.resource.as_str()),
        ];
        self.token_request(&discovery.authorization_server, &form).await
    }

    /// Refreshes (RFC 6749 §6) with the same key; `resource` narrows the new token (RFC 8707).
    ///
    /// # Errors
    ///
    /// The server refused, or answered something other than a DPoP token.
    pub async fn refresh(
        &self,
        server: &AuthorizationServer,
        client_id: &str,
        refresh_token: &str,
        resource: Option<&str>,
    ) -> Result<TokenSet, ClientError> {
        let mut form =
            vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client_id)];
        if let Some(resource) = resource {
            form.push(("resource", resource));
        }
        self.token_request(server, &form).await
    }

    /// The client credentials grant (RFC 6749 §4.4) for `resource`.
    ///
    /// # Errors
    ///
    /// The server refused, or answered something other than a DPoP token.
    pub async fn client_credentials(
        &self,
        server: &AuthorizationServer,
        client_id: &str,
        scope: Option<&str>,
        resource: &str,
    ) -> Result<TokenSet, ClientError> {
        let mut form = vec![("grant_type", "client_credentials"), ("client_id", client_id), ("resource", resource)];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        self.token_request(server, &form).await
    }

    async fn token_request(
        &self,
        server: &AuthorizationServer,
        form: &[(&str, &str)],
    ) -> Result<TokenSet, ClientError> {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let response = self
            .dpop
            .post(&server.token_endpoint)
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(middleware_error)?;
        let (status, document) = read_json(response).await?;
        if !status.is_success() {
            return Err(refused("token request", &document));
        }
        let access_token =
            text(&document, "access_token").ok_or_else(|| oauth("the token answer has no access_token"))?;
        let token_type = match text(&document, "token_type") {
            Some(kind) if kind.eq_ignore_ascii_case("DPoP") => TokenType::Dpop,
            Some(kind) if kind.eq_ignore_ascii_case("Bearer") && self.allow_bearer => {
                tracing::warn!("the authorization server issued a Bearer token, not bound to the DPoP key");
                TokenType::Bearer
            }
            Some(kind) if kind.eq_ignore_ascii_case("Bearer") => {
                return Err(oauth("the authorization server issued a Bearer token, not a DPoP-bound one"));
            }
            _ => return Err(oauth("the token answer's token_type is neither DPoP nor Bearer")),
        };
        Ok(TokenSet {
            access_token,
            token_type,
            expires_in: document.get("expires_in").and_then(Value::as_u64),
            refresh_token: text(&document, "refresh_token"),
            scope: text(&document, "scope"),
        })
    }

    async fn get_json(&self, url: &str) -> Result<Value, ClientError> {
        let response =
            self.plain.get(url).header(http::header::ACCEPT, "application/json").send().await.map_err(http_error)?;
        let (status, document) = read_json(response).await?;
        if !status.is_success() {
            return Err(oauth(&format!("GET {url}: HTTP {status}")));
        }
        Ok(document)
    }
}

/// A loopback redirect URI (RFC 8252 §7.3) and the listener behind it: how a native client
/// takes the authorization code when a person approves in a browser.
///
/// [`bind`](Self::bind) listens on 127.0.0.1 on a port the system picks; its
/// [`redirect_uri`](Self::redirect_uri) goes into the registration and the authorization
/// request; [`receive`](Self::receive) answers the browser until a redirect carries that
/// request's `state`, and returns the code. A request with another `state` (a stale tab, or
/// another program on this machine) is answered 400 and changes nothing.
///
/// ```no_run
/// use std::time::Duration;
/// use dpop_client::oauth::{Discovery, LoopbackRedirect, OAuthClient};
///
/// # async fn run(oauth: OAuthClient, discovery: Discovery) -> Result<(), dpop_client::ClientError> {
/// let loopback = LoopbackRedirect::bind("/callback").await?;
/// let request = oauth.authorization_request(&discovery, "my-client", loopback.redirect_uri(), None)?;
/// println!("Open {} to approve", request.url());
/// let code = loopback.receive(&request, Duration::from_secs(600)).await?;
/// let tokens = oauth.exchange_code(&discovery, "my-client", &code, &request).await?;
/// # let _ = tokens;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct LoopbackRedirect {
    listener: TcpListener,
    path: String,
    redirect_uri: String,
}

impl LoopbackRedirect {
    /// Listens on 127.0.0.1, on an ephemeral port, for redirects to `path` (e.g. `/callback`).
    ///
    /// # Errors
    ///
    /// `path` does not start with `/` or has a query or fragment, or no port could be bound.
    pub async fn bind(path: &str) -> Result<Self, ClientError> {
        if !path.starts_with('/') || path.contains(['?', '#']) {
            return Err(oauth("a loopback redirect path starts with / and has no query or fragment"));
        }
        let listener = TcpListener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|error| ClientError::Loopback(error).logged())?;
        let address = listener.local_addr().map_err(|error| ClientError::Loopback(error).logged())?;
        Ok(Self { listener, path: path.to_owned(), redirect_uri: format!("http://{address}{path}") })
    }

    /// `http://127.0.0.1:<port><path>`: the `redirect_uri` to register and to authorize with.
    #[must_use]
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits up to `timeout` for the answer to `request` and returns its code (see
    /// [`AuthorizationRequest::code_from_redirect`]). Each browser request is answered with a
    /// short page: 404 beside the path, 400 for a redirect without the request's `state`.
    ///
    /// # Errors
    ///
    /// `request` was made for another redirect URI; nothing came in time; the answer with the
    /// request's `state` was an error, from another issuer, or without a code; the listener
    /// failed.
    pub async fn receive(self, request: &AuthorizationRequest, timeout: Duration) -> Result<String, ClientError> {
        if request.redirect_uri != self.redirect_uri {
            return Err(oauth("the authorization request names another redirect URI than this listener's"));
        }
        tokio::time::timeout(timeout, self.serve(request))
            .await
            .unwrap_or_else(|_| Err(oauth("no authorization response came to the loopback redirect in time")))
    }

    /// Answers connections, several at once (a browser may open some it never uses), until one
    /// brings the answer to `request`.
    async fn serve(&self, request: &AuthorizationRequest) -> Result<String, ClientError> {
        let mut connections = FuturesUnordered::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, _) = accepted.map_err(|error| ClientError::Loopback(error).logged())?;
                    if connections.len() < MAX_REDIRECT_CONNECTIONS {
                        connections.push(self.answer(stream, request));
                    } else {
                        tracing::debug!("too many connections to the loopback redirect: one closed unanswered");
                    }
                }
                Some(answered) = connections.next() => {
                    if let Some(answer) = answered {
                        return answer;
                    }
                }
            }
        }
    }

    /// Reads one request and answers it; the answer to `request` when it is one.
    async fn answer(
        &self,
        mut stream: TcpStream,
        request: &AuthorizationRequest,
    ) -> Option<Result<String, ClientError>> {
        let head = tokio::time::timeout(REDIRECT_CONNECTION_TIMEOUT, read_head(&mut stream)).await.ok()??;
        let query = get_target(&head).and_then(|target| {
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            (path == self.path).then_some(query)
        });
        let (status, page, answer) = match query.map(|query| request.read_redirect(query)) {
            None => ("404 Not Found", "Not found.", None),
            Some(Redirect::Foreign(_)) => {
                ("400 Bad Request", "This is not the answer to the client's authorization request.", None)
            }
            Some(Redirect::Answer(Ok(code))) => {
                ("200 OK", "The client is authorized; you can close this window.", Some(Ok(code)))
            }
            Some(Redirect::Answer(Err(error))) => {
                ("400 Bad Request", "The authorization did not succeed; the client says why.", Some(Err(error)))
            }
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\
             cache-control: no-store\r\nconnection: close\r\n\r\n{page}",
            page.len()
        );
        // The answer counts whether or not the browser reads the page.
        let written = tokio::time::timeout(REDIRECT_CONNECTION_TIMEOUT, async {
            stream.write_all(response.as_bytes()).await?;
            stream.shutdown().await
        });
        if !matches!(written.await, Ok(Ok(()))) {
            tracing::debug!("the browser did not take the loopback redirect's page");
        }
        answer
    }
}

/// The request head (up to the empty line), or `None` when the connection ends first or sends
/// more than [`MAX_REDIRECT_HEAD`].
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await.ok()?;
        if read == 0 || head.len().saturating_add(read) > MAX_REDIRECT_HEAD {
            return None;
        }
        head.extend_from_slice(buffer.get(..read)?);
    }
    String::from_utf8(head).ok()
}

/// The origin-form target of a `GET` request line (RFC 9112 §3).
fn get_target(head: &str) -> Option<&str> {
    let line = head.split("\r\n").next()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    (method == "GET" && target.starts_with('/') && version.starts_with("HTTP/1.") && parts.next().is_none())
        .then_some(target)
}

/// RFC 8615 / RFC 8414 §3.1 / RFC 9728 §3.1: `/.well-known/<name>` between host and path.
fn well_known(url: &str, name: &str) -> Result<String, ClientError> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| ClientError::InvalidUrl.logged())?;
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(authority, path)| (authority, path));
    let path = path.trim_end_matches('/');
    Ok(if path.is_empty() {
        format!("{scheme}://{authority}/.well-known/{name}")
    } else {
        format!("{scheme}://{authority}/.well-known/{name}/{path}")
    })
}

async fn read_json(mut response: reqwest::Response) -> Result<(http::StatusCode, Value), ClientError> {
    let status = response.status();
    let body = crate::reqwest::read_limited(&mut response, MAX_DOCUMENT)
        .await
        .map_err(http_error)?
        .ok_or_else(|| ClientError::ResponseTooLarge { limit: MAX_DOCUMENT }.logged())?;
    let document =
        serde_json::from_slice(&body).map_err(|_| oauth(&format!("HTTP {status}: the answer is not JSON")))?;
    Ok((status, document))
}

fn refused(what: &str, document: &Value) -> ClientError {
    let error = text(document, "error").unwrap_or_else(|| "no error code".to_owned());
    match text(document, "error_description") {
        Some(description) => oauth(&format!("{what} refused: {error}: {description}")),
        None => oauth(&format!("{what} refused: {error}")),
    }
}

fn text(document: &Value, name: &str) -> Option<String> {
    document.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn strings(document: &Value, name: &str) -> Vec<String> {
    document
        .get(name)
        .and_then(Value::as_array)
        .map(|values| values.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// `bytes` random bytes, base64url.
fn random_text(bytes: usize) -> Result<String, ClientError> {
    let mut random = vec![0u8; bytes];
    rand_core::OsRng.try_fill_bytes(&mut random).map_err(|_| ClientError::Random.logged())?;
    Ok(URL_SAFE_NO_PAD.encode(random))
}

/// Constant-time equality of two byte strings of possibly different lengths.
fn subtle_eq(a: &[u8], b: &[u8]) -> subtle::Choice {
    use subtle::ConstantTimeEq as _;
    if a.len() == b.len() { a.ct_eq(b) } else { subtle::Choice::from(0) }
}

fn oauth(why: &str) -> ClientError {
    ClientError::OAuth(why.to_owned()).logged()
}

fn http_error(error: reqwest::Error) -> ClientError {
    ClientError::Http(Box::new(error)).logged()
}

fn middleware_error(error: reqwest_middleware::Error) -> ClientError {
    match error {
        reqwest_middleware::Error::Reqwest(error) => http_error(error),
        reqwest_middleware::Error::Middleware(error) => match error.downcast::<ClientError>() {
            Ok(error) => error,
            Err(error) => ClientError::Http(error.into()).logged(),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn well_known_urls_go_between_host_and_path() {
        assert_eq!(
            well_known("https://mcp.example.com/mcp", "oauth-protected-resource").unwrap(),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            well_known("https://as.example.com", "oauth-authorization-server").unwrap(),
            "https://as.example.com/.well-known/oauth-authorization-server"
        );
        assert!(well_known("as.example.com", "x").is_err());
    }

    fn request(requires_iss: bool) -> AuthorizationRequest {
        AuthorizationRequest {
            url: "https://as.example/authorize".into(),
            state: "s1".into(),
            code_verifier: "v".into(),
            redirect_uri: "http://127.0.0.1:1/cb".into(),
            resource: "https://mcp.example/mcp".into(),
            issuer: "https://as.example".into(),
            requires_iss,
        }
    }

    #[test]
    fn the_code_of_a_redirect_is_taken_only_from_this_request_and_issuer() {
        let request = request(true);
        assert_eq!(request.code_from_redirect("code=c%2B1&state=s1&iss=https%3A%2F%2Fas.example").unwrap(), "c+1");
        let refused = [
            ("code=c&state=s2&iss=https://as.example", "state"),
            ("code=c&iss=https://as.example", "state"),
            ("code=c&state=s1&state=s1&iss=https://as.example", "twice"),
            ("code=c&code=d&state=s1&iss=https://as.example", "twice"),
            ("code=c&state=s1&iss=https://evil.example", "another issuer"),
            ("code=c&state=s1", "no iss"),
            ("error=access_denied&error_description=no%21&state=s1&iss=https://as.example", "access_denied: no!"),
            ("error=access_denied&state=s1&iss=https://evil.example", "another issuer"),
            ("state=s1&iss=https://as.example", "no code"),
            ("code=&state=s1&iss=https://as.example", "no code"),
        ];
        for (query, why) in refused {
            let error = request.code_from_redirect(query).unwrap_err().to_string();
            assert!(error.contains(why), "{query}: {error}");
        }
        assert_eq!(self::request(false).code_from_redirect("code=c&state=s1").unwrap(), "c", "iss not promised");
    }

    #[test]
    fn only_an_origin_form_get_is_a_redirect() {
        assert_eq!(get_target("GET /cb?code=1 HTTP/1.1\r\nHost: x\r\n\r\n"), Some("/cb?code=1"));
        for head in [
            "POST /cb HTTP/1.1\r\n\r\n",
            "GET http://127.0.0.1/cb HTTP/1.1\r\n\r\n",
            "GET /cb HTTP/1.1 x\r\n\r\n",
            "GET /cb\r\n\r\n",
            "GET /cb SPDY/3\r\n\r\n",
        ] {
            assert_eq!(get_target(head), None, "{head:?}");
        }
    }

    #[test]
    fn state_comparison_needs_equal_strings() {
        assert!(bool::from(subtle_eq(b"abc", b"abc")));
        assert!(!bool::from(subtle_eq(b"abc", b"abd")));
        assert!(!bool::from(subtle_eq(b"abc", b"ab")));
    }
}
