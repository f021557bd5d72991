//! Access tokens through the shared case table, for tower, axum and actix-web alike: JWT
//! validation (static and fetched JWKS), introspection, binding, downgrade, scopes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::sync::{LazyLock, OnceLock};

use dpop_guard::{DpopGuard, DpopKey};
use dpop_token::{CachedValidator, IntrospectionValidator, JwkSet, JwtValidator};
use serde_json::{Value, json};
use support::cases::Case;
use support::{Client, Framework, RawRequest};

const RESOURCE: &str = "https://mcp.example.com/mcp";
const ISSUER: &str = "https://as.example.com";
const KID: &str = "as-key-1";

/// The authorization server's signing key, and an impostor using the same `kid`.
static AS_KEY: LazyLock<DpopKey> = LazyLock::new(|| DpopKey::generate().unwrap());
static IMPOSTOR: LazyLock<DpopKey> = LazyLock::new(|| DpopKey::generate().unwrap());
/// The local JWKS and introspection server.
static AS_SERVER: OnceLock<SocketAddr> = OnceLock::new();

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Profile {
    /// JWT validation with a static JWK Set.
    Jwt,
    /// The same, Bearer accepted beside DPoP.
    JwtMixed,
    /// The same, every token must have `mcp:admin`.
    JwtAdmin,
    /// JWT validation with the JWKS fetched from the local server.
    JwksUrl,
    /// JWT validation with a JWKS URL where nothing listens.
    JwksDown,
    /// RFC 7662 introspection at the local server.
    Introspection,
}

fn jwks() -> String {
    let mut jwk = AS_KEY.public_jwk();
    jwk["kid"] = json!(KID);
    jwk["use"] = json!("sig");
    json!({ "keys": [jwk] }).to_string()
}

impl Profile {
    fn guard(self) -> DpopGuard {
        let as_base = format!("http://{}", AS_SERVER.get().unwrap());
        let jwt = JwtValidator::builder(ISSUER, RESOURCE);
        let builder = DpopGuard::builder().resource(RESOURCE).authorization_server(ISSUER);
        let builder = match self {
            Self::Jwt | Self::JwtMixed | Self::JwtAdmin => {
                let validator = jwt.keys(JwkSet::from_json(&jwks()).unwrap()).build().unwrap();
                builder.token_validator(CachedValidator::new(validator))
            }
            Self::JwksUrl => builder.token_validator(jwt.jwks_url(format!("{as_base}/jwks")).build().unwrap()),
            Self::JwksDown => builder.token_validator(jwt.jwks_url(closed_port_url()).build().unwrap()),
            Self::Introspection => {
                let introspection = IntrospectionValidator::builder(format!("{as_base}/introspect"), "rs", "secret")
                    .issuer(ISSUER)
                    .audience(RESOURCE)
                    .build()
                    .unwrap();
                builder.token_validator(introspection)
            }
        };
        let builder = match self {
            Self::JwtMixed => builder.allow_bearer(true),
            Self::JwtAdmin => builder.required_scopes(["mcp:admin"]),
            _ => builder,
        };
        builder.build().unwrap()
    }
}

fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    drop(listener);
    url
}

/// Serves `/jwks` and an `/introspect` whose answer the token names: `active.<jkt>`,
/// `inactive`, `bearer-typed.<jkt>`.
async fn start_as_server() -> SocketAddr {
    use axum::routing::{get, post};
    async fn introspect(body: String) -> axum::Json<Value> {
        let token = body.split('&').find_map(|pair| pair.strip_prefix("token=")).unwrap_or_default().to_owned();
        let exp = now() + 300;
        axum::Json(match token.split_once('.') {
            Some(("active", jkt)) => {
                json!({"active": true, "sub": "bob", "exp": exp, "token_type": "DPoP", "cnf": {"jkt": jkt}})
            }
            Some(("bearer-typed", jkt)) => {
                json!({"active": true, "sub": "bob", "exp": exp, "token_type": "Bearer", "cnf": {"jkt": jkt}})
            }
            _ => json!({"active": false}),
        })
    }
    let app = axum::Router::new().route("/jwks", get(|| async { jwks() })).route("/introspect", post(introspect));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn now() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

/// A JWT access token from the authorization server, bound to `client`'s key, with `change`
/// applied to its header and claims.
fn token(client: &Client, signer: &DpopKey, change: impl FnOnce(&mut Value, &mut Value)) -> String {
    let mut header = json!({"alg": "ES256", "typ": "at+jwt", "kid": KID});
    let mut claims = json!({
        "iss": ISSUER, "aud": RESOURCE, "sub": "alice", "client_id": "demo", "scope": "mcp:tools",
        "iat": now(), "exp": now() + 300, "jti": format!("at-{}", now()),
        "cnf": {"jkt": client.key.thumbprint().to_string()},
    });
    change(&mut header, &mut claims);
    signer.sign_jws(&header.to_string(), &claims.to_string()).unwrap()
}

fn valid_token(client: &Client) -> String {
    token(client, &AS_KEY, |_, _| {})
}

/// `Authorization: DPoP <token>` and a proof for `POST https://mcp.example.com/mcp` by `key`.
fn dpop(key: &DpopKey, token: &str) -> RawRequest {
    let proof = key.proof("POST", RESOURCE).access_token(token).sign().unwrap();
    RawRequest::new("POST", "/mcp").header("authorization", format!("DPoP {token}")).header("dpop", proof)
}

fn bearer(token: &str) -> RawRequest {
    RawRequest::new("POST", "/mcp").header("authorization", format!("Bearer {token}"))
}

macro_rules! invalid_token {
    ($why:literal) => {
        concat!(
            r#"DPoP error="invalid_token", error_description="Invalid access token: "#,
            $why,
            r#"", algs="ES256", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#
        )
    };
}

fn one(request: RawRequest) -> Vec<RawRequest> {
    vec![request]
}

const CASES: &[Case<Profile>] = &[
    Case {
        name: "no credentials: the challenge points at the metadata",
        profile: Profile::Jwt,
        requests: |_| one(RawRequest::new("POST", "/mcp")),
        status: 401,
        challenge: Some(
            r#"DPoP algs="ES256", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "a bound JWT with its key's proof",
        profile: Profile::Jwt,
        requests: |c| one(dpop(&c.key, &valid_token(c))),
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "the same token and key again with a fresh proof (cached token)",
        profile: Profile::Jwt,
        requests: |c| {
            let token = valid_token(c);
            vec![dpop(&c.key, &token), dpop(&c.key, &token)]
        },
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "a replayed proof with a valid token",
        profile: Profile::Jwt,
        requests: |c| {
            let request = dpop(&c.key, &valid_token(c));
            vec![request.clone(), request]
        },
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof has already been used", algs="ES256", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "wrong issuer",
        profile: Profile::Jwt,
        requests: |c| one(dpop(&c.key, &token(c, &AS_KEY, |_, claims| claims["iss"] = json!("https://evil.example")))),
        status: 401,
        challenge: Some(invalid_token!("wrong issuer")),
        handler_runs: false,
    },
    Case {
        name: "wrong audience",
        profile: Profile::Jwt,
        requests: |c| {
            one(dpop(&c.key, &token(c, &AS_KEY, |_, claims| claims["aud"] = json!("https://other.example.com/mcp"))))
        },
        status: 401,
        challenge: Some(invalid_token!("wrong audience")),
        handler_runs: false,
    },
    Case {
        name: "expired",
        profile: Profile::Jwt,
        requests: |c| one(dpop(&c.key, &token(c, &AS_KEY, |_, claims| claims["exp"] = json!(now() - 120)))),
        status: 401,
        challenge: Some(invalid_token!("token expired")),
        handler_runs: false,
    },
    Case {
        name: "nbf in the future",
        profile: Profile::Jwt,
        requests: |c| one(dpop(&c.key, &token(c, &AS_KEY, |_, claims| claims["nbf"] = json!(now() + 600)))),
        status: 401,
        challenge: Some(invalid_token!("token not yet valid")),
        handler_runs: false,
    },
    Case {
        name: "typ JWT instead of at+jwt",
        profile: Profile::Jwt,
        requests: |c| one(dpop(&c.key, &token(c, &AS_KEY, |header, _| header["typ"] = json!("JWT")))),
        status: 401,
        challenge: Some(invalid_token!("wrong token type")),
        handler_runs: false,
    },
    Case {
        name: "signed by another key under the same kid",
        profile: Profile::Jwt,
        requests: |c| one(dpop(&c.key, &token(c, &IMPOSTOR, |_, _| {}))),
        status: 401,
        challenge: Some(invalid_token!("invalid signature")),
        handler_runs: false,
    },
    Case {
        name: "unknown kid",
        profile: Profile::Jwt,
        requests: |c| one(dpop(&c.key, &token(c, &AS_KEY, |header, _| header["kid"] = json!("gone")))),
        status: 401,
        challenge: Some(invalid_token!("unknown signing key")),
        handler_runs: false,
    },
    Case {
        name: "an unbound token with the DPoP scheme",
        profile: Profile::Jwt,
        requests: |c| {
            one(dpop(&c.key, &token(c, &AS_KEY, |_, claims| _ = claims.as_object_mut().unwrap().remove("cnf"))))
        },
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_token", error_description="Access token is not DPoP-bound", algs="ES256", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "a token bound to another key (Figure 16)",
        profile: Profile::Jwt,
        requests: |c| {
            let thief = DpopKey::generate().unwrap();
            one(dpop(&thief, &valid_token(c)))
        },
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_token", error_description="Invalid DPoP key binding", algs="ES256", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "a bound token sent as Bearer (downgrade, §7.2)",
        profile: Profile::JwtMixed,
        requests: |c| one(bearer(&valid_token(c))),
        status: 401,
        challenge: Some(
            r#"Bearer error="invalid_token", error_description="DPoP-bound access token must be sent with the DPoP scheme", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", DPoP algs="ES256", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "an unbound token as Bearer in mixed mode",
        profile: Profile::JwtMixed,
        requests: |c| one(bearer(&token(c, &AS_KEY, |_, claims| _ = claims.as_object_mut().unwrap().remove("cnf")))),
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "a bound token on a DPoP-only resource without the mcp:admin scope",
        profile: Profile::JwtAdmin,
        requests: |c| one(dpop(&c.key, &valid_token(c))),
        status: 403,
        challenge: Some(
            r#"DPoP error="insufficient_scope", error_description="The access token lacks a required scope", scope="mcp:admin", algs="ES256", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "with the mcp:admin scope",
        profile: Profile::JwtAdmin,
        requests: |c| one(dpop(&c.key, &token(c, &AS_KEY, |_, claims| claims["scope"] = json!("mcp:tools mcp:admin")))),
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "fetched JWKS: a valid token",
        profile: Profile::JwksUrl,
        requests: |c| one(dpop(&c.key, &valid_token(c))),
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "fetched JWKS: an unknown kid is refetched, then refused",
        profile: Profile::JwksUrl,
        requests: |c| one(dpop(&c.key, &token(c, &AS_KEY, |header, _| header["kid"] = json!("rotated-away")))),
        status: 401,
        challenge: Some(invalid_token!("unknown signing key")),
        handler_runs: false,
    },
    Case {
        name: "JWKS endpoint down: 503, never a pass",
        profile: Profile::JwksDown,
        requests: |c| one(dpop(&c.key, &valid_token(c))),
        status: 503,
        challenge: None,
        handler_runs: false,
    },
    Case {
        name: "introspection: an active bound token",
        profile: Profile::Introspection,
        requests: |c| one(dpop(&c.key, &format!("active.{}", c.key.thumbprint()))),
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "introspection: inactive",
        profile: Profile::Introspection,
        requests: |c| one(dpop(&c.key, "inactive")),
        status: 401,
        challenge: Some(invalid_token!("token is not active")),
        handler_runs: false,
    },
    Case {
        name: "introspection: token_type Bearer with cnf",
        profile: Profile::Introspection,
        requests: |c| one(dpop(&c.key, &format!("bearer-typed.{}", c.key.thumbprint()))),
        status: 401,
        challenge: Some(invalid_token!("bound token with token_type other than DPoP")),
        handler_runs: false,
    },
];

async fn assert_token_cases(framework: Framework) {
    let addr = *AS_SERVER.get_or_init(|| {
        // The first test to get here starts the server on a runtime that outlives every test.
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let addr = runtime.block_on(start_as_server());
            std::thread::spawn(move || runtime.block_on(std::future::pending::<()>()));
            addr
        })
        .join()
        .unwrap()
    });
    assert_ne!(addr.port(), 0);
    let profiles = [
        Profile::Jwt,
        Profile::JwtMixed,
        Profile::JwtAdmin,
        Profile::JwksUrl,
        Profile::JwksDown,
        Profile::Introspection,
    ];
    support::cases::assert_cases(framework, &profiles, Profile::guard, CASES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_on_hyper() {
    assert_token_cases(Framework::Tower).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum() {
    assert_token_cases(Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_web() {
    assert_token_cases(Framework::Actix).await;
}
