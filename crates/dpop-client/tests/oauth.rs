//! OAuth with DPoP against the test authorization server (token endpoint on
//! `dpop_core::token_endpoint`) and a resource server behind `DpopLayer`: MCP discovery, dynamic
//! registration, authorization code with PKCE and `dpop_jkt`, refresh with the same key, client
//! credentials, nonces, and the `token_type` rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use dpop_client::oauth::{AuthorizationRequest, Discovery, OAuthClient, TokenType};
use dpop_client::{ClientError, DpopSession};
use dpop_core::DpopKey;
use support::{AuthOptions, AuthServer, ResourceOptions, ResourceServer};

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

/// The user agent: follows the authorization URL, returns the redirect's code and state.
async fn authorize(request: &AuthorizationRequest) -> (String, String) {
    let agent = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = agent.get(request.url()).send().await.unwrap();
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let query = location.split_once('?').unwrap().1;
    let param =
        |name: &str| query.split('&').find_map(|pair| pair.strip_prefix(&format!("{name}="))).unwrap().to_owned();
    (param("code"), param("state"))
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
    let (code, state) = authorize(&request).await;
    request.check_state(&state).unwrap();
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
    let (code, _) = authorize(&request).await;
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
