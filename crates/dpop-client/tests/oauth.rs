//! OAuth with DPoP against the test authorization server (token endpoint on
//! `dpop_core::token_endpoint`) and a resource server behind `DpopLayer`: MCP discovery, dynamic
//! registration, authorization code with PKCE and `dpop_jkt`, refresh with the same key, client
//! credentials, nonces, and the `token_type` rule; OpenID Connect Discovery as the fallback;
//! a person's approval taken on a loopback redirect (RFC 8252).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use std::time::Duration;

use dpop_client::oauth::{AuthorizationRequest, Discovery, LoopbackRedirect, OAuthClient, TokenType};
use dpop_client::{ClientError, DpopSession};
use dpop_core::DpopKey;
use support::{AuthOptions, AuthServer, FOREIGN_ISSUER, ResourceOptions, ResourceServer, approval_link};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn oauth() -> OAuthClient {
    OAuthClient::new(DpopSession::new(DpopKey::generate().unwrap()))
}

async fn servers(auth: AuthOptions) -> (AuthServer, ResourceServer) {
    let auth = AuthServer::start(auth).await;
    let options =
        ResourceOptions { nonces_on_post: true, authorization_server: Some(auth.issuer.clone()), ..Default::default() };
    (auth, ResourceServer::start(options).await)
}

/// A browser that shows pages and does not follow redirects.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The user agent of a server that approves at once: follows the authorization URL, returns
/// the query of the redirect.
async fn authorize(request: &AuthorizationRequest) -> String {
    let response = browser().get(request.url()).send().await.unwrap();
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    let location = response.headers()["location"].to_str().unwrap();
    location.split_once('?').unwrap().1.to_owned()
}

async fn code_flow(
    oauth: &OAuthClient,
    resource: &ResourceServer,
) -> (Discovery, String, dpop_client::oauth::TokenSet) {
    let discovery = oauth.discover(&resource.url("/api")).await.unwrap();
    let client_id =
        oauth.register(&discovery.authorization_server, "test client", REDIRECT).await.expect("registration");
    let request = oauth.authorization_request(&discovery, &client_id, REDIRECT, None).unwrap();
    assert!(request.url().contains(&format!("dpop_jkt={}", oauth.session().jkt())));
    let code = request.code_from_redirect(&authorize(&request).await).unwrap();
    let tokens = oauth.exchange_code(&discovery, &client_id, &code, &request).await.unwrap();
    (discovery, client_id, tokens)
}

async fn call(oauth: &OAuthClient, resource: &ResourceServer, token: &str) -> (u16, String) {
    let http = dpop_client::reqwest::client(reqwest::Client::new(), oauth.session().clone());
    let response =
        http.post(resource.url("/api")).header("authorization", format!("DPoP {token}")).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn discovery_registration_code_flow_and_refresh_with_nonces_everywhere() {
    let (auth, resource) = servers(AuthOptions { nonces: true, ..Default::default() }).await;
    let oauth = oauth();
    let (discovery, client_id, tokens) = code_flow(&oauth, &resource).await;
    assert_eq!(discovery.resource, resource.url("/api"));
    assert_eq!(discovery.authorization_server.issuer, auth.issuer);
    assert_eq!(auth.registered_clients(), std::slice::from_ref(&client_id));
    assert_eq!(auth.last_resource().as_deref(), Some(resource.url("/api").as_str()), "RFC 8707 resource");
    assert_eq!(tokens.token_type, TokenType::Dpop);
    assert_eq!(call(&oauth, &resource, &tokens.access_token).await, (200, oauth.session().jkt()));

    // Refresh with the same key: a new token, bound to the same key, and the AS nonce cached.
    let refreshed = oauth
        .refresh(&discovery.authorization_server, &client_id, tokens.refresh_token.as_deref().unwrap(), None)
        .await
        .unwrap();
    assert_ne!(refreshed.access_token, tokens.access_token);
    assert_eq!(call(&oauth, &resource, &refreshed.access_token).await.0, 200);
    assert_eq!(auth.counters.refusals(), 1, "one use_dpop_nonce from the AS in the whole session");
    assert!(!format!("{refreshed:?}").contains(&refreshed.access_token), "Debug hides the tokens");
}

#[tokio::test]
async fn a_refresh_token_does_not_work_with_another_key() {
    let (_auth, resource) = servers(AuthOptions::default()).await;
    let oauth = oauth();
    let (discovery, client_id, tokens) = code_flow(&oauth, &resource).await;
    let thief = self::oauth();
    let error = thief
        .refresh(&discovery.authorization_server, &client_id, tokens.refresh_token.as_deref().unwrap(), None)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("invalid_grant"), "{error}");
}

#[tokio::test]
async fn the_code_is_bound_to_the_dpop_jkt_of_the_authorization_request() {
    let (_auth, resource) = servers(AuthOptions::default()).await;
    let oauth = oauth();
    let discovery = oauth.discover(&resource.url("/api")).await.unwrap();
    let request = oauth.authorization_request(&discovery, "preregistered", REDIRECT, None).unwrap();
    let code = request.code_from_redirect(&authorize(&request).await).unwrap();
    // Another key redeems the code: the token endpoint helper refuses it.
    let error = self::oauth().exchange_code(&discovery, "preregistered", &code, &request).await.unwrap_err();
    assert!(error.to_string().contains("invalid_dpop_proof") && error.to_string().contains("dpop_jkt"), "{error}");
}

#[tokio::test]
async fn a_bearer_answer_is_an_error_unless_allowed() {
    let (auth, resource) = servers(AuthOptions { bearer: true, ..Default::default() }).await;
    let server = oauth().authorization_server(&auth.issuer).await.unwrap();
    let error = oauth().client_credentials(&server, "preregistered", None, &resource.url("/api")).await.unwrap_err();
    assert!(matches!(&error, ClientError::OAuth(why) if why.contains("Bearer")), "{error}");
    let tokens = oauth()
        .allow_bearer(true)
        .client_credentials(&server, "preregistered", None, &resource.url("/api"))
        .await
        .unwrap();
    assert_eq!(tokens.token_type, TokenType::Bearer);
}

#[tokio::test]
async fn client_credentials_with_a_wrong_state_and_a_foreign_metadata_document() {
    let (auth, resource) = servers(AuthOptions { nonces: true, ..Default::default() }).await;
    let oauth = oauth();
    let server = oauth.authorization_server(&auth.issuer).await.unwrap();
    let tokens = oauth.client_credentials(&server, "preregistered", None, &resource.url("/api")).await.unwrap();
    assert_eq!(call(&oauth, &resource, &tokens.access_token).await.0, 200);

    let discovery = oauth.discover(&resource.url("/api")).await.unwrap();
    let request = oauth.authorization_request(&discovery, "preregistered", REDIRECT, None).unwrap();
    assert!(request.check_state("forged").is_err());
    // The resource metadata is about /api, not about /upload.
    assert!(oauth.discover(&resource.url("/upload")).await.is_err());
    // An issuer that is not the one its metadata names.
    assert!(oauth.authorization_server(&format!("{}/", auth.issuer)).await.is_err());
}

/// GET paths of the metadata documents a server answered, with their statuses.
fn metadata_requests(auth: &AuthServer) -> Vec<(String, u16)> {
    let log = auth.counters.log();
    log.into_iter()
        .filter(|(_, path, ..)| path.starts_with("/.well-known/"))
        .map(|(_, path, status, _)| (path, status))
        .collect()
}

#[tokio::test]
async fn an_authorization_server_with_only_openid_configuration_is_discovered_and_used() {
    let (auth, resource) = servers(AuthOptions { openid_only: true, nonces: true, ..Default::default() }).await;
    let oauth = oauth();
    let (discovery, _, tokens) = code_flow(&oauth, &resource).await;
    assert_eq!(discovery.authorization_server.issuer, auth.issuer);
    assert_eq!(discovery.authorization_server.token_endpoint, auth.token_endpoint());
    assert_eq!(
        metadata_requests(&auth),
        [
            ("/.well-known/oauth-authorization-server".to_owned(), 404),
            ("/.well-known/openid-configuration".to_owned(), 200)
        ]
    );
    assert_eq!(call(&oauth, &resource, &tokens.access_token).await, (200, oauth.session().jkt()));
}

#[tokio::test]
async fn an_openid_configuration_about_another_issuer_is_refused() {
    let (auth, resource) = servers(AuthOptions { openid_only: true, foreign_issuer: true, ..Default::default() }).await;
    let oauth = oauth();
    let error = oauth.authorization_server(&auth.issuer).await.unwrap_err();
    assert!(matches!(&error, ClientError::OAuth(why) if why.contains("not about")), "{error}");
    // The document was there: it is refused for what it says.
    assert!(metadata_requests(&auth).contains(&("/.well-known/openid-configuration".to_owned(), 200)));
    assert!(oauth.discover(&resource.url("/api")).await.is_err());
    assert!(oauth.authorization_server(FOREIGN_ISSUER).await.is_err(), "nothing is served for the named issuer");
}

/// MCP discovery, registration with the loopback redirect URI, and an authorization request.
async fn loopback_request(
    oauth: &OAuthClient,
    resource: &ResourceServer,
) -> (Discovery, String, LoopbackRedirect, AuthorizationRequest) {
    let discovery = oauth.discover(&resource.url("/api")).await.unwrap();
    let loopback = LoopbackRedirect::bind("/callback").await.unwrap();
    assert!(loopback.redirect_uri().starts_with("http://127.0.0.1:"), "{}", loopback.redirect_uri());
    let client_id =
        oauth.register(&discovery.authorization_server, "test client", loopback.redirect_uri()).await.unwrap();
    let request = oauth.authorization_request(&discovery, &client_id, loopback.redirect_uri(), None).unwrap();
    (discovery, client_id, loopback, request)
}

/// The person: opens the authorization URL, sees a page (no redirect), and approves.
async fn approve(request: &AuthorizationRequest) -> String {
    let page = browser().get(request.url()).send().await.unwrap();
    assert_eq!(page.status(), 200, "the authorization server asks a person");
    approval_link(&page.text().await.unwrap())
}

/// A GET of `url` by the browser: status and page.
async fn visit(url: &str) -> (u16, String) {
    let response = browser().get(url).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

const APPROVAL_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_person_approves_and_the_code_comes_back_on_the_loopback_redirect() {
    let (_auth, resource) = servers(AuthOptions { person_approves: true, nonces: true, ..Default::default() }).await;
    let oauth = oauth();
    let (discovery, client_id, loopback, request) = loopback_request(&oauth, &resource).await;
    let redirect_uri = loopback.redirect_uri().to_owned();
    let person = async {
        let link = approve(&request).await;
        assert!(link.starts_with(&format!("{redirect_uri}?")), "{link}");
        // The browser asks for other things too; they change nothing.
        let origin = redirect_uri.trim_end_matches("/callback");
        assert_eq!(visit(&format!("{origin}/favicon.ico")).await.0, 404);
        visit(&link).await
    };
    let (code, (status, page)) = tokio::join!(loopback.receive(&request, APPROVAL_TIMEOUT), person);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("authorized"), "{page}");
    let tokens = oauth.exchange_code(&discovery, &client_id, &code.unwrap(), &request).await.unwrap();
    assert_eq!(call(&oauth, &resource, &tokens.access_token).await, (200, oauth.session().jkt()));
}

#[tokio::test]
async fn a_loopback_redirect_with_another_state_is_refused_and_changes_nothing() {
    let (_auth, resource) = servers(AuthOptions { person_approves: true, ..Default::default() }).await;
    let oauth = oauth();
    let (_, _, loopback, request) = loopback_request(&oauth, &resource).await;
    let person = async {
        let link = approve(&request).await;
        let forged = link.replace(&format!("state={}", request.state()), "state=forged");
        assert_ne!(forged, link);
        let refused = visit(&forged).await;
        let without_state = link.replace(&format!("&state={}", request.state()), "");
        assert_ne!(without_state, link);
        (refused, visit(&without_state).await, visit(&link).await, link)
    };
    let (code, (forged, without_state, approved, link)) =
        tokio::join!(loopback.receive(&request, APPROVAL_TIMEOUT), person);
    for (status, page) in [forged, without_state] {
        assert_eq!(status, 400, "{page}");
        assert!(page.contains("not the answer"), "{page}");
    }
    // Still waiting after the refusals: the redirect with the request's state is the answer.
    assert_eq!(approved.0, 200, "{}", approved.1);
    assert_eq!(code.unwrap(), request.code_from_redirect(link.split_once('?').unwrap().1).unwrap());
}

#[tokio::test]
async fn an_error_answer_on_the_loopback_redirect_ends_the_wait_with_the_error() {
    let (_auth, resource) = servers(AuthOptions { person_approves: true, ..Default::default() }).await;
    let oauth = oauth();
    let (discovery, _, loopback, request) = loopback_request(&oauth, &resource).await;
    let denied = format!(
        "{}?error=access_denied&state={}&iss={}",
        loopback.redirect_uri(),
        request.state(),
        discovery.authorization_server.issuer
    );
    let (received, (status, _)) = tokio::join!(loopback.receive(&request, APPROVAL_TIMEOUT), visit(&denied));
    assert_eq!(status, 400);
    let error = received.unwrap_err();
    assert!(error.to_string().contains("access_denied"), "{error}");
}

#[tokio::test]
async fn a_loopback_redirect_answers_only_the_request_made_for_it() {
    for path in ["callback", "/callback?x=1", "/callback#f"] {
        assert!(LoopbackRedirect::bind(path).await.is_err(), "{path}");
    }
    let (_auth, resource) = servers(AuthOptions { person_approves: true, ..Default::default() }).await;
    let (_, _, _, request) = loopback_request(&oauth(), &resource).await;
    let other = LoopbackRedirect::bind("/callback").await.unwrap();
    let error = other.receive(&request, APPROVAL_TIMEOUT).await.unwrap_err();
    assert!(error.to_string().contains("another redirect URI"), "{error}");
}
