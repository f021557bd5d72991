//! The attacker's client: raw HTTP requests with what was stolen off the wire (the access token,
//! a whole request, the MCP session id, the server's nonce) and proofs made to order — another
//! key, another `htu`, `htm` or `iat`, a forged nonce. Honest clients use the library
//! (`dpop_guard::client`): see `mcp_client.rs`.

use dpop_guard::DpopKey;
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::wiretap::Seen;
use super::{Error, challenge_param};

/// An HTTP client for loopback URLs: no redirects, bounded in time.
///
/// # Errors
///
/// The client could not be built.
pub(crate) fn http_client() -> Result<reqwest::Client, Error> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()?)
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Result<Self, Error> {
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        Ok(Self { status, headers, body: response.text().await? })
    }

    /// The first `WWW-Authenticate` challenge.
    pub(crate) fn challenge(&self) -> Option<&str> {
        self.headers.get("www-authenticate").and_then(|value| value.to_str().ok())
    }

    /// The `error` of the challenge, if any.
    pub(crate) fn error(&self) -> Option<String> {
        challenge_param(self.challenge()?, "error")
    }

    /// The `error_description` of the challenge, if any.
    pub(crate) fn error_description(&self) -> Option<String> {
        challenge_param(self.challenge()?, "error_description")
    }
}

/// How to make the proof of one request: as the client would, or altered.
#[derive(Clone, Debug, Default)]
pub(crate) struct Proof {
    /// Another `htm` than the request's method.
    pub(crate) htm: Option<String>,
    /// Another `htu` than the request's URL.
    pub(crate) htu: Option<String>,
    /// Another `iat` than now.
    pub(crate) iat: Option<i64>,
    /// Another `nonce` than the stolen one.
    pub(crate) nonce: Option<String>,
}

/// What an eavesdropper took from one request to the MCP server.
#[derive(Clone, Debug)]
pub(crate) struct Stolen {
    /// The access token (of `Authorization: DPoP …`).
    pub(crate) token: String,
    /// `Mcp-Session-Id`, `Mcp-Protocol-Version`.
    pub(crate) mcp_headers: HeaderMap,
    /// The server's nonce that the request's proof carried.
    pub(crate) nonce: Option<String>,
}

impl Stolen {
    /// What `request` gives away.
    ///
    /// # Errors
    ///
    /// It carried no DPoP token.
    pub(crate) fn from(request: &Seen) -> Result<Self, Error> {
        let token = request.header("authorization").and_then(|value| value.strip_prefix("DPoP "));
        let token = token.ok_or("the request carried no DPoP access token")?.to_owned();
        let mut mcp_headers = HeaderMap::new();
        for name in ["mcp-session-id", "mcp-protocol-version"] {
            if let Some(value) = request.headers.get(name) {
                mcp_headers.insert(name, value.clone());
            }
        }
        let nonce = request.header("dpop").and_then(proof_nonce);
        Ok(Self { token, mcp_headers, nonce })
    }
}

/// The `nonce` claim of a proof (read, not verified: the attacker only copies it).
fn proof_nonce(proof: &str) -> Option<String> {
    use base64::Engine as _;
    let claims = proof.split('.').nth(1)?;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).ok()?;
    serde_json::from_slice::<Value>(&claims).ok()?.get("nonce")?.as_str().map(str::to_owned)
}

/// Requests to the MCP endpoint `url` with stolen credentials.
pub(crate) struct Attacker<'a> {
    http: reqwest::Client,
    url: String,
    stolen: &'a Stolen,
}

impl<'a> Attacker<'a> {
    /// An attacker of `url` holding `stolen`.
    pub(crate) fn new(http: reqwest::Client, url: &str, stolen: &'a Stolen) -> Self {
        Self { http, url: url.to_owned(), stolen }
    }

    /// Sends `request` again, byte for byte: same token, same proof, same body.
    ///
    /// # Errors
    ///
    /// No HTTP response.
    pub(crate) async fn replay(&self, request: &Seen) -> Result<Reply, Error> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())?;
        let mut headers = request.headers.clone();
        headers.remove("host");
        headers.remove("content-length");
        let sent = self.http.request(method, &self.url).headers(headers).body(request.body.clone());
        Reply::read(sent.send().await?).await
    }

    /// POSTs the JSON-RPC `message` with the stolen token and a proof signed by `key` as `proof`
    /// says (by default: for this request, with the stolen nonce).
    ///
    /// # Errors
    ///
    /// No HTTP response, or the proof could not be signed.
    pub(crate) async fn post(&self, key: &DpopKey, message: &Value, proof: &Proof) -> Result<Reply, Error> {
        let mut builder = key
            .proof(proof.htm.as_deref().unwrap_or("POST"), proof.htu.as_deref().unwrap_or(&self.url))
            .access_token(&self.stolen.token);
        if let Some(nonce) = proof.nonce.as_deref().or(self.stolen.nonce.as_deref()) {
            builder = builder.nonce(nonce);
        }
        if let Some(iat) = proof.iat {
            builder = builder.issued_at(iat);
        }
        let request = self.mcp_post(message).header("authorization", format!("DPoP {}", self.stolen.token));
        Reply::read(request.header("dpop", builder.sign()?).send().await?).await
    }

    /// POSTs `message` with the stolen token as a Bearer token, without a proof.
    ///
    /// # Errors
    ///
    /// No HTTP response.
    pub(crate) async fn post_as_bearer(&self, message: &Value) -> Result<Reply, Error> {
        let request = self.mcp_post(message).header("authorization", format!("Bearer {}", self.stolen.token));
        Reply::read(request.send().await?).await
    }

    fn mcp_post(&self, message: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(&self.url)
            .headers(self.stolen.mcp_headers.clone())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(message.to_string())
    }
}
