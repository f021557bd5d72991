//! One table of cases, run over real HTTP on 127.0.0.1 against a tower (hyper), an axum and an
//! actix-web server. Each case states the status, the exact `WWW-Authenticate` and whether the
//! handler ran; a case that holds in one framework and not in another fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use dpop_guard::DpopGuard;
use serde_json::json;
use support::cases::Case;
use support::{Client, Framework, RawRequest, TOKEN, guard_builder};

/// Which guard the servers of a group of cases run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Profile {
    /// `DpopGuard::new(validator)`: tokens validated, DPoP only, target URI from `Host`.
    Default,
    /// `DpopGuard::proof_only()`: proofs verified, tokens not.
    ProofOnly,
    /// A public origin of `https://mcp.example.com`.
    PublicOrigin,
    /// Target URI from trusted `Forwarded` / `X-Forwarded-*` headers.
    TrustedForwarding,
    /// Bearer accepted beside DPoP.
    Mixed,
}

impl Profile {
    fn guard(self) -> DpopGuard {
        let builder = guard_builder();
        let builder = match self {
            Self::Default => builder,
            Self::ProofOnly => DpopGuard::builder().proof_only(),
            Self::PublicOrigin => builder.public_origin("https://mcp.example.com"),
            Self::TrustedForwarding => builder.trust_forwarded_headers(true),
            Self::Mixed => builder.allow_bearer(true),
        };
        builder.build().unwrap()
    }
}

const NO_CREDENTIALS: &str = r#"DPoP algs="ES256""#;
const AMBIGUOUS_FORWARDING: &str =
    r#"DPoP error="invalid_request", error_description="Forwarding headers are ambiguous", algs="ES256""#;

fn one(request: RawRequest) -> Vec<RawRequest> {
    vec![request]
}

fn now() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

const CASES: &[Case<Profile>] = &[
    // --- credentials ---
    Case {
        name: "no credentials: challenge without error (Figure 15)",
        profile: Profile::Default,
        requests: |_| one(RawRequest::new("GET", "/mcp")),
        status: 401,
        challenge: Some(NO_CREDENTIALS),
        handler_runs: false,
    },
    Case {
        name: "valid POST",
        profile: Profile::Default,
        requests: |c| one(c.valid("POST", "/mcp")),
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "valid GET",
        profile: Profile::Default,
        requests: |c| one(c.valid("GET", "/mcp")),
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "valid DELETE",
        profile: Profile::Default,
        requests: |c| one(c.valid("DELETE", "/mcp")),
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "scheme name is case-insensitive",
        profile: Profile::Default,
        requests: |c| {
            let proof = c.proof_for("GET", &c.url("/mcp"));
            one(RawRequest::new("GET", "/mcp")
                .header("authorization", format!("dpop {}", c.token))
                .header("dpop", proof))
        },
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "several spaces after the scheme",
        profile: Profile::Default,
        requests: |c| {
            let proof = c.proof_for("GET", &c.url("/mcp"));
            one(RawRequest::new("GET", "/mcp")
                .header("authorization", format!("DPoP   {}", c.token))
                .header("dpop", proof))
        },
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "Bearer on a DPoP-only resource",
        profile: Profile::Default,
        requests: |_| one(RawRequest::new("GET", "/mcp").header("authorization", format!("Bearer {TOKEN}"))),
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_token", error_description="This resource requires DPoP-bound tokens; Bearer is not accepted", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "another scheme counts as no credentials",
        profile: Profile::Default,
        requests: |_| one(RawRequest::new("GET", "/mcp").header("authorization", "Basic dXNlcjpwYXNz")),
        status: 401,
        challenge: Some(NO_CREDENTIALS),
        handler_runs: false,
    },
    Case {
        name: "Proxy-Authorization is never read",
        profile: Profile::Default,
        requests: |c| {
            let proof = c.proof_for("GET", &c.url("/mcp"));
            one(RawRequest::new("GET", "/mcp")
                .header("proxy-authorization", format!("DPoP {TOKEN}"))
                .header("dpop", proof))
        },
        status: 401,
        challenge: Some(NO_CREDENTIALS),
        handler_runs: false,
    },
    Case {
        name: "two Authorization fields (Figure 19)",
        profile: Profile::Default,
        requests: |c| one(c.valid("GET", "/mcp").header("authorization", format!("Bearer {TOKEN}"))),
        status: 400,
        challenge: Some(
            r#"DPoP error="invalid_request", error_description="Multiple methods used to include access token", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "DPoP scheme without a token",
        profile: Profile::Default,
        requests: |_| one(RawRequest::new("GET", "/mcp").header("authorization", "DPoP ")),
        status: 400,
        challenge: Some(
            r#"DPoP error="invalid_request", error_description="Malformed Authorization header", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "two tokens in one Authorization field",
        profile: Profile::Default,
        requests: |_| one(RawRequest::new("GET", "/mcp").header("authorization", "DPoP one two")),
        status: 400,
        challenge: Some(
            r#"DPoP error="invalid_request", error_description="Malformed Authorization header", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "two credentials as a comma list",
        profile: Profile::Default,
        requests: |_| {
            one(RawRequest::new("GET", "/mcp").header("authorization", format!("Bearer {TOKEN}, DPoP {TOKEN}")))
        },
        status: 400,
        challenge: Some(
            r#"DPoP error="invalid_request", error_description="Malformed Authorization header", algs="ES256""#,
        ),
        handler_runs: false,
    },
    // --- the DPoP header field (§4.3 checks 1, 2) ---
    Case {
        name: "DPoP scheme without a DPoP header",
        profile: Profile::Default,
        requests: |_| one(RawRequest::new("GET", "/mcp").header("authorization", format!("DPoP {TOKEN}"))),
        status: 401,
        challenge: Some(r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof is missing", algs="ES256""#),
        handler_runs: false,
    },
    Case {
        name: "two DPoP header fields",
        profile: Profile::Default,
        requests: |c| {
            let second = c.proof_for("GET", &c.url("/mcp"));
            one(c.valid("GET", "/mcp").header("dpop", second))
        },
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="More than one DPoP header field", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "two proofs as a comma list in one field",
        profile: Profile::Default,
        requests: |c| {
            let url = c.url("/mcp");
            let list = format!("{}, {}", c.proof_for("GET", &url), c.proof_for("GET", &url));
            one(c.with_proof("GET", "/mcp", &list))
        },
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof is malformed: invalid JWS compact serialization", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "garbage in the DPoP header",
        profile: Profile::Default,
        requests: |c| one(c.with_proof("GET", "/mcp", "not-a-jwt")),
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof is malformed: invalid JWS compact serialization", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "non-UTF-8 bytes in the DPoP header",
        profile: Profile::Default,
        requests: |_| {
            one(RawRequest::new("GET", "/mcp")
                .header("authorization", format!("DPoP {TOKEN}"))
                .header("dpop", b"ey\xff\xfe.a.b"))
        },
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof is malformed: invalid encoding", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "a 9 KiB proof",
        profile: Profile::Default,
        requests: |c| {
            one(c.with_proof(
                "GET",
                "/mcp",
                &c.mutated("GET", "/mcp", |_, claims| claims["pad"] = json!("p".repeat(7000))),
            ))
        },
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof is larger than 8192 bytes", algs="ES256""#,
        ),
        handler_runs: false,
    },
    // --- the proof (§4.3 checks 3–12) ---
    Case {
        name: "typ is not dpop+jwt",
        profile: Profile::Default,
        requests: |c| one(c.with_proof("GET", "/mcp", &c.mutated("GET", "/mcp", |h, _| h["typ"] = json!("JWT")))),
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof `typ` must be `dpop+jwt`", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "alg none",
        profile: Profile::Default,
        requests: |c| one(c.with_proof("GET", "/mcp", &c.mutated("GET", "/mcp", |h, _| h["alg"] = json!("none")))),
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof `alg` is not a supported asymmetric algorithm", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "alg HS256",
        profile: Profile::Default,
        requests: |c| one(c.with_proof("GET", "/mcp", &c.mutated("GET", "/mcp", |h, _| h["alg"] = json!("HS256")))),
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof `alg` is not a supported asymmetric algorithm", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "private key in jwk",
        profile: Profile::Default,
        requests: |c| {
            let private = c.key.private_jwk().unwrap();
            one(c.with_proof("GET", "/mcp", &c.mutated("GET", "/mcp", |h, _| h["jwk"] = private)))
        },
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof `jwk` contains private key material", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "signed by another key",
        profile: Profile::Default,
        requests: |c| {
            let other = Client::new(c.base.clone());
            let url = c.url("/mcp");
            let builder = c.key.proof("GET", &url).access_token(&c.token);
            let proof =
                other.key.sign_jws(&builder.header().to_string(), &builder.claims().unwrap().to_string()).unwrap();
            one(c.with_proof("GET", "/mcp", &proof))
        },
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof signature is invalid", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "duplicate claim",
        profile: Profile::Default,
        requests: |c| {
            let url = c.url("/mcp");
            let builder = c.key.proof("GET", &url).access_token(&c.token);
            let claims = builder.claims().unwrap().to_string().replacen('{', r#"{"htu":"https://evil.example/","#, 1);
            one(c.with_proof("GET", "/mcp", &c.key.sign_jws(&builder.header().to_string(), &claims).unwrap()))
        },
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof claims has a duplicate member", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "proof for another method",
        profile: Profile::Default,
        requests: |c| one(c.with_proof("POST", "/mcp", &c.proof_for("GET", &c.url("/mcp")))),
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof `htm` does not match the request method", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "proof for another path",
        profile: Profile::Default,
        requests: |c| one(c.with_proof("GET", "/mcp", &c.proof_for("GET", &c.url("/admin")))),
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof `htu` does not match the request URI", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "proof for another host",
        profile: Profile::Default,
        requests: |c| one(c.with_proof("GET", "/mcp", &c.proof_for("GET", "http://mcp.example.com/mcp"))),
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof `htu` does not match the request URI", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "query is ignored in htu and in the request",
        profile: Profile::Default,
        requests: |c| one(c.with_proof("GET", "/mcp?session=1", &c.proof_for("GET", &c.url("/mcp?other=2")))),
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "htu differs only by normalization",
        profile: Profile::Default,
        requests: |c| {
            let url = c.url("/./x/../mcp").replace("http://", "HTTP://");
            one(c.with_proof("GET", "/mcp", &c.proof_for("GET", &url)))
        },
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "iat 400 s old",
        profile: Profile::Default,
        requests: |c| {
            one(c.with_proof("GET", "/mcp", &c.mutated("GET", "/mcp", |_, claims| claims["iat"] = json!(now() - 400))))
        },
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof `iat` is too old", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "iat 400 s ahead",
        profile: Profile::Default,
        requests: |c| {
            one(c.with_proof("GET", "/mcp", &c.mutated("GET", "/mcp", |_, claims| claims["iat"] = json!(now() + 400))))
        },
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof `iat` is in the future", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "ath of another token",
        profile: Profile::Default,
        requests: |c| {
            let proof =
                c.mutated("GET", "/mcp", |_, claims| claims["ath"] = json!(dpop_guard::access_token_hash("other")));
            one(c.with_proof("GET", "/mcp", &proof))
        },
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof `ath` does not match the access token", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "no ath",
        profile: Profile::Default,
        requests: |c| {
            let proof = c.mutated("GET", "/mcp", |_, claims| _ = claims.as_object_mut().unwrap().remove("ath"));
            one(c.with_proof("GET", "/mcp", &proof))
        },
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof is missing `ath` for the access token", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "replay of an accepted proof",
        profile: Profile::Default,
        requests: |c| {
            let request = c.valid("GET", "/mcp");
            vec![request.clone(), request]
        },
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof has already been used", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "replay under another spelling of the scheme",
        profile: Profile::Default,
        requests: |c| {
            let proof = c.proof_for("GET", &c.url("/mcp"));
            let again = RawRequest::new("GET", "/mcp")
                .header("authorization", format!("dpop {}", c.token))
                .header("dpop", &proof);
            vec![c.with_proof("GET", "/mcp", &proof), again]
        },
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof has already been used", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "nested route: htu is the full original path",
        profile: Profile::Default,
        requests: |c| one(c.valid("POST", "/api/mcp")),
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "nested route: the prefix-stripped path does not match",
        profile: Profile::Default,
        requests: |c| one(c.with_proof("POST", "/api/mcp", &c.proof_for("POST", &c.url("/mcp")))),
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof `htu` does not match the request URI", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "Host decides the target without a public origin",
        profile: Profile::Default,
        requests: |c| {
            let proof = c.proof_for("GET", "http://mcp.example.com/mcp");
            one(c.with_proof("GET", "/mcp", &proof).header("host", "mcp.example.com"))
        },
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "a Host with a path in it is refused",
        profile: Profile::Default,
        requests: |c| {
            let proof = c.proof_for("GET", "http://evil.example/x/mcp");
            one(c.with_proof("GET", "/mcp", &proof).header("host", "evil.example/x"))
        },
        status: 400,
        challenge: Some(
            r#"DPoP error="invalid_request", error_description="Request target URI is invalid", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "untrusted X-Forwarded-* are ignored",
        profile: Profile::Default,
        requests: |c| {
            let proof = c.proof_for("GET", "https://public.example/mcp");
            let request = c.with_proof("GET", "/mcp", &proof);
            one(request.header("x-forwarded-proto", "https").header("x-forwarded-host", "public.example"))
        },
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof `htu` does not match the request URI", algs="ES256""#,
        ),
        handler_runs: false,
    },
    // --- routes without the layer ---
    Case {
        name: "required authentication on a route without the layer",
        profile: Profile::Default,
        requests: |c| one(c.valid("GET", "/open/required")),
        status: 401,
        challenge: Some(NO_CREDENTIALS),
        handler_runs: false,
    },
    Case {
        name: "optional authentication on a route without the layer",
        profile: Profile::Default,
        requests: |c| one(c.valid("GET", "/open/optional")),
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    // --- public origin ---
    Case {
        name: "public origin: proof for the public URL",
        profile: Profile::PublicOrigin,
        requests: |c| one(c.with_proof("POST", "/mcp", &c.proof_for("POST", "https://mcp.example.com/mcp"))),
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "public origin: proof for the Host the request named",
        profile: Profile::PublicOrigin,
        requests: |c| one(c.valid("POST", "/mcp")),
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof `htu` does not match the request URI", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "public origin: a spoofed Host changes nothing",
        profile: Profile::PublicOrigin,
        requests: |c| {
            let proof = c.proof_for("POST", "https://mcp.example.com/mcp");
            one(c.with_proof("POST", "/mcp", &proof).header("host", "evil.example"))
        },
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "public origin: nested route",
        profile: Profile::PublicOrigin,
        requests: |c| one(c.with_proof("POST", "/api/mcp", &c.proof_for("POST", "https://mcp.example.com/api/mcp"))),
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    // --- trusted forwarding headers ---
    Case {
        name: "trusted X-Forwarded-Proto and X-Forwarded-Host",
        profile: Profile::TrustedForwarding,
        requests: |c| {
            let request = c.with_proof("GET", "/mcp", &c.proof_for("GET", "https://public.example/mcp"));
            one(request.header("x-forwarded-proto", "https").header("x-forwarded-host", "public.example"))
        },
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "trusted Forwarded",
        profile: Profile::TrustedForwarding,
        requests: |c| {
            let request = c.with_proof("GET", "/mcp", &c.proof_for("GET", "https://public.example/mcp"));
            one(request.header("forwarded", "for=192.0.2.1;proto=https;host=public.example"))
        },
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "trusted forwarding without the headers falls back to Host",
        profile: Profile::TrustedForwarding,
        requests: |c| one(c.valid("GET", "/mcp")),
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "trusted forwarding: a list of hosts is ambiguous",
        profile: Profile::TrustedForwarding,
        requests: |c| {
            let request = c.with_proof("GET", "/mcp", &c.proof_for("GET", "https://public.example/mcp"));
            one(request.header("x-forwarded-host", "public.example, evil.example"))
        },
        status: 400,
        challenge: Some(AMBIGUOUS_FORWARDING),
        handler_runs: false,
    },
    Case {
        name: "trusted forwarding: a client's Forwarded beside the proxy's X-Forwarded-Host is ambiguous",
        profile: Profile::TrustedForwarding,
        requests: |c| {
            let request = c.with_proof("GET", "/mcp", &c.proof_for("GET", "https://evil.example/mcp"));
            one(request
                .header("forwarded", "proto=https;host=evil.example")
                .header("x-forwarded-proto", "https")
                .header("x-forwarded-host", "public.example"))
        },
        status: 400,
        challenge: Some(AMBIGUOUS_FORWARDING),
        handler_runs: false,
    },
    Case {
        name: "trusted forwarding: two Forwarded fields are ambiguous",
        profile: Profile::TrustedForwarding,
        requests: |c| {
            let request = c.with_proof("GET", "/mcp", &c.proof_for("GET", "https://evil.example/mcp"));
            one(request.header("forwarded", "proto=https;host=public.example").header("forwarded", "host=evil.example"))
        },
        status: 400,
        challenge: Some(AMBIGUOUS_FORWARDING),
        handler_runs: false,
    },
    Case {
        name: "trusted forwarding: host twice in one Forwarded element is ambiguous",
        profile: Profile::TrustedForwarding,
        requests: |c| {
            let request = c.with_proof("GET", "/mcp", &c.proof_for("GET", "https://evil.example/mcp"));
            one(request.header("forwarded", "host=public.example;proto=https;host=evil.example"))
        },
        status: 400,
        challenge: Some(AMBIGUOUS_FORWARDING),
        handler_runs: false,
    },
    Case {
        name: "trusted forwarding: Forwarded beside X-Forwarded-Host alone is ambiguous",
        profile: Profile::TrustedForwarding,
        requests: |c| {
            let request = c.with_proof("GET", "/mcp", &c.proof_for("GET", "https://evil.example/mcp"));
            one(request
                .header("forwarded", "proto=https;host=evil.example")
                .header("x-forwarded-host", "public.example"))
        },
        status: 400,
        challenge: Some(AMBIGUOUS_FORWARDING),
        handler_runs: false,
    },
    Case {
        name: "trusted forwarding: two X-Forwarded-Host fields are ambiguous",
        profile: Profile::TrustedForwarding,
        requests: |c| {
            let request = c.with_proof("GET", "/mcp", &c.proof_for("GET", "http://evil.example/mcp"));
            one(request.header("x-forwarded-host", "public.example").header("x-forwarded-host", "evil.example"))
        },
        status: 400,
        challenge: Some(AMBIGUOUS_FORWARDING),
        handler_runs: false,
    },
    Case {
        name: "trusted forwarding: proto twice in one Forwarded element is ambiguous",
        profile: Profile::TrustedForwarding,
        requests: |c| {
            let request = c.with_proof("GET", "/mcp", &c.proof_for("GET", "http://public.example/mcp"));
            one(request.header("forwarded", "proto=https;host=public.example;proto=http"))
        },
        status: 400,
        challenge: Some(AMBIGUOUS_FORWARDING),
        handler_runs: false,
    },
    Case {
        name: "trusted forwarding: two X-Forwarded-Proto fields are ambiguous",
        profile: Profile::TrustedForwarding,
        requests: |c| {
            let request = c.with_proof("GET", "/mcp", &c.proof_for("GET", "http://public.example/mcp"));
            one(request
                .header("x-forwarded-proto", "https")
                .header("x-forwarded-proto", "http")
                .header("x-forwarded-host", "public.example"))
        },
        status: 400,
        challenge: Some(AMBIGUOUS_FORWARDING),
        handler_runs: false,
    },
    // --- access tokens (RFC 9449 §6): the default guard validates them ---
    Case {
        name: "a token nobody issued, with a valid proof and a matching ath",
        profile: Profile::Default,
        requests: |c| {
            let proof = c.key.proof("GET", &c.url("/mcp")).access_token("i-am-admin").sign().unwrap();
            one(RawRequest::new("GET", "/mcp").header("authorization", "DPoP i-am-admin").header("dpop", proof))
        },
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_token", error_description="Invalid access token: unknown token", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "a valid but unbound token with the DPoP scheme",
        profile: Profile::Default,
        requests: |c| {
            let proof = c.key.proof("GET", &c.url("/mcp")).access_token(TOKEN).sign().unwrap();
            one(RawRequest::new("GET", "/mcp").header("authorization", format!("DPoP {TOKEN}")).header("dpop", proof))
        },
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_token", error_description="Access token is not DPoP-bound", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "another client's token with this client's proof (Figure 16)",
        profile: Profile::Default,
        requests: |c| {
            let stolen = Client::new(c.base.clone()).token;
            let proof = c.key.proof("GET", &c.url("/mcp")).access_token(&stolen).sign().unwrap();
            one(RawRequest::new("GET", "/mcp").header("authorization", format!("DPoP {stolen}")).header("dpop", proof))
        },
        status: 401,
        challenge: Some(r#"DPoP error="invalid_token", error_description="Invalid DPoP key binding", algs="ES256""#),
        handler_runs: false,
    },
    // --- proof-only: proofs checked, the token handed over unvalidated ---
    Case {
        name: "proof-only: any token with a valid proof reaches the handler as ProofOnly",
        profile: Profile::ProofOnly,
        requests: |c| {
            let proof = c.key.proof("GET", &c.url("/mcp")).access_token("i-am-admin").sign().unwrap();
            one(RawRequest::new("GET", "/mcp").header("authorization", "DPoP i-am-admin").header("dpop", proof))
        },
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "proof-only: proof checks still apply",
        profile: Profile::ProofOnly,
        requests: |c| one(c.with_proof("GET", "/mcp", &c.proof_for("POST", &c.url("/mcp")))),
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof `htm` does not match the request method", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "proof-only: Bearer is refused",
        profile: Profile::ProofOnly,
        requests: |_| one(RawRequest::new("GET", "/mcp").header("authorization", format!("Bearer {TOKEN}"))),
        status: 401,
        challenge: Some(
            r#"DPoP error="invalid_token", error_description="This resource requires DPoP-bound tokens; Bearer is not accepted", algs="ES256""#,
        ),
        handler_runs: false,
    },
    // --- Bearer beside DPoP ---
    Case {
        name: "mixed: no credentials challenges both schemes, Bearer first (Figure 17)",
        profile: Profile::Mixed,
        requests: |_| one(RawRequest::new("GET", "/mcp")),
        status: 401,
        challenge: Some(r#"Bearer, DPoP algs="ES256""#),
        handler_runs: false,
    },
    Case {
        name: "mixed: a Bearer token passes",
        profile: Profile::Mixed,
        requests: |_| one(RawRequest::new("GET", "/mcp").header("authorization", format!("Bearer {TOKEN}"))),
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "mixed: DPoP still works",
        profile: Profile::Mixed,
        requests: |c| one(c.valid("GET", "/mcp")),
        status: 200,
        challenge: None,
        handler_runs: true,
    },
    Case {
        name: "mixed: Bearer and DPoP at once (Figure 19)",
        profile: Profile::Mixed,
        requests: |c| one(c.valid("GET", "/mcp").header("authorization", format!("Bearer {TOKEN}"))),
        status: 400,
        challenge: Some(
            r#"Bearer error="invalid_request", error_description="Multiple methods used to include access token", DPoP error="invalid_request", error_description="Multiple methods used to include access token", algs="ES256""#,
        ),
        handler_runs: false,
    },
    Case {
        name: "mixed: a bad proof puts the error on the DPoP challenge",
        profile: Profile::Mixed,
        requests: |c| one(c.with_proof("GET", "/mcp", &c.proof_for("POST", &c.url("/mcp")))),
        status: 401,
        challenge: Some(
            r#"Bearer, DPoP error="invalid_dpop_proof", error_description="DPoP proof `htm` does not match the request method", algs="ES256""#,
        ),
        handler_runs: false,
    },
];

async fn assert_cases(framework: Framework) {
    assert!(CASES.len() >= 40, "the table has {} cases", CASES.len());
    let profiles =
        [Profile::Default, Profile::ProofOnly, Profile::PublicOrigin, Profile::TrustedForwarding, Profile::Mixed];
    support::cases::assert_cases(framework, &profiles, Profile::guard, CASES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_on_hyper() {
    assert_cases(Framework::Tower).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum() {
    assert_cases(Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_web() {
    assert_cases(Framework::Actix).await;
}
