//! `dpop fetch`: one request signed with a fresh DPoP proof, like curl, printing the response.
//!
//! The proof, the `ath` of `--token` and the one retry when the server asks for a nonce
//! (`use_dpop_nonce`: 401 from a resource server, 400 JSON from an authorization server) or
//! shows another clock come from `dpop-client` ([`DpopSession`] and its reqwest middleware);
//! this module only reads the arguments, sends, and prints.

use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use dpop_client::{DpopMiddleware, DpopSession};
use dpop_core::DpopKey;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};

use crate::input;
use crate::output::{self, Failure};
use crate::proof::load_key;

/// The `Content-Type` of `--data` without a `Content-Type` header, as curl sends it.
const FORM: &str = "application/x-www-form-urlencoded";

/// Arguments of `dpop fetch`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The absolute http(s) URL to request; the proof's `htu` is this URL without its query and
    /// fragment
    #[arg(value_name = "URL")]
    url: String,

    /// The request method, the proof's `htm` (default: GET, or POST with --data)
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    method: Option<String>,

    /// A request header, "Name: value"; repeat for several. DPoP is not allowed (fetch signs
    /// the proof), nor Authorization with --token
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,

    /// The request body as given, or @PATH for a file's bytes as they are (@- for stdin). Implies
    /// POST, and Content-Type application/x-www-form-urlencoded unless a header sets one
    #[arg(short = 'd', long, value_name = "BODY")]
    data: Option<String>,

    /// The access token: sent as `Authorization: DPoP <TOKEN>`, its hash is the proof's `ath`
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,

    /// The private JWK file written by `dpop keygen --out`, or - for stdin (default: a fresh
    /// ephemeral key, whose thumbprint is said on stderr)
    #[arg(long, value_name = "PATH")]
    key: Option<String>,
}

/// The request, checked before anything is sent.
struct Request {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
}

/// Checks the arguments, loads or makes the key, sends, prints the response.
pub(crate) fn run(args: &Args) -> Result<ExitCode, Failure> {
    let request = request(args)?;
    let key = match &args.key {
        Some(source) => load_key(source)?,
        None => {
            let key =
                DpopKey::generate().map_err(|error| Failure::failed(format_args!("cannot generate a key: {error}")))?;
            output::note(format_args!(
                "no --key: signing with a fresh ephemeral key (jkt {}){}",
                key.thumbprint(),
                if args.token.is_some() { "; a token bound to another key is refused" } else { "" }
            ));
            key
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::failed(format_args!("cannot start the async runtime: {error}")))?;
    runtime.block_on(send(key, request))
}

/// The request the arguments describe, or the usage error in them.
fn request(args: &Args) -> Result<Request, Failure> {
    let url =
        Url::parse(&args.url).map_err(|error| Failure::usage(format_args!("`{}` is not a URL: {error}", args.url)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Failure::usage(format_args!("`{}` is not an http(s) URL", args.url)));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Failure::usage(format_args!(
            "`{}` has userinfo: a proof's `htu` cannot carry it; send credentials in a header",
            args.url
        )));
    }

    let method = match &args.method {
        Some(method) => {
            if method.bytes().any(|b| b.is_ascii_lowercase()) {
                output::note(format_args!(
                    "`htm` is compared case-sensitively and HTTP methods are upper case; `{method}` matches no usual request"
                ));
            }
            Method::from_bytes(method.as_bytes())
                .map_err(|_| Failure::usage(format_args!("-X `{method}` is not an HTTP method")))?
        }
        None if args.data.is_some() => Method::POST,
        None => Method::GET,
    };

    let mut headers = HeaderMap::new();
    for header in &args.headers {
        let (name, value) = parse_header(header)?;
        if name == dpop_core::headers::names::DPOP {
            return Err(Failure::usage(
                "-H DPoP: fetch signs the proof itself (to send your own, use curl with `dpop proof`)",
            ));
        }
        if name == AUTHORIZATION && args.token.is_some() {
            return Err(Failure::usage("give either --token or -H Authorization, not both"));
        }
        headers.append(name, value);
    }
    if let Some(token) = &args.token {
        let mut value = HeaderValue::try_from(format!("DPoP {token}"))
            .map_err(|_| Failure::usage("--token holds characters a header cannot carry"))?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }

    let body = match args.data.as_deref() {
        None => None,
        Some(data) => {
            let body = match data.strip_prefix('@') {
                Some("-") if args.key.as_deref() == Some("-") => {
                    return Err(Failure::usage("--key - and --data @- cannot both read stdin"));
                }
                Some(path) => input::read_bytes(path)?,
                None => data.as_bytes().to_vec(),
            };
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(FORM));
            }
            Some(body)
        }
    };
    Ok(Request { method, url, headers, body })
}

/// `Name: value` (the value without surrounding whitespace, as curl sends it).
fn parse_header(header: &str) -> Result<(HeaderName, HeaderValue), Failure> {
    let Some((name, value)) = header.split_once(':') else {
        return Err(Failure::usage(format_args!("-H `{header}` is not \"Name: value\"")));
    };
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| Failure::usage(format_args!("-H `{header}`: `{}` is not a header name", name.trim())))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| Failure::usage(format_args!("-H `{header}`: the value holds characters a header cannot carry")))?;
    Ok((name, value))
}

/// Sends the request through the DPoP middleware and prints the response.
async fn send(key: DpopKey, request: Request) -> Result<ExitCode, Failure> {
    let transport = |error: &dyn std::error::Error| {
        Failure::failed(format_args!("{} {}: {}", request.method, request.url, chain(error)))
    };
    let http = reqwest::Client::builder()
        // As curl: a redirect is printed, not followed (a new URL needs a new proof anyway).
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("dpop/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| Failure::failed(format_args!("cannot build the HTTP client: {}", chain(&error))))?;
    let attempts = Attempts::default();
    let client = reqwest_middleware::ClientBuilder::new(http)
        .with(DpopMiddleware::new(DpopSession::new(key)))
        .with(attempts.clone())
        .build();

    let mut builder = client.request(request.method.clone(), request.url.clone()).headers(request.headers.clone());
    if let Some(body) = &request.body {
        builder = builder.body(body.clone());
    }
    let mut response = builder.send().await.map_err(|error| transport(&error.without_url()))?;
    attempts.report();

    let mut head = format!("{:?} {}\n", response.version(), status_line(response.status()));
    for (name, value) in response.headers() {
        head.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
    }
    head.push('\n');
    output::stdout(&head)?;
    while let Some(chunk) = response.chunk().await.map_err(|error| transport(&error.without_url()))? {
        output::stdout_bytes(&chunk)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `200 OK`, or the code alone for a status without a reason phrase.
fn status_line(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_str()),
        None => status.as_str().to_owned(),
    }
}

/// An error and its sources, `: `-separated, without repeating a message.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut last = text.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !last.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        last = message;
        source = cause.source();
    }
    text
}

/// An inner middleware (between the DPoP middleware and the network): the status and
/// `DPoP-Nonce` of every attempt, to say on stderr when the request was sent again.
#[derive(Clone, Default)]
struct Attempts(Arc<Mutex<Vec<Attempt>>>);

/// The status of one attempt's response and its `DPoP-Nonce`.
type Attempt = (StatusCode, Option<String>);

impl Attempts {
    /// A note on stderr when the DPoP middleware sent the request more than once.
    fn report(&self) {
        let attempts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let [(status, nonce), _, ..] = attempts.as_slice() else { return };
        let nonce = nonce.as_deref().map(|nonce| format!(" with DPoP-Nonce `{nonce}`")).unwrap_or_default();
        output::note(format_args!(
            "the server answered {}{nonce} to the first proof; sent the request once more with a fresh proof",
            status_line(*status)
        ));
    }
}

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for Attempts {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let response = next.run(request, extensions).await?;
        let nonce = response
            .headers()
            .get(dpop_core::headers::names::DPOP_NONCE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push((response.status(), nonce));
        Ok(response)
    }
}
