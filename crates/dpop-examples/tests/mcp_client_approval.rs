//! `mcp_client` when a person must approve: the authorization endpoint answers a page instead of
//! redirecting at once, so the client prints the URL and takes the code on its loopback redirect
//! (RFC 8252). The test is the person and the browser: it reads the printed URL, approves on the
//! page, and follows the redirect to the loopback, after a forged one that must be refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "../examples/support/mod.rs"]
mod examples_support;

use axum::Router;
use axum::extract::{RawQuery, Request};
use axum::response::{Html, IntoResponse as _, Response};
use axum::routing::get;
use clap::Parser as _;
use examples_support::client::http_client;
use examples_support::mcp_client;
use examples_support::mcp_server::{Args, build};
use tower::ServiceExt as _;

/// `mcp_server` with its development authorization server, whose `/authorize` is put behind a
/// consent page: `/authorize` answers the page, its link `/approve` gets the server's redirect.
/// The MCP endpoint's URL.
async fn start_server_with_consent_page() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let url = format!("http://{addr}/mcp");
    let argv = ["mcp_server", "--listen", &addr, "--resource", &url, "--dev-authorization-server"];
    let server = build(&Args::try_parse_from(argv).unwrap()).await.unwrap();
    let approve = {
        let server = server.clone();
        move |RawQuery(query): RawQuery| async move {
            let uri = format!("/authorize?{}", query.unwrap_or_default());
            let request = Request::get(uri).body(axum::body::Body::empty()).unwrap();
            server.oneshot(request).await.unwrap_or_else(|never| match never {})
        }
    };
    let app =
        Router::new().route("/authorize", get(consent_page)).route("/approve", get(approve)).fallback_service(server);
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn consent_page(RawQuery(query): RawQuery) -> Response {
    let link = format!("/approve?{}", query.unwrap_or_default()).replace('&', "&amp;");
    Html(format!("<p>Let the MCP client in?</p><a href=\"{link}\">Approve</a>")).into_response()
}

/// A GET by the browser, which shows pages and does not follow redirects.
async fn visit(url: &str) -> reqwest::Response {
    http_client().unwrap().get(url).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_client_prints_the_url_and_takes_the_approved_code_on_its_loopback_redirect() {
    let server_url = start_server_with_consent_page().await;
    let origin = server_url.trim_end_matches("/mcp").to_owned();
    let (shown, mut seen) = tokio::sync::mpsc::unbounded_channel::<String>();
    let args = mcp_client::Args::try_parse_from(["mcp_client", &server_url]).unwrap();
    let client = mcp_client::run(&args, move |text| shown.send(text.to_owned()).unwrap());

    let person = async {
        let text = seen.recv().await.expect("the client shows the URL to open");
        let url = text.split_whitespace().find(|word| word.starts_with("http")).expect(&text).to_owned();
        assert!(url.starts_with(&format!("{origin}/authorize?")) && url.contains("dpop_jkt="), "{url}");
        let page = visit(&url).await;
        assert_eq!(page.status(), 200);
        let page = page.text().await.unwrap();
        let link = page.split_once("href=\"").unwrap().1.split_once('"').unwrap().0.replace("&amp;", "&");
        let approved = visit(&format!("{origin}{link}")).await;
        assert_eq!(approved.status(), 303, "the authorization server redirects to the loopback");
        let redirect = approved.headers()["location"].to_str().unwrap().to_owned();
        assert!(redirect.starts_with("http://127.0.0.1:") && redirect.contains("/callback?"), "{redirect}");

        // Another program on this machine sends the same code with another state: refused,
        // and the client still waits for the real redirect.
        let state = redirect.split(['?', '&']).find(|param| param.starts_with("state=")).unwrap();
        let forged = visit(&redirect.replace(state, "state=forged")).await;
        assert_eq!(forged.status(), 400);
        assert!(forged.text().await.unwrap().contains("not the answer"));
        let real = visit(&redirect).await;
        assert_eq!(real.status(), 200);
        assert!(real.text().await.unwrap().contains("authorized"));
        text
    };
    let (outcome, shown) = tokio::join!(client, person);
    let outcome = outcome.unwrap();
    assert!(shown.contains("Open this URL in a browser"), "{shown}");
    assert!(outcome.approved_by_person);
    assert_eq!(outcome.issuer, origin);
    // The token from the approved code works: whoami answered with the client's key.
    let [(called, result)] = outcome.calls.as_slice() else { panic!("{:?}", outcome.calls) };
    assert_eq!(called, "whoami");
    assert_eq!(result["structuredContent"]["jkt"], serde_json::json!(outcome.jkt));
}
