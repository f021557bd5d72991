//! DPoP on actix-web: `.wrap(Dpop::with_guard(guard))`, and a handler that answers who is
//! calling (`GET /whoami`). `cargo run --example actix_server [ADDR]` (default 127.0.0.1:8081).
//!
//! It starts a development authorization server beside it (tokens for the `actix-client`
//! client, DPoP-bound JWTs), tries the API once as a client would — without a token, then with
//! a token and a proof — prints both answers, and keeps serving. The app and the guard are in
//! `examples/support/actix_app.rs`.

mod support;

use dpop_guard::DpopKey;
use dpop_guard::client::DpopSession;
use support::actix_app;
use support::auth_server::{AuthServer, AuthServerConfig};

#[tokio::main]
async fn main() -> Result<(), support::Error> {
    support::init_tracing(Some("info"));
    let listen = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let listener =
        std::net::TcpListener::bind(&listen).map_err(|error| format!("cannot listen on {listen}: {error}"))?;
    let base = format!("http://{}", listener.local_addr()?);

    let auth_server =
        AuthServer::start(AuthServerConfig::new(&base, actix_app::CLIENT_ID, &[actix_app::SCOPE])).await?;
    let guard = actix_app::guard(&base, &auth_server)?;
    let server = actix_app::spawn(listener, guard);

    let session = DpopSession::new(DpopKey::generate()?);
    let (anonymous, identified) = actix_app::try_it(&base, &auth_server, &session).await?;
    println!("API at {base} (resource {base}), authorization server at {}", auth_server.issuer());
    println!("GET /whoami without a token: {} {}", anonymous.status, anonymous.challenge.unwrap_or_default());
    println!("GET /whoami with a DPoP-bound token and a proof: {} {}", identified.status, identified.body);
    println!("serving until interrupted (tokens: POST {} with a DPoP proof)", auth_server.token_endpoint());

    let result = tokio::task::spawn_blocking(move || server.join()).await?;
    result.map_err(|_| "the actix-web server thread panicked")??;
    Ok(())
}
