//! Property tests (proptest): what must hold for every input, not just the cases in the tables.
//!
//! - `check` never panics on any `DPoP` header value, and never accepts garbage.
//! - A well-formed, correctly signed JWS verifies exactly when a reference model of RFC 9449
//!   §4.3 says it should: a proof whose header or claims were changed in a way that matters
//!   never verifies (changes that do not matter, such as an extra unknown claim or an
//!   equivalent `htu`, still verify). A proof changed after signing, or with a duplicated member,
//!   never verifies.
//! - `normalize_htu` never panics and is idempotent; `htu_matches` is symmetric, and reflexive on
//!   every URI that normalizes.
//! - `parse_authorization` never panics and accepts only a `token68`.
//! - A rendered `WWW-Authenticate` challenge is visible ASCII, SP and HTAB only, and parses back
//!   into the exact parameters, with every quoted-string properly escaped.
//! - `NonceIssuer::check` never panics and never accepts a nonce it did not issue.
//! - A configuration `build()` accepts (any `iat` window, size limit, nonce lifetime, guard
//!   choice) never panics at request time, admits a valid proof exactly when it fits the size
//!   limits, and never admits garbage; extreme durations are checked in every combination.
//!
//! Case counts are kept small (see [`config`]) so the whole file runs in seconds in debug.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dpop_core::nonce::{NonceIssuer, NonceKey};
use dpop_core::{
    Admission, Algorithm, AlgorithmSet, ConfigError, DpopGuard, DpopKey, DpopVerifier, ErrorCode, InvalidToken,
    NoncePolicy, ProofRequest, PublicKey, Rejection, RequestUri, Thumbprint, TokenClaims, TokenError,
    access_token_hash, clock::ManualClock, headers::HeaderValues, internals::Challenge, internals::Credentials,
    internals::ErrorScheme, internals::htu_matches, internals::normalize_htu, internals::parse_authorization,
    internals::quoted_string, validator_fn,
};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Map, Value, json};

use common::{METHOD, NOW, RFC_ACCESS_TOKEN, RFC_FIGURE_13, RFC_FIGURE_13_IAT, TOKEN, URL};

/// Cases per property, and no regression files written next to the sources.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

// ---------------------------------------------------------------------------------------------
// Fixtures shared by the proof properties.

/// The client key every generated proof is signed with.
static KEY: LazyLock<DpopKey> = LazyLock::new(|| DpopKey::generate().unwrap());

/// A verifier at [`NOW`] allowing every algorithm the backend supports, so that parsing and
/// key checks for every key type are reachable.
static VERIFIER: LazyLock<DpopVerifier> = LazyLock::new(|| {
    DpopVerifier::builder()
        .clock(ManualClock::at(NOW))
        .algorithms(Algorithm::ALL.into_iter().filter(|alg| alg.is_supported()))
        .build()
        .unwrap()
});

/// The request every generated proof is checked against.
fn request() -> ProofRequest<'static> {
    ProofRequest::new(METHOD, URL).access_token(TOKEN)
}

/// The header and claims of a valid proof signed by [`KEY`].
fn valid_parts() -> (Value, Value) {
    let builder = KEY.proof(METHOD, URL).access_token(TOKEN).issued_at(NOW as i64).jti("a-unique-jti");
    (builder.header(), builder.claims().unwrap())
}

/// A valid proof signed by [`KEY`].
static VALID_PROOF: LazyLock<String> = LazyLock::new(|| {
    let (header, claims) = valid_parts();
    KEY.sign_jws(&header.to_string(), &claims.to_string()).unwrap()
});

fn check(proof: &[u8]) -> Result<(), dpop_core::DpopError> {
    VERIFIER.check([proof], &request()).map(|_| ())
}

// ---------------------------------------------------------------------------------------------
// Generators.

/// Any text: printable ASCII with quotes and backslashes, any Unicode, control characters.
fn text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(any::<char>(), 0..max).prop_map(|chars| chars.into_iter().collect()),
        proptest::collection::vec(
            prop_oneof![4 => proptest::char::range(' ', '~'), 1 => select(vec!['"', '\\', '\t', '\r', '\n', '\0', '\u{7f}', 'é', '€', '\u{feff}'])],
            0..max
        )
        .prop_map(|chars| chars.into_iter().collect()),
    ]
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        text(12).prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(text(6), inner, 0..4)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// Values close to the right ones for the member `name`, so that generated proofs are often
/// almost valid; for a name the verifier does not read, a mix of all of them.
fn candidates(name: &str) -> Vec<Value> {
    let (header, claims) = valid_parts();
    let own_jwk = header["jwk"].clone();
    let rfc_jwk: Value = serde_json::from_str(common::RFC_JWK).unwrap();
    let rsa_jwk: Value = serde_json::from_str(common::RFC7638_JWK).unwrap();
    let variant = |member: &str, value: Value| {
        let mut jwk = own_jwk.clone();
        jwk[member] = value;
        jwk
    };
    let now = NOW as i64;
    let strings = |values: &[&str]| values.iter().map(|s| json!(s)).collect::<Vec<_>>();
    let mut values = match name {
        "typ" => strings(&["dpop+jwt", "DPoP+jwt", "dpop+JWT", "dpop+jwt ", "jwt", "JWT", "at+jwt", ""]),
        "alg" => strings(&["ES256", "es256", "ES384", "ES512", "EdDSA", "RS256", "PS256", "HS256", "none", ""]),
        "jwk" => vec![
            own_jwk.clone(),
            rfc_jwk.clone(),
            rsa_jwk,
            variant("x", rfc_jwk["x"].clone()),
            variant("y", rfc_jwk["y"].clone()),
            variant("crv", json!("P-384")),
            variant("kty", json!("OKP")),
            variant("d", json!("AAAA")),
            variant("kid", json!("key-1")),
            variant("n", json!("AQAB")),
            variant("e", json!(65537)),
            json!({"kty": "oct", "k": "c2VjcmV0"}),
            json!("not an object"),
        ],
        "kty" => strings(&["EC", "ec", "OKP", "RSA", "oct", ""]),
        "crv" => strings(&["P-256", "p-256", "P-384", "P-521", "Ed25519", "secp256k1"]),
        "x" | "y" => {
            let own = own_jwk[name].as_str().unwrap().to_owned();
            let mut values = strings(&[&own, &format!("{own}="), &own[1..], &format!("{own}A"), &own.to_uppercase()]);
            values.push(rfc_jwk[name].clone());
            values
        }
        "n" | "e" | "d" | "k" => strings(&["AQAB", "", "c2VjcmV0"]),
        "crit" => vec![json!(["exp"]), json!([]), json!("exp")],
        "jku" | "x5u" => strings(&["https://attacker.example/jwks.json", ""]),
        "x5c" => vec![json!(["MIIB"]), json!([])],
        "jti" => vec![json!("another-jti"), json!(""), json!("x".repeat(256)), json!("x".repeat(257)), json!(7)],
        "htm" => strings(&["POST", "post", "GET", "POST ", " POST", "PUT", ""]),
        "htu" => strings(&[
            URL,
            "https://mcp.example.com/mcp?query#fragment",
            "HTTPS://MCP.EXAMPLE.COM:443/mcp",
            "https://mcp.example.com/a/../mcp",
            "https://mcp.example.com/%6dcp",
            "https://mcp.example.com/MCP",
            "https://mcp.example.com/mcp/",
            "http://mcp.example.com/mcp",
            "https://mcp.example.com:8443/mcp",
            "https://user@mcp.example.com/mcp",
            "https://mcp.example.com./mcp",
            "/mcp",
            "",
        ]),
        "iat" => vec![
            json!(now),
            json!(now - 300),
            json!(now + 300),
            json!(now - 301),
            json!(now + 301),
            json!(now as f64 + 0.5),
            json!((now - 300) as f64 - 0.5),
            json!((now + 300) as f64 + 0.5),
            json!(now.to_string()),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1e300),
        ],
        "ath" => vec![
            json!(access_token_hash(TOKEN)),
            json!(access_token_hash("another token")),
            json!(common::RFC_ATH),
            json!(format!("{}=", access_token_hash(TOKEN))),
            json!(""),
        ],
        "nonce" => vec![json!("a-nonce"), json!(""), json!(1)],
        _ => {
            let read = [Part::Header, Part::Jwk, Part::Claims].into_iter().flat_map(Part::names);
            let mut all: Vec<Value> = read.flat_map(|name| candidates(name)).collect();
            all.extend([json!(null), json!(true), json!([]), json!({}), json!("")]);
            return all;
        }
    };
    // The right value itself, where there is one.
    values.extend([&header, &claims, &header["jwk"]].into_iter().filter_map(|object| object.get(name)).cloned());
    values
}

/// Member names the verifier reads (header, JWK, claims) and a few others.
const KNOWN_NAMES: &[&str] = &[
    "typ", "alg", "jwk", "crit", "jku", "x5u", "x5c", "kid", "kty", "crv", "x", "y", "n", "e", "d", "p", "q", "dp",
    "dq", "qi", "oth", "k", "jti", "htm", "htu", "iat", "ath", "nonce", "exp", "nbf",
];

/// Where an edit applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Header,
    Jwk,
    Claims,
}

impl Part {
    /// The member names the verifier reads in this part.
    fn names(self) -> &'static [&'static str] {
        match self {
            Self::Header => &["typ", "alg", "jwk", "crit", "jku", "x5u", "x5c"],
            Self::Jwk => &["kty", "crv", "x", "y", "n", "e", "d", "k"],
            Self::Claims => &["jti", "htm", "htu", "iat", "ath", "nonce"],
        }
    }

    /// This part of a valid proof.
    fn valid(self) -> Map<String, Value> {
        let (header, claims) = valid_parts();
        let object = match self {
            Self::Header => header,
            Self::Jwk => header["jwk"].clone(),
            Self::Claims => claims,
        };
        object.as_object().unwrap().clone()
    }
}

fn any_part() -> impl Strategy<Value = Part> {
    select(vec![Part::Header, Part::Jwk, Part::Claims])
}

/// A member name: mostly one this part's checks read.
fn member_name(part: Part) -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(part.names()).prop_map(str::to_owned),
        2 => select(KNOWN_NAMES).prop_map(str::to_owned),
        1 => "[a-z]{1,5}",
        1 => text(6),
    ]
}

/// A value for `name`: mostly a near-miss (or the right one), sometimes any JSON.
fn member_value(name: &str) -> BoxedStrategy<Value> {
    prop_oneof![4 => select(candidates(name)), 1 => json_value()].boxed()
}

/// One change to a proof's header, JWK or claims before signing.
#[derive(Clone, Debug)]
enum Edit {
    Remove(Part, String),
    Set(Part, String, Value),
}

fn edit() -> impl Strategy<Value = Edit> {
    (any_part(), any::<bool>()).prop_flat_map(|(part, remove)| {
        member_name(part).prop_flat_map(move |name| {
            if remove {
                Just(Edit::Remove(part, name)).boxed()
            } else {
                member_value(&name).prop_map(move |value| Edit::Set(part, name.clone(), value)).boxed()
            }
        })
    })
}

/// A generated object for `part`: each member the checks read is mostly right, sometimes absent,
/// a near-miss or any JSON; a few other members are added.
fn generated_object(part: Part) -> impl Strategy<Value = Value> {
    let valid = part.valid();
    let members: Vec<BoxedStrategy<Option<(String, Value)>>> = part
        .names()
        .iter()
        .map(|&name| {
            let entry = move |value: Value| Some((name.to_owned(), value));
            match valid.get(name).cloned() {
                Some(right) => prop_oneof![
                    30 => Just(Some((name.to_owned(), right))),
                    1 => Just(None),
                    2 => select(candidates(name)).prop_map(entry),
                    1 => json_value().prop_map(entry),
                ]
                .boxed(),
                None => prop_oneof![
                    40 => Just(None),
                    1 => select(candidates(name)).prop_map(entry),
                    1 => json_value().prop_map(entry),
                ]
                .boxed(),
            }
        })
        .collect();
    let extra = proptest::collection::vec(
        prop_oneof![1 => "[a-z]{1,5}", 1 => text(6)].prop_flat_map(|name| (Just(name.clone()), member_value(&name))),
        0..3,
    );
    (members, extra).prop_map(|(members, extra)| {
        Value::Object(members.into_iter().flatten().chain(extra).collect::<Map<String, Value>>())
    })
}

fn apply(edit: &Edit, header: &mut Value, claims: &mut Value) {
    let (part, name) = match edit {
        Edit::Remove(part, name) | Edit::Set(part, name, _) => (*part, name),
    };
    let object = match part {
        Part::Header => header.as_object_mut(),
        Part::Jwk => header.get_mut("jwk").and_then(Value::as_object_mut),
        Part::Claims => claims.as_object_mut(),
    };
    let Some(object) = object else { return };
    match edit {
        Edit::Remove(..) => {
            object.remove(name);
        }
        Edit::Set(_, _, value) => {
            object.insert(name.clone(), value.clone());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The reference model: whether RFC 9449 §4.3 (and this library's documented policy) accepts a
// proof with this header and these claims, signed by KEY, for `POST URL` with TOKEN at NOW.

/// Members a JWK must not have: private or symmetric key material.
const PRIVATE_JWK_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn model_accepts(header: &Value, claims: &Value) -> bool {
    let (Some(header), Some(claims)) = (header.as_object(), claims.as_object()) else { return false };
    header_acceptable(header) && claims_acceptable(claims)
}

fn header_acceptable(header: &Map<String, Value>) -> bool {
    header.len() <= 32
        && header.get("typ") == Some(&json!("dpop+jwt"))
        && header.get("alg") == Some(&json!("ES256"))
        && !["crit", "jku", "x5u", "x5c"].iter().any(|name| header.contains_key(*name))
        && header.get("jwk").is_some_and(jwk_is_signing_key)
}

/// The JWK is KEY's public key (extra members allowed, private members and wrong types not).
fn jwk_is_signing_key(jwk: &Value) -> bool {
    let own = KEY.public_jwk();
    let Some(jwk) = jwk.as_object() else { return false };
    jwk.len() <= 32
        && !PRIVATE_JWK_MEMBERS.iter().any(|name| jwk.contains_key(*name))
        && ["n", "e"].iter().all(|name| jwk.get(*name).is_none_or(Value::is_string))
        && ["kty", "crv", "x", "y"].iter().all(|name| jwk.get(*name) == own.get(*name))
}

fn claims_acceptable(claims: &Map<String, Value>) -> bool {
    claims.len() <= 32
        && claims.get("jti").and_then(Value::as_str).is_some_and(|jti| !jti.is_empty() && jti.len() <= 256)
        && claims.get("htm") == Some(&json!(METHOD))
        && claims.get("htu").and_then(Value::as_str).is_some_and(|htu| htu_matches(htu, URL))
        && claims.get("iat").is_some_and(iat_in_window)
        && claims.get("ath") == Some(&json!(access_token_hash(TOKEN)))
        && claims.get("nonce").is_none_or(Value::is_string)
}

/// A NumericDate (fractions truncated) within ±300 s of NOW.
fn iat_in_window(iat: &Value) -> bool {
    let Value::Number(number) = iat else { return false };
    let seconds = if let Some(seconds) = number.as_i64() {
        seconds
    } else if number.is_u64() {
        return false;
    } else {
        match number.as_f64() {
            Some(f) if f.is_finite() && f.abs() < 9.0e18 => f.trunc() as i64,
            _ => return false,
        }
    };
    let now = NOW as i64;
    (now - 300..=now + 300).contains(&seconds)
}

// ---------------------------------------------------------------------------------------------
// 1. `check` on arbitrary header values.

/// Text shaped like a compact JWS: three base64url-ish segments, sometimes of real JSON.
fn jws_like() -> impl Strategy<Value = Vec<u8>> {
    let segment = prop_oneof![
        "[A-Za-z0-9_-]{0,64}",
        "[A-Za-z0-9_+/=-]{0,16}",
        json_value().prop_map(|value| URL_SAFE_NO_PAD.encode(value.to_string())),
        proptest::collection::btree_map(
            prop_oneof![select(KNOWN_NAMES).prop_map(str::to_owned), text(6)],
            json_value(),
            0..6
        )
        .prop_map(|members| URL_SAFE_NO_PAD.encode(Value::Object(members.into_iter().collect()).to_string())),
    ];
    proptest::collection::vec(segment, 0..5).prop_map(|segments| segments.join(".").into_bytes())
}

proptest! {
    #![proptest_config(config(256))]

    /// Random bytes as the `DPoP` header never panic and never verify.
    #[test]
    fn random_header_values_never_verify(
        value in prop_oneof![proptest::collection::vec(any::<u8>(), 0..600), jws_like()],
        second in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
    ) {
        prop_assert!(check(&value).is_err());
        let values: HeaderValues<'_> = [value.as_slice()].into_iter().chain(second.as_deref()).collect();
        prop_assert!(VERIFIER.check(values.iter(), &request()).is_err());
        prop_assert!(VERIFIER.check(values.iter(), &ProofRequest::new(METHOD, URL)).is_err());
    }
}

/// Whether `proof` verifies: as the RFC 9449 Figure 13 resource request, or as ours.
fn verifies(rfc: bool, proof: &[u8]) -> bool {
    if rfc {
        let verifier = DpopVerifier::builder().clock(ManualClock::at(RFC_FIGURE_13_IAT)).build().unwrap();
        let request =
            ProofRequest::new("GET", "https://resource.example.org/protectedresource").access_token(RFC_ACCESS_TOKEN);
        verifier.check([proof], &request).is_ok()
    } else {
        check(proof).is_ok()
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Well-formed, correctly signed JWS: the verifier agrees with the model.

proptest! {
    #![proptest_config(config(256))]

    /// One to three edits of a valid proof's header, JWK or claims, then signed: verifies
    /// exactly when the model accepts. An unedited proof always verifies.
    #[test]
    fn edited_proofs_verify_only_when_the_model_accepts(
        edits in proptest::collection::vec(edit(), 0..=3),
    ) {
        let (original_header, original_claims) = valid_parts();
        let (mut header, mut claims) = (original_header.clone(), original_claims.clone());
        for edit in &edits {
            apply(edit, &mut header, &mut claims);
        }
        let expected = model_accepts(&header, &claims);
        if header == original_header && claims == original_claims {
            prop_assert!(expected, "the model must accept the unedited proof");
        }
        let proof = KEY.sign_jws(&header.to_string(), &claims.to_string()).unwrap();
        let result = check(proof.as_bytes());
        prop_assert_eq!(
            result.is_ok(), expected,
            "verifier: {:?}\nheader: {}\nclaims: {}", result, header, claims
        );
    }

    /// Generated header, JWK and claims objects (each member mostly right, sometimes absent, a
    /// near-miss or any JSON, plus other members), signed by KEY: never panic, and verify
    /// exactly when the model accepts.
    #[test]
    fn generated_objects_verify_only_when_the_model_accepts(
        mut header in generated_object(Part::Header),
        jwk in generated_object(Part::Jwk),
        claims in generated_object(Part::Claims),
    ) {
        if header.get("jwk") == Some(&KEY.public_jwk()) {
            header["jwk"] = jwk;
        }
        let proof = KEY.sign_jws(&header.to_string(), &claims.to_string()).unwrap();
        let result = check(proof.as_bytes());
        prop_assert_eq!(
            result.is_ok(), model_accepts(&header, &claims),
            "verifier: {:?}\nheader: {}\nclaims: {}", result, header, claims
        );
        // The JWK parser on its own: never panics, and agrees with itself.
        if let Some(jwk) = header.get("jwk") {
            let text = jwk.to_string();
            let parsed = PublicKey::from_jwk(&text);
            prop_assert_eq!(parsed.as_ref().ok().map(|(_, thumbprint)| *thumbprint), Thumbprint::of_jwk_json(&text).ok());
            if jwk_is_signing_key(jwk) {
                prop_assert_eq!(parsed.map(|(_, thumbprint)| thumbprint), Ok(KEY.thumbprint()));
            }
        }
    }

    /// A member written twice (raw JSON text: `serde_json::Value` cannot hold duplicates) makes a
    /// correctly signed proof invalid, whatever the two values.
    #[test]
    fn duplicate_members_never_verify(
        part in any_part(),
        which in any::<Index>(),
        value in proptest::option::of(json_value()),
        before in any::<bool>(),
    ) {
        let (header, claims) = valid_parts();
        let object = match part {
            Part::Header => &header,
            Part::Jwk => &header["jwk"],
            Part::Claims => &claims,
        };
        let names: Vec<&String> = object.as_object().unwrap().keys().collect();
        let name = names[which.index(names.len())];
        // The second value: the same again, or any other.
        let value = value.unwrap_or_else(|| object[name.as_str()].clone());
        let extra = format!("{}:{}", Value::String(name.clone()), value);
        let (mut header_text, mut claims_text) = (header.to_string(), claims.to_string());
        let (text, open) = match part {
            Part::Header => (&mut header_text, 0),
            Part::Jwk => {
                let at = header_text.find("\"jwk\":{").unwrap() + "\"jwk\":".len();
                (&mut header_text, at)
            }
            Part::Claims => (&mut claims_text, 0),
        };
        // Insert right after the object's `{`, or right before its `}`.
        if before {
            text.insert_str(open + 1, &format!("{extra},"));
        } else {
            let close = if part == Part::Jwk { open + text[open..].find('}').unwrap() } else { text.len() - 1 };
            text.insert_str(close, &format!(",{extra}"));
        }
        prop_assert!(serde_json::from_str::<Value>(text).is_ok(), "still JSON: {}", text);
        let proof = KEY.sign_jws(&header_text, &claims_text).unwrap();
        let result = check(proof.as_bytes());
        prop_assert!(result.is_err(), "accepted a duplicate member: {} / {}", header_text, claims_text);
    }

    /// A valid proof (ours, or the RFC 9449 Figure 13 example) changed after signing — one
    /// character replaced, inserted or deleted — never verifies.
    #[test]
    fn proofs_changed_after_signing_never_verify(
        rfc in any::<bool>(),
        at in any::<Index>(),
        op in 0..3u8,
        byte in prop_oneof![
            select(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".to_vec()),
            select(b".=+/ \t\0".to_vec()),
            any::<u8>(),
        ],
    ) {
        let original = if rfc { RFC_FIGURE_13 } else { VALID_PROOF.as_str() };
        let verify = |proof: &[u8]| verifies(rfc, proof);
        prop_assert!(verify(original.as_bytes()), "the unchanged proof must verify");
        let mut changed = original.as_bytes().to_vec();
        let i = at.index(changed.len());
        match op {
            0 => changed[i] = byte,
            1 => changed.insert(i, byte),
            _ => {
                changed.remove(i);
            }
        }
        if changed != original.as_bytes() {
            prop_assert!(!verify(&changed), "accepted {:?}", String::from_utf8_lossy(&changed));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. `htu` normalization.

/// Mostly one of `usual`, sometimes one of `unusual`.
fn mostly(usual: Vec<&'static str>, unusual: Vec<&'static str>) -> impl Strategy<Value = String> + Clone {
    prop_oneof![8 => select(usual), 1 => select(unusual)].prop_map(str::to_owned)
}

/// Strings shaped like http(s) URIs, with the parts normalization cares about; most of them
/// are valid, each part sometimes is not.
fn uri_like() -> impl Strategy<Value = String> {
    let scheme = mostly(vec!["http", "https", "HTTP", "HtTpS"], vec!["ftp", "h", "", "http+x", "1http"]);
    let slashes = mostly(vec!["://"], vec![":/", ":", ":///"]);
    let userinfo = prop_oneof![12 => Just(String::new()), 1 => mostly(vec!["user@", "u:p@"], vec!["@", "%40@"])];
    let host = prop_oneof![
        2 => mostly(
            vec![
                "mcp.example.com",
                "MCP.Example.COM",
                "127.0.0.1",
                "[::1]",
                "[0:0:0:0:0:0:0:1]",
                "[::FFFF:127.0.0.1]",
                "[v7.x]",
                "a%41",
                "%7e",
                "%7E%7e",
                "%2e",
                "%c3%a9",
                "xn--bcher-kva.example",
                "0x7f.1",
                "0177.0.0.1",
            ],
            vec!["", "%", "[fe80::1%25eth0]", "é.example", "[", "[::1", "a b"],
        ),
        1 => "[a-zA-Z0-9.~_-]{1,12}",
    ];
    let port = prop_oneof![
        4 => Just(String::new()),
        1 => mostly(vec![":", ":80", ":443", ":8080", ":0443", ":00", ":65536"], vec![":99999999999999999999", ":x", "::"]),
    ];
    let segment = prop_oneof![
        2 => mostly(
            vec![
                ".", "..", "%2e", "%2E%2e", ".%2E", "%2e.", "%7E", "%7e", "%41", "%61", "%2F", "%2f", "%25", "%252e", "a",
                "A", "", "~", "%e9", ";p=1", "a:b", "@", "%3A", "mcp",
            ],
            vec!["%", "%zz", "é", " ", "[", "\\"],
        ),
        1 => "[a-zA-Z0-9._~!$&'()*+,;=:@-]{0,6}",
    ];
    let path = proptest::collection::vec(segment, 0..5)
        .prop_map(|segments| if segments.is_empty() { String::new() } else { format!("/{}", segments.join("/")) });
    let tail = prop_oneof![
        3 => Just(String::new()),
        1 => mostly(vec!["?", "?q=1", "#", "#f", "?a#b", "#?/../x"], vec!["?%zz", "? x", "#é"]),
    ];
    (scheme, slashes, userinfo, host, port, path, tail).prop_map(
        |(scheme, slashes, userinfo, host, port, path, tail)| {
            format!("{scheme}{slashes}{userinfo}{host}{port}{path}{tail}")
        },
    )
}

fn any_uri() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => uri_like(),
        1 => text(40),
        1 => (uri_like(), any::<Index>(), any::<char>()).prop_map(|(uri, at, c)| {
            let mut chars: Vec<char> = uri.chars().collect();
            chars.insert(at.index(chars.len() + 1), c);
            chars.into_iter().collect()
        }),
    ]
}

/// A second URI, often a variant of the first so that matching pairs come up.
fn uri_pair() -> impl Strategy<Value = (String, String)> {
    any_uri().prop_flat_map(|a| {
        let b = prop_oneof![
            Just(a.clone()),
            Just(a.to_ascii_uppercase()),
            Just(a.to_ascii_lowercase()),
            Just(format!("{a}?query")),
            Just(a.replace('~', "%7E")),
            Just(a.replace("/", "/./")),
            Just(a.replace(".com/", ".com:443/")),
            any_uri(),
        ];
        (Just(a), b)
    })
}

proptest! {
    #![proptest_config(config(512))]

    /// `normalize_htu` never panics, is idempotent, and its output is a plain http(s) URI.
    #[test]
    fn normalize_htu_is_idempotent(uri in any_uri()) {
        if let Some(normal) = normalize_htu(&uri) {
            let again = normalize_htu(&normal);
            prop_assert_eq!(again.as_deref(), Some(normal.as_str()), "input: {:?}", uri);
            prop_assert!(normal.starts_with("http://") || normal.starts_with("https://"), "{:?} -> {:?}", uri, normal);
            prop_assert!(!normal.contains(['?', '#']), "{:?} -> {:?}", uri, normal);
            prop_assert!(htu_matches(&uri, &uri), "not reflexive: {:?}", uri);
            prop_assert!(htu_matches(&uri, &normal), "{:?} does not match its normal form {:?}", uri, normal);
        } else {
            prop_assert!(!htu_matches(&uri, &uri));
        }
    }

    /// `htu_matches` is symmetric, and is exactly equality of the normal forms.
    #[test]
    fn htu_matches_is_symmetric((a, b) in uri_pair()) {
        let matches = htu_matches(&a, &b);
        prop_assert_eq!(matches, htu_matches(&b, &a), "{:?} vs {:?}", a, b);
        let (na, nb) = (normalize_htu(&a), normalize_htu(&b));
        prop_assert_eq!(matches, na.is_some() && na == nb, "{:?} vs {:?}", a, b);
    }
}

// ---------------------------------------------------------------------------------------------
// 4. `Authorization`.

/// `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` (RFC 9110 §11.2).
fn is_token68(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

fn authorization_value() -> impl Strategy<Value = Vec<u8>> {
    let scheme = prop_oneof![
        4 => mostly(vec!["DPoP", "dpop", "DPOP", "Bearer", "bearer", "BEARER"], vec!["Basic", "DPoP,", "D", "", "Bearer:"]),
        1 => "[!-~]{0,8}",
    ];
    let separator = mostly(vec![" ", "  "], vec!["", "\t", " \t", ", ", "\u{a0}"]);
    let token = prop_oneof![4 => "[A-Za-z0-9._~+/-]{1,20}={0,3}", 1 => "[ -~]{0,20}", 1 => text(20)];
    let tail = prop_oneof![
        3 => Just(String::new()),
        1 => mostly(vec!["=", "==", " ", "==a"], vec![",x", ", Bearer x", "\r\n", "\0", "\t"]),
    ];
    prop_oneof![
        3 => (scheme, separator, token, tail)
            .prop_map(|(scheme, separator, token, tail)| format!("{scheme}{separator}{token}{tail}").into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    /// Never panics; an accepted token is a `token68`, the rest of the value after a DPoP or
    /// Bearer scheme and spaces; a second field is always rejected.
    #[test]
    fn parse_authorization_accepts_only_token68(value in authorization_value(), twice in proptest::bool::weighted(0.1)) {
        let values: HeaderValues<'_> = std::iter::repeat_n(value.as_slice(), if twice { 2 } else { 1 }).collect();
        let parsed = parse_authorization(values);
        if twice {
            prop_assert!(parsed.is_err());
            return Ok(());
        }
        let token = match parsed {
            Ok(Credentials::Dpop(token)) => Some(("dpop", token)),
            Ok(Credentials::Bearer(token)) => Some(("bearer", token)),
            Ok(Credentials::Absent) => panic!("one value is not an absent field"),
            Ok(Credentials::OtherScheme) | Err(_) => None,
        };
        let text = std::str::from_utf8(&value);
        if let Some((scheme, token)) = token {
            prop_assert!(is_token68(token), "accepted {:?} from {:?}", token, text);
            let text = text.unwrap();
            let (prefix, spaces) = text.split_at(scheme.len());
            prop_assert!(prefix.eq_ignore_ascii_case(scheme), "{:?}", text);
            prop_assert_eq!(spaces.trim_start_matches(' '), token, "{:?}", text);
            prop_assert!(spaces.starts_with(' '), "{:?}", text);
        }
        // And the converse: `DPoP|Bearer 1*SP token68` is accepted with exactly that token.
        if let Ok(text) = text
            && let Some((scheme, rest)) = text.split_once(' ') {
                let token = rest.trim_start_matches(' ');
                if is_token68(token) && (scheme.eq_ignore_ascii_case("dpop") || scheme.eq_ignore_ascii_case("bearer")) {
                    let expected = if scheme.eq_ignore_ascii_case("dpop") {
                        Credentials::Dpop(token)
                    } else {
                        Credentials::Bearer(token)
                    };
                    prop_assert_eq!(parsed, Ok(expected));
                }
            }
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Challenges.

const CODES: [ErrorCode; 6] = [
    ErrorCode::InvalidDpopProof,
    ErrorCode::InvalidToken,
    ErrorCode::UseDpopNonce,
    ErrorCode::InvalidRequest,
    ErrorCode::InsufficientScope,
    ErrorCode::TemporarilyUnavailable,
];

#[path = "support/challenge_grammar.rs"]
mod challenge_grammar;

use challenge_grammar::{ChallengeInputs, Reader, expected_challenges, parse_challenges, sanitized};

fn algorithm_set() -> impl Strategy<Value = AlgorithmSet> {
    prop_oneof![
        Just(AlgorithmSet::default()),
        proptest::collection::vec(select(Algorithm::ALL.to_vec()), 0..6).prop_map(|algs| algs.into_iter().collect()),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    /// The rendered challenge is visible ASCII, SP and HTAB only, and parses back into exactly
    /// the parameters it was given (sanitized), whatever the strings.
    #[test]
    fn challenges_render_as_valid_header_values(
        code in select(CODES.to_vec()),
        description in text(40),
        scope in proptest::option::of(text(30)),
        metadata in proptest::option::of(text(40)),
        on in select(vec![ErrorScheme::Dpop, ErrorScheme::Bearer, ErrorScheme::Both]),
        bearer in any::<bool>(),
        with_error in any::<bool>(),
        algs in algorithm_set(),
    ) {
        let mut challenge = Challenge::new(algs).with_bearer(bearer);
        if with_error {
            challenge = challenge.error_code(code, &description, on);
        }
        if let Some(scope) = &scope {
            challenge = challenge.scope(scope);
        }
        if let Some(metadata) = &metadata {
            challenge = challenge.resource_metadata(metadata);
        }
        let rendered = challenge.render();
        prop_assert!(
            rendered.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)),
            "not a visible-ASCII header value: {:?}", rendered
        );
        let parsed = parse_challenges(&rendered);
        prop_assert!(parsed.is_ok(), "{:?} in {:?}", parsed, rendered);

        let expected = expected_challenges(&ChallengeInputs {
            error: with_error.then_some((code, description.as_str(), on)),
            scope: scope.as_deref(),
            metadata: metadata.as_deref(),
            bearer,
            algs,
        });
        prop_assert_eq!(parsed.unwrap(), expected, "rendered: {:?}", rendered);
    }

    /// `quoted_string` makes one quoted-string that reads back as the sanitized value.
    #[test]
    fn quoted_string_round_trips(value in text(40)) {
        let quoted = quoted_string(&value);
        let mut reader = Reader { bytes: quoted.as_bytes(), at: 0 };
        let read = reader.quoted_string();
        prop_assert_eq!(read, Ok(sanitized(&value)), "quoted: {:?}", quoted);
        prop_assert_eq!(reader.at, quoted.len(), "trailing bytes in {:?}", quoted);
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Nonces.

static NONCES: LazyLock<NonceIssuer> =
    LazyLock::new(|| NonceIssuer::new(NonceKey::new(3, [0x5a; 32])).clock(ManualClock::at(NOW)));

/// Candidate nonces: any text, base64url of the right length, well-structured forgeries with the
/// right version, key id and a fresh time, and valid nonces with one character changed.
fn nonce_candidate() -> impl Strategy<Value = String> {
    let forged = (proptest::collection::vec(any::<u8>(), 8 + 16), -400i64..10, any::<bool>()).prop_map(
        |(random_and_tag, age, right_key)| {
            let mut raw = vec![1u8, if right_key { 3 } else { 4 }];
            raw.extend_from_slice(&(NOW as i64 - age).to_be_bytes());
            raw.extend_from_slice(&random_and_tag);
            URL_SAFE_NO_PAD.encode(raw)
        },
    );
    let mutated =
        (any::<Index>(), select(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=.".to_vec()))
            .prop_map(|(at, byte)| {
                let mut nonce = NONCES.issue().unwrap().into_bytes();
                let i = at.index(nonce.len());
                // Always a different character: the result is never a nonce the issuer made.
                nonce[i] = if nonce[i] == byte { if byte == b'A' { b'B' } else { b'A' } } else { byte };
                String::from_utf8(nonce).unwrap()
            });
    prop_oneof![text(60), "[A-Za-z0-9_-]{46}", "[A-Za-z0-9_+/=-]{44,48}", forged, mutated]
}

proptest! {
    #![proptest_config(config(256))]

    /// `check` never panics and never accepts a nonce the issuer did not make.
    #[test]
    fn forged_nonces_are_never_accepted(candidate in nonce_candidate()) {
        let issued = NONCES.issue().unwrap();
        prop_assert!(NONCES.check(Some(&issued)).is_ok(), "a fresh nonce must be accepted");
        if candidate != issued {
            let result = NONCES.check(Some(&candidate));
            prop_assert!(result.is_err(), "accepted {:?}: {:?}", candidate, result);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration: whatever `build()` accepts holds at request time.

/// Durations at and around the limits of every `iat` and nonce setting, and beyond.
const EXTREME_DURATIONS: [Duration; 6] = [
    Duration::ZERO,
    Duration::from_secs(1),
    Duration::from_secs(24 * 3600),
    Duration::from_secs(24 * 3600 + 1),
    Duration::from_secs(u64::MAX),
    Duration::MAX,
];

/// Mostly in range, so that most generated configurations build and reach a request.
fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        1 => select(EXTREME_DURATIONS.to_vec()),
        1 => (any::<u64>(), 0..1_000_000_000u32).prop_map(|(secs, nanos)| Duration::new(secs, nanos)),
        4 => (1..=86_400u64).prop_map(Duration::from_secs),
    ]
}

fn any_limit() -> impl Strategy<Value = usize> {
    prop_oneof![1 => select(vec![0, 1, usize::MAX]), 1 => any::<usize>(), 4 => 1..20_000usize]
}

/// Everything a deployment can choose, right or wrong.
#[derive(Clone, Debug)]
struct Settings {
    max_age: Duration,
    max_clock_skew: Duration,
    max_proof_len: usize,
    max_jti_len: usize,
    /// `Some(lifetime)`: the verifier issues nonces.
    nonce_lifetime: Option<Duration>,
    nonce_always: bool,
    proof_only: bool,
    allow_bearer: bool,
    public_origin: bool,
    trust_forwarded_headers: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(300),
            max_clock_skew: Duration::from_secs(300),
            max_proof_len: dpop_core::DEFAULT_MAX_PROOF_LEN,
            max_jti_len: dpop_core::DEFAULT_MAX_JTI_LEN,
            nonce_lifetime: None,
            nonce_always: false,
            proof_only: false,
            allow_bearer: false,
            public_origin: false,
            trust_forwarded_headers: false,
        }
    }
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        (any_duration(), any_duration(), any_limit(), any_limit()),
        (proptest::option::weighted(0.7, any_duration()), any::<bool>()),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                (max_age, max_clock_skew, max_proof_len, max_jti_len),
                (nonce_lifetime, nonce_always),
                (proof_only, allow_bearer, public_origin, trust_forwarded_headers),
            )| Settings {
                max_age,
                max_clock_skew,
                max_proof_len,
                max_jti_len,
                nonce_lifetime,
                nonce_always,
                proof_only,
                allow_bearer,
                public_origin,
                trust_forwarded_headers,
            },
        )
}

/// The guard for `settings`, or why `build()` refused them; its clock is at [`NOW`].
fn configured_guard(settings: &Settings) -> Result<DpopGuard, ConfigError> {
    let mut verifier = DpopVerifier::builder()
        .clock(ManualClock::at(NOW))
        .max_age(settings.max_age)
        .max_clock_skew(settings.max_clock_skew)
        .max_proof_len(settings.max_proof_len)
        .max_jti_len(settings.max_jti_len);
    if let Some(lifetime) = settings.nonce_lifetime {
        let issuer = NonceIssuer::new(NonceKey::generate(1).unwrap()).lifetime(lifetime).clock(ManualClock::at(NOW));
        verifier = verifier.nonces(issuer);
    }
    let mut guard = DpopGuard::builder().verifier(verifier.build()?);
    guard = if settings.proof_only {
        guard.proof_only()
    } else {
        // The token is valid and bound to the proof key.
        let jkt = KEY.thumbprint().to_string();
        guard.token_validator(validator_fn(move |token: &str| {
            if token != TOKEN {
                return Err(TokenError::Invalid(InvalidToken::Other("unknown token")));
            }
            let mut claims = TokenClaims::default();
            claims.cnf_jkt = Some(jkt.clone());
            Ok(claims)
        }))
    };
    if settings.public_origin {
        guard = guard.public_origin("https://mcp.example.com");
    }
    if settings.nonce_always {
        guard = guard.nonce_policy(NoncePolicy::Always);
    }
    guard.allow_bearer(settings.allow_bearer).trust_forwarded_headers(settings.trust_forwarded_headers).build()
}

/// `POST https://mcp.example.com/mcp` with `DPoP an-access-token` and `proof`, through `guard`.
fn admit(guard: &DpopGuard, proof: &[u8]) -> Result<Admission, Rejection> {
    let uri = RequestUri { scheme: Some("https"), authority: Some("mcp.example.com"), path: "/mcp" };
    let authorization = format!("DPoP {TOKEN}");
    let headers = |name: &'static str| -> HeaderValues<'_> {
        match name {
            "authorization" => std::iter::once(authorization.as_bytes()).collect(),
            "dpop" => std::iter::once(proof).collect(),
            _ => HeaderValues::NONE,
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(guard.authorize(METHOD, &uri, headers))
}

/// Builds the guard; when `build()` accepts, a valid proof (with a nonce when the guard issues
/// them) passes exactly when it fits the size limits, `garbage` never passes, and nothing
/// panics on the way.
fn check_settings(settings: &Settings, jti: &str, garbage: &[u8]) {
    let Ok(guard) = configured_guard(settings) else {
        return;
    };
    let nonce = guard.verifier().nonces().map(|issuer| issuer.issue().unwrap());
    let mut proof = KEY.proof(METHOD, URL).access_token(TOKEN).issued_at(NOW as i64).jti(jti);
    if let Some(nonce) = &nonce {
        proof = proof.nonce(nonce);
    }
    let proof = proof.sign().unwrap();

    assert!(admit(&guard, garbage).is_err(), "{settings:?} accepted {garbage:?}");
    let fits = proof.len() <= settings.max_proof_len && jti.len() <= settings.max_jti_len;
    let admitted = admit(&guard, proof.as_bytes());
    assert_eq!(
        admitted.is_ok(),
        fits,
        "{settings:?}: {:?}",
        admitted.err().map(|r| r.www_authenticate().map(str::to_owned))
    );
    if fits {
        // Accepted once.
        assert!(admit(&guard, proof.as_bytes()).is_err(), "{settings:?}: replay accepted");
    }
}

/// Every combination of extreme durations, deterministically: the `iat` window and the nonce
/// lifetime are the settings whose arithmetic runs on every request.
#[test]
fn extreme_durations_are_refused_or_work() {
    for max_age in EXTREME_DURATIONS {
        for max_clock_skew in EXTREME_DURATIONS {
            for nonce_lifetime in EXTREME_DURATIONS {
                let settings = Settings {
                    max_age,
                    max_clock_skew,
                    nonce_lifetime: Some(nonce_lifetime),
                    nonce_always: true,
                    ..Settings::default()
                };
                check_settings(&settings, "a-jti", b"not a proof");
            }
            check_settings(&Settings { max_age, max_clock_skew, ..Settings::default() }, "a-jti", b"not a proof");
        }
    }
}

fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        jws_like(),
        // A valid proof cut short, or with bytes after it.
        any::<Index>().prop_map(|i| VALID_PROOF.as_bytes()[..i.index(VALID_PROOF.len())].to_vec()),
        "[A-Za-z0-9_.-]{1,8}".prop_map(|tail| format!("{}{tail}", *VALID_PROOF).into_bytes()),
    ]
}

proptest! {
    #![proptest_config(config(128))]

    /// A configuration `build()` accepts never panics at request time and never admits garbage.
    #[test]
    fn accepted_configurations_hold_at_request_time(
        settings in settings(),
        jti in "[A-Za-z0-9_-]{1,40}",
        garbage in garbage(),
    ) {
        check_settings(&settings, &jti, &garbage);
    }
}
