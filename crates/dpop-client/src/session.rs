//! [`DpopSession`]: the key and what each server said, framework-free.
//!
//! Integrations ([`DpopMiddleware`](crate::DpopMiddleware) for reqwest, the tower
//! [`DpopLayer`](crate::tower::DpopLayer), the rmcp client) are thin loops around two calls:
//! [`DpopSession::proof`] before a request and [`DpopSession::observe`] after it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, UNIX_EPOCH};

use dpop_core::{DpopKey, clock::Clock, clock::SystemClock};
use http::{HeaderMap, StatusCode};

use crate::challenge;
use crate::error::ClientError;

/// Default bound on the origins a session remembers (least recently used ones are forgotten).
pub const DEFAULT_MAX_ORIGINS: usize = 256;
/// Default threshold above which a server's `Date` sets the clock offset for its origin.
pub const DEFAULT_CLOCK_SKEW_THRESHOLD: Duration = Duration::from_secs(60);
/// The longest nonce kept: server nonces are short opaque strings (RFC 9449 §8.1).
const MAX_NONCE_LEN: usize = 1024;

/// What the client should do with a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// Hand the response to the caller.
    Done,
    /// Send the request once more with a fresh proof: the server asked for the nonce it has
    /// just given (RFC 9449 §8), or refused the proof's `iat` while its `Date` showed a clock
    /// this session did not know yet.
    Retry(RetryReason),
}

/// Why a request is worth sending again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryReason {
    /// `use_dpop_nonce` with a new `DPoP-Nonce`.
    Nonce,
    /// An `iat` refusal, and a changed clock offset for the origin.
    Clock,
}

/// A response as the session needs to see it.
#[derive(Clone, Copy, Debug)]
pub struct ResponseInfo<'a> {
    status: StatusCode,
    headers: &'a HeaderMap,
    body: Option<&'a [u8]>,
}

impl<'a> ResponseInfo<'a> {
    /// The status and headers of a response.
    #[must_use]
    pub const fn new(status: StatusCode, headers: &'a HeaderMap) -> Self {
        Self { status, headers, body: None }
    }

    /// With the body, when [`DpopSession::needs_body`] said it matters.
    #[must_use]
    pub const fn with_body(mut self, body: &'a [u8]) -> Self {
        self.body = Some(body);
        self
    }
}

/// A DPoP client: the key, and per origin the newest nonce and the server's clock offset.
///
/// Cheap to clone (clones share state). Never prints the key: `Debug` shows the thumbprint.
///
/// ```
/// use dpop_client::DpopSession;
/// use dpop_core::{DpopKey, DpopVerifier, ProofRequest};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let session = DpopSession::new(DpopKey::generate()?);
/// let proof = session.proof("GET", "https://mcp.example.com/mcp?x=1", Some("token"))?;
///
/// let request = ProofRequest::new("GET", "https://mcp.example.com/mcp").access_token("token");
/// let verified = DpopVerifier::new().verify([proof.as_bytes()], &request).await?;
/// assert_eq!(verified.jkt(), session.jkt());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct DpopSession {
    inner: Arc<Inner>,
}

struct Inner {
    key: DpopKey,
    /// The JOSE header (JSON text), the same for every proof of the key: serialized once.
    header: String,
    clock: Arc<dyn Clock>,
    max_origins: usize,
    skew_threshold: i64,
    origins: Mutex<Origins>,
}

#[derive(Default)]
struct Origins {
    entries: HashMap<String, OriginState>,
    tick: u64,
}

#[derive(Default)]
struct OriginState {
    nonce: Option<String>,
    offset: i64,
    last_used: u64,
}

impl DpopSession {
    /// A session signing with `key`, with the defaults.
    #[must_use]
    pub fn new(key: DpopKey) -> Self {
        Self::builder(key).build()
    }

    /// Configures a session signing with `key`.
    pub fn builder(key: DpopKey) -> DpopSessionBuilder {
        DpopSessionBuilder {
            key,
            clock: Arc::new(SystemClock),
            max_origins: DEFAULT_MAX_ORIGINS,
            skew_threshold: DEFAULT_CLOCK_SKEW_THRESHOLD,
        }
    }

    /// The key.
    #[must_use]
    pub fn key(&self) -> &DpopKey {
        &self.inner.key
    }

    /// The key's thumbprint (`jkt`, RFC 7638): what tokens get bound to, and the `dpop_jkt`
    /// of an authorization request.
    #[must_use]
    pub fn jkt(&self) -> String {
        self.inner.key.thumbprint().to_string()
    }

    /// A fresh proof for `method` on `url`: unique `jti` (128 random bits), `htm`, `htu` (the URL
    /// without query and fragment), `iat` by the origin's clock, the origin's newest nonce, and
    /// `ath` when an access token goes with the request.
    ///
    /// # Errors
    ///
    /// The URL is not absolute `http(s)`, or the backend failed to sign.
    pub fn proof(&self, method: &str, url: &str, access_token: Option<&str>) -> Result<String, ClientError> {
        let origin = origin_of(url).ok_or_else(|| ClientError::InvalidUrl.logged())?;
        let (nonce, offset) = self.with_origin(&origin, |state| (state.nonce.clone(), state.offset));
        let now = i64::try_from(self.inner.clock.now()).unwrap_or(i64::MAX);
        let claims = claims(method, url, now.saturating_add(offset), nonce.as_deref(), access_token)?;
        Ok(self.inner.key.sign_jws(&self.inner.header, &claims)?)
    }

    /// The newest nonce the server at `url`'s origin gave.
    #[must_use]
    pub fn nonce(&self, url: &str) -> Option<String> {
        let origin = origin_of(url)?;
        self.peek(&origin, |state| state.nonce.clone()).flatten()
    }

    /// Seconds added to this machine's clock for `iat` of proofs to `url`'s origin.
    #[must_use]
    pub fn clock_offset(&self, url: &str) -> i64 {
        origin_of(url).and_then(|origin| self.peek(&origin, |state| state.offset)).unwrap_or(0)
    }

    /// Whether the body of this response must be read for [`observe`](Self::observe): a 400 with
    /// a JSON body is how an authorization server says `use_dpop_nonce` or
    /// `invalid_dpop_proof` (RFC 9449 §5, §8). Integrations read such bodies up to a bound.
    #[must_use]
    pub fn needs_body(status: StatusCode, headers: &HeaderMap) -> bool {
        status == StatusCode::BAD_REQUEST
            && headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| value.trim_start().to_ascii_lowercase().starts_with("application/json"))
    }

    /// Learns from a response to a request sent to `url`: keeps its `DPoP-Nonce` (newest wins),
    /// sets the origin's clock offset from `Date` when it is further off than the threshold, and
    /// says whether the request is worth one more try.
    pub fn observe(&self, url: &str, response: &ResponseInfo<'_>) -> Verdict {
        let Some(origin) = origin_of(url) else { return Verdict::Done };
        let nonce = response
            .headers
            .get(dpop_core::headers::names::DPOP_NONCE)
            .and_then(|value| value.to_str().ok())
            .filter(|nonce| is_nonce(nonce));
        let server_offset = self.date_offset(response.headers);
        let clock_changed = self.with_origin(&origin, |state| {
            if let Some(nonce) = nonce {
                if state.nonce.as_deref() != Some(nonce) {
                    tracing::debug!(%origin, "DPoP nonce from server");
                }
                state.nonce = Some(nonce.to_owned());
            }
            match server_offset {
                Some(offset) if offset != state.offset => {
                    tracing::info!(%origin, offset, "server clock differs: proofs to this origin use its time");
                    state.offset = offset;
                    true
                }
                _ => false,
            }
        });

        let Some((error, description)) = refusal(response) else { return Verdict::Done };
        match error.as_str() {
            "use_dpop_nonce" if nonce.is_some() => Verdict::Retry(RetryReason::Nonce),
            "use_dpop_nonce" => {
                tracing::warn!(%origin, "server asked for a DPoP nonce but sent none");
                Verdict::Done
            }
            "invalid_dpop_proof" if description.as_deref().is_some_and(mentions_iat) => {
                if clock_changed {
                    Verdict::Retry(RetryReason::Clock)
                } else {
                    tracing::warn!(%origin, "server refused the proof's iat and its Date shows no other clock");
                    Verdict::Done
                }
            }
            _ => Verdict::Done,
        }
    }

    /// The clock offset a response's `Date` implies: the difference when it exceeds the
    /// threshold, zero when within it, `None` without a usable `Date`.
    fn date_offset(&self, headers: &HeaderMap) -> Option<i64> {
        let date = headers.get(http::header::DATE)?.to_str().ok()?;
        let server = httpdate::parse_http_date(date).ok()?.duration_since(UNIX_EPOCH).ok()?.as_secs();
        let difference = i64::try_from(server).ok()?.saturating_sub(i64::try_from(self.inner.clock.now()).ok()?);
        Some(if difference.saturating_abs() > self.inner.skew_threshold { difference } else { 0 })
    }

    fn with_origin<T>(&self, origin: &str, f: impl FnOnce(&mut OriginState) -> T) -> T {
        let mut origins = self.inner.origins.lock().unwrap_or_else(PoisonError::into_inner);
        origins.tick = origins.tick.wrapping_add(1);
        let tick = origins.tick;
        // A known origin (every request but the first): no key to allocate.
        if let Some(state) = origins.entries.get_mut(origin) {
            state.last_used = tick;
            return f(state);
        }
        if origins.entries.len() >= self.inner.max_origins {
            let oldest = origins.entries.iter().min_by_key(|(_, state)| state.last_used).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                origins.entries.remove(&oldest);
            }
        }
        let state = origins.entries.entry(origin.to_owned()).or_default();
        state.last_used = tick;
        f(state)
    }

    fn peek<T>(&self, origin: &str, f: impl FnOnce(&OriginState) -> T) -> Option<T> {
        let origins = self.inner.origins.lock().unwrap_or_else(PoisonError::into_inner);
        origins.entries.get(origin).map(f)
    }
}

impl fmt::Debug for DpopSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopSession").field("jkt", &self.inner.key.thumbprint()).finish_non_exhaustive()
    }
}

/// Configures a [`DpopSession`].
#[must_use]
pub struct DpopSessionBuilder {
    key: DpopKey,
    clock: Arc<dyn Clock>,
    max_origins: usize,
    skew_threshold: Duration,
}

impl DpopSessionBuilder {
    /// The clock `iat` is taken from, before the origin's offset (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How many origins' nonces and clock offsets are kept (default
    /// [`DEFAULT_MAX_ORIGINS`], at least 1); the least recently used is forgotten first.
    pub fn max_origins(mut self, max: usize) -> Self {
        self.max_origins = max.max(1);
        self
    }

    /// How far a server's `Date` must be from this clock before proofs to it use the server's
    /// time (default [`DEFAULT_CLOCK_SKEW_THRESHOLD`]).
    pub fn clock_skew_threshold(mut self, threshold: Duration) -> Self {
        self.skew_threshold = threshold;
        self
    }

    /// Builds the session.
    #[must_use]
    pub fn build(self) -> DpopSession {
        // dpop-core's own header for this key (typ, alg, jwk), as every proof carries it.
        let header = self.key.proof("POST", "https://header.invalid/").header().to_string();
        DpopSession {
            inner: Arc::new(Inner {
                header,
                key: self.key,
                clock: self.clock,
                max_origins: self.max_origins,
                skew_threshold: i64::try_from(self.skew_threshold.as_secs()).unwrap_or(i64::MAX),
                origins: Mutex::new(Origins::default()),
            }),
        }
    }
}

impl fmt::Debug for DpopSessionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopSessionBuilder")
            .field("jkt", &self.key.thumbprint())
            .field("max_origins", &self.max_origins)
            .field("skew_threshold", &self.skew_threshold)
            .finish_non_exhaustive()
    }
}

/// The claims of one proof as JSON text (RFC 9449 §4.2): the members `ProofBuilder::claims` of
/// dpop-core makes, written directly — a session signs every request, and building a JSON tree
/// per proof cost more than a tenth of the signature (see the `proof` bench). A unit test
/// compares the two.
fn claims(method: &str, url: &str, iat: i64, nonce: Option<&str>, token: Option<&str>) -> Result<String, ClientError> {
    use base64::Engine as _;
    use rand_core::RngCore as _;
    use std::fmt::Write as _;

    let mut jti = [0u8; 16];
    rand_core::OsRng.try_fill_bytes(&mut jti).map_err(|_| ClientError::Random.logged())?;
    let htu = url.find(['?', '#']).and_then(|end| url.get(..end)).unwrap_or(url);
    let mut text = String::with_capacity(160 + htu.len() + nonce.map_or(0, str::len));
    text.push_str(r#"{"jti":""#);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(jti, &mut text);
    text.push_str(r#"","htm":"#);
    push_json_string(&mut text, method);
    text.push_str(r#","htu":"#);
    push_json_string(&mut text, htu);
    text.push_str(r#","iat":"#);
    // Writing to a String cannot fail.
    let _ = write!(text, "{iat}");
    if let Some(token) = token {
        text.push_str(r#","ath":""#);
        text.push_str(&dpop_core::access_token_hash(token));
        text.push('"');
    }
    if let Some(nonce) = nonce {
        text.push_str(r#","nonce":"#);
        push_json_string(&mut text, nonce);
    }
    text.push('}');
    Ok(text)
}

/// `value` as a JSON string (RFC 8259 §7 escapes).
fn push_json_string(text: &mut String, value: &str) {
    text.push('"');
    if !value.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        // Methods and URLs: nothing to escape.
        text.push_str(value);
        text.push('"');
        return;
    }
    for c in value.chars() {
        match c {
            '"' => text.push_str("\\\""),
            '\\' => text.push_str("\\\\"),
            c if u32::from(c) < 0x20 => text.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => text.push(c),
        }
    }
    text.push('"');
}

/// The error code and description of a refusal: a DPoP challenge on a 401, or an OAuth JSON
/// error body on a 400 (when the body was read).
fn refusal(response: &ResponseInfo<'_>) -> Option<(String, Option<String>)> {
    match response.status {
        StatusCode::UNAUTHORIZED => {
            let params = challenge::challenge_params(response.headers);
            let error = challenge::param(&params, "dpop", "error")?.to_owned();
            Some((error, challenge::param(&params, "dpop", "error_description").map(str::to_owned)))
        }
        StatusCode::BAD_REQUEST => challenge::json_error(response.body?),
        _ => None,
    }
}

/// Whether an error description is about `iat` (the word, not a part of another).
fn mentions_iat(description: &str) -> bool {
    description.split(|c: char| !c.is_ascii_alphanumeric()).any(|word| word.eq_ignore_ascii_case("iat"))
}

/// `1*NQCHAR` (RFC 9449 §8.1), bounded.
fn is_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_LEN
        && nonce.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// The token of `Authorization: DPoP <token>` on a request, for `ath`.
#[cfg_attr(not(any(feature = "reqwest", feature = "tower")), allow(dead_code))]
pub(crate) fn dpop_access_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("DPoP").then(|| token.trim().to_owned())
}

/// `scheme://host[:port]`, lowercase, default port dropped: the key of per-origin state
/// (RFC 6454). `None` for anything but an absolute http(s) URL without userinfo.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let (scheme, default_port) = if scheme.eq_ignore_ascii_case("https") {
        ("https", ":443")
    } else if scheme.eq_ignore_ascii_case("http") {
        ("http", ":80")
    } else {
        return None;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    // One allocation: this runs for every proof.
    let mut origin = String::with_capacity(scheme.len() + 3 + authority.len());
    origin.push_str(scheme);
    origin.push_str("://");
    origin.push_str(authority);
    origin.make_ascii_lowercase();
    if let Some(without_port) = origin.strip_suffix(default_port).map(str::len) {
        origin.truncate(without_port);
    }
    Some(origin)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn origins_ignore_case_path_and_default_port() {
        assert_eq!(origin_of("HTTPS://Example.com:443/a?b").as_deref(), Some("https://example.com"));
        assert_eq!(origin_of("http://127.0.0.1:8080").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(origin_of("ftp://example.com/"), None);
        assert_eq!(origin_of("https://user@example.com/"), None);
        assert_eq!(origin_of("/relative"), None);
    }

    #[test]
    fn iat_is_a_word_not_a_substring() {
        assert!(mentions_iat("DPoP proof `iat` is too old"));
        assert!(!mentions_iat("could not negotiate"));
    }

    #[test]
    fn nonces_are_nqchar() {
        assert!(is_nonce("eyJ7S_zG.eyJH0-Z.HX4w-7v"));
        assert!(!is_nonce("a b"));
        assert!(!is_nonce("a\"b"));
        assert!(!is_nonce(""));
        assert!(!is_nonce(&"a".repeat(MAX_NONCE_LEN + 1)));
    }

    #[test]
    fn the_least_recently_used_origin_is_forgotten() {
        let session = DpopSession::builder(DpopKey::generate().unwrap()).max_origins(2).build();
        let mut headers = HeaderMap::new();
        headers.insert("dpop-nonce", "n1".parse().unwrap());
        let info = ResponseInfo::new(StatusCode::OK, &headers);
        for url in ["http://a/", "http://b/", "http://a/", "http://c/"] {
            assert_eq!(session.observe(url, &info), Verdict::Done);
        }
        assert_eq!(session.nonce("http://a/x").as_deref(), Some("n1"));
        assert_eq!(session.nonce("http://b/x"), None, "b was the least recently used");
        assert_eq!(session.nonce("http://c/x").as_deref(), Some("n1"));
    }

    #[test]
    fn claims_are_the_ones_dpop_core_makes() {
        let key = DpopKey::generate().unwrap();
        for url in ["https://mcp.example.com/a\"b\\c\u{1}d?q=1#f", "https://mcp.example.com/mcp?q=1"] {
            let ours: serde_json::Value =
                serde_json::from_str(&claims("POST", url, 42, Some("n-1"), Some("tok")).unwrap()).unwrap();
            let core = key.proof("POST", url).issued_at(42).nonce("n-1").access_token("tok").jti("x").claims().unwrap();
            let mut ours = ours;
            ours["jti"] = "x".into();
            assert_eq!(ours, core);
            let bare: serde_json::Value = serde_json::from_str(&claims("GET", url, 1, None, None).unwrap()).unwrap();
            assert!(bare.get("ath").is_none() && bare.get("nonce").is_none());
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = DpopKey::generate().unwrap();
        let d = key.private_jwk().unwrap()["d"].as_str().unwrap().to_owned();
        let text = format!("{:?}", DpopSession::new(key));
        assert!(!text.contains(&d));
        assert!(text.contains("jkt"));
    }
}
