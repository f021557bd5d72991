//! An MCP client with DPoP, the way an MCP client finds its way (MCP authorization, RFC 9728,
//! RFC 8414, RFC 9449):
//!
//! 1. a request without a token is answered 401 with `resource_metadata` in the challenge;
//! 2. the protected resource metadata names the authorization server;
//! 3. the authorization server metadata gives the token endpoint and the DPoP algorithms;
//! 4. the token request carries a DPoP proof, and the token comes back bound to the key;
//! 5. every MCP request carries the token and a fresh proof bound to it (`ath`), with the
//!    server's nonce when it asks for one (`use_dpop_nonce`), and the MCP session id.

use dpop_guard::DpopKey;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::{Error, challenge_param};

/// The MCP protocol revision this client speaks.
pub(crate) const PROTOCOL_VERSION: &str = "2025-11-25";

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

    /// The first value of the header `name`.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The first `WWW-Authenticate` challenge.
    pub(crate) fn challenge(&self) -> Option<&str> {
        self.header("www-authenticate")
    }

    /// The `error` of the challenge, if any.
    pub(crate) fn error(&self) -> Option<String> {
        challenge_param(self.challenge()?, "error")
    }

    /// The body as JSON.
    ///
    /// # Errors
    ///
    /// It is not JSON.
    pub(crate) fn json(&self) -> Result<Value, Error> {
        serde_json::from_str(&self.body)
            .map_err(|error| format!("HTTP {}: not JSON ({error}): {}", self.status, self.body).into())
    }

    /// The JSON-RPC response in the body: JSON, or the last event of a `text/event-stream` that
    /// carries one.
    ///
    /// # Errors
    ///
    /// There is none.
    pub(crate) fn jsonrpc(&self) -> Result<Value, Error> {
        let event_stream = self.header("content-type").is_some_and(|value| value.starts_with("text/event-stream"));
        if !event_stream {
            return self.json();
        }
        self.body
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .rfind(|message| message.get("id").is_some())
            .ok_or_else(|| format!("HTTP {}: no JSON-RPC response in the event stream", self.status).into())
    }

    /// The `result` of the JSON-RPC response.
    ///
    /// # Errors
    ///
    /// No response, or an error response.
    pub(crate) fn jsonrpc_result(&self) -> Result<Value, Error> {
        let mut message = self.jsonrpc()?;
        match message.get_mut("result") {
            Some(result) => Ok(result.take()),
            None => Err(format!("JSON-RPC error: {}", message.get("error").unwrap_or(&Value::Null)).into()),
        }
    }
}

/// Step 1: the MCP `initialize` request with no credentials.
///
/// # Errors
///
/// No HTTP response.
pub(crate) async fn initialize_without_token(http: &reqwest::Client, mcp_url: &str) -> Result<Reply, Error> {
    let response = http
        .post(mcp_url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(jsonrpc_request(0, "initialize", initialize_params()).to_string())
        .send()
        .await?;
    Reply::read(response).await
}

/// Step 1, read: the `resource_metadata` URL of the challenge.
///
/// # Errors
///
/// The challenge has none.
pub(crate) fn resource_metadata_url(reply: &Reply) -> Result<String, Error> {
    reply
        .challenge()
        .and_then(|challenge| challenge_param(challenge, "resource_metadata"))
        .ok_or_else(|| format!("HTTP {}: no resource_metadata in WWW-Authenticate", reply.status).into())
}

/// A `GET`.
///
/// # Errors
///
/// No HTTP response.
pub(crate) async fn get(http: &reqwest::Client, url: &str) -> Result<Reply, Error> {
    Reply::read(http.get(url).header("accept", "application/json").send().await?).await
}

/// Step 2, read: the authorization server of the RFC 9728 document, after checking that the
/// document is about `mcp_url` (RFC 9728 §3.3).
///
/// # Errors
///
/// Another resource, or no authorization server.
pub(crate) fn authorization_server(metadata: &Reply, mcp_url: &str) -> Result<String, Error> {
    let document = metadata.json()?;
    if document.get("resource").and_then(Value::as_str) != Some(mcp_url) {
        return Err(format!("the resource metadata is not about {mcp_url}: {document}").into());
    }
    let servers = document.get("authorization_servers").and_then(Value::as_array);
    let first = servers.and_then(|servers| servers.first()).and_then(Value::as_str);
    first.map(str::to_owned).ok_or_else(|| "the resource metadata names no authorization server".into())
}

/// Step 3: where the RFC 8414 metadata of `issuer` is (no path in the issuer).
pub(crate) fn authorization_server_metadata_url(issuer: &str) -> String {
    format!("{}/.well-known/oauth-authorization-server", issuer.trim_end_matches('/'))
}

/// Step 3, read: the token endpoint, after checking the issuer (RFC 8414 §3.3) and that it
/// issues DPoP-bound tokens with ES256 proofs.
///
/// # Errors
///
/// Another issuer, no token endpoint, no ES256 DPoP.
pub(crate) fn token_endpoint(metadata: &Reply, issuer: &str) -> Result<String, Error> {
    let document = metadata.json()?;
    if document.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err(format!("the authorization server metadata is not about {issuer}").into());
    }
    let algs = document.get("dpop_signing_alg_values_supported").and_then(Value::as_array);
    if !algs.is_some_and(|algs| algs.iter().any(|alg| alg == "ES256")) {
        return Err("the authorization server does not take ES256 DPoP proofs".into());
    }
    let endpoint = document.get("token_endpoint").and_then(Value::as_str);
    endpoint.map(str::to_owned).ok_or_else(|| "the authorization server metadata has no token endpoint".into())
}

/// Step 4: a `client_credentials` token request for `resource` (RFC 8707), with a proof of
/// possession of `key` for this very request.
///
/// # Errors
///
/// No HTTP response, or the proof could not be signed.
pub(crate) async fn request_token(
    http: &reqwest::Client,
    key: &DpopKey,
    token_endpoint: &str,
    client_id: &str,
    scope: &str,
    resource: &str,
) -> Result<Reply, Error> {
    let proof = key.proof("POST", token_endpoint).sign()?;
    let form =
        [("grant_type", "client_credentials"), ("client_id", client_id), ("scope", scope), ("resource", resource)];
    let body = form.iter().map(|(name, value)| format!("{name}={}", form_encode(value))).collect::<Vec<_>>().join("&");
    let response = http
        .post(token_endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .header("dpop", proof)
        .body(body)
        .send()
        .await?;
    Reply::read(response).await
}

/// Step 4, read: the access token, which must be a DPoP one.
///
/// # Errors
///
/// No token, or not of type `DPoP`.
pub(crate) fn access_token(reply: &Reply) -> Result<String, Error> {
    let document = reply.json()?;
    if !document.get("token_type").and_then(Value::as_str).is_some_and(|kind| kind.eq_ignore_ascii_case("DPoP")) {
        return Err(format!("HTTP {}: no DPoP token: {document}", reply.status).into());
    }
    let token = document.get("access_token").and_then(Value::as_str);
    token.map(str::to_owned).ok_or_else(|| "the token response has no access_token".into())
}

/// A `GET` of `url` with `token` and a proof for it signed by `key`.
///
/// # Errors
///
/// No HTTP response, or the proof could not be signed.
pub(crate) async fn dpop_get(http: &reqwest::Client, key: &DpopKey, token: &str, url: &str) -> Result<Reply, Error> {
    let proof = key.proof("GET", url).access_token(token).sign()?;
    let request = http.get(url).header("authorization", format!("DPoP {token}")).header("dpop", proof);
    Reply::read(request.send().await?).await
}

/// `application/x-www-form-urlencoded` for one value.
fn form_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => encoded.push(char::from(byte)),
            b' ' => encoded.push('+'),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// How to make the proof of one request: honest by default, or altered.
#[derive(Clone, Debug, Default)]
pub(crate) struct Proof {
    /// Another `htm` than the request's method.
    pub(crate) htm: Option<String>,
    /// Another `htu` than the request's URL.
    pub(crate) htu: Option<String>,
    /// Another `iat` than now.
    pub(crate) iat: Option<i64>,
    /// This `nonce` instead of the server's, and no retry when the server asks for its own.
    pub(crate) nonce: Option<String>,
}

/// One request and, when the server asked for a nonce first, that challenge.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub(crate) nonce_challenge: Option<Reply>,
    pub(crate) reply: Reply,
}

/// A request as sent, to send again.
#[derive(Clone)]
struct Sent {
    method: Method,
    headers: HeaderMap,
    body: Option<String>,
}

/// Steps 5 on: MCP over streamable HTTP with a DPoP-bound token. (No `Debug`: it holds the
/// token.)
pub(crate) struct McpClient {
    http: reqwest::Client,
    url: String,
    key: DpopKey,
    token: String,
    nonce: Option<String>,
    session: Option<String>,
    protocol_version: Option<String>,
    next_id: u64,
    last: Option<Sent>,
}

impl McpClient {
    /// A client of the MCP endpoint `url` with `token`, signing proofs with `key` (the token's).
    pub(crate) fn new(http: reqwest::Client, url: &str, key: DpopKey, token: &str) -> Self {
        Self {
            http,
            url: url.to_owned(),
            key,
            token: token.to_owned(),
            nonce: None,
            session: None,
            protocol_version: None,
            next_id: 1,
            last: None,
        }
    }

    /// The key's thumbprint.
    pub(crate) fn jkt(&self) -> String {
        self.key.thumbprint().to_string()
    }

    /// The last nonce the server gave.
    pub(crate) fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }

    /// The MCP session, once `initialize` opened one.
    pub(crate) fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// Joins another client's MCP session (as an attacker who saw its id would).
    pub(crate) fn join_session(&mut self, other: &Self) {
        self.session.clone_from(&other.session);
        self.protocol_version.clone_from(&other.protocol_version);
    }

    /// `initialize`; keeps the negotiated protocol version and the session id.
    ///
    /// # Errors
    ///
    /// No HTTP response, or a proof could not be signed.
    pub(crate) async fn initialize(&mut self) -> Result<Exchange, Error> {
        let exchange = self.request("initialize", initialize_params(), &Proof::default()).await?;
        if exchange.reply.status == 200 {
            let result = exchange.reply.jsonrpc_result()?;
            self.protocol_version = result.get("protocolVersion").and_then(Value::as_str).map(str::to_owned);
        }
        Ok(exchange)
    }

    /// The JSON-RPC request `method` with `params`, its proof made as `proof` says.
    ///
    /// # Errors
    ///
    /// No HTTP response, or a proof could not be signed.
    pub(crate) async fn request(&mut self, method: &str, params: Value, proof: &Proof) -> Result<Exchange, Error> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(Method::POST, Some(jsonrpc_request(id, method, params).to_string()), proof).await
    }

    /// The JSON-RPC notification `method`.
    ///
    /// # Errors
    ///
    /// No HTTP response, or a proof could not be signed.
    pub(crate) async fn notify(&mut self, method: &str) -> Result<Exchange, Error> {
        let body = json!({ "jsonrpc": "2.0", "method": method }).to_string();
        self.send(Method::POST, Some(body), &Proof::default()).await
    }

    /// Ends the MCP session (`DELETE`).
    ///
    /// # Errors
    ///
    /// No HTTP response, or a proof could not be signed.
    pub(crate) async fn end_session(&mut self) -> Result<Exchange, Error> {
        self.send(Method::DELETE, None, &Proof::default()).await
    }

    /// Sends the last request again, byte for byte: same token, same proof.
    ///
    /// # Errors
    ///
    /// Nothing was sent yet, or no HTTP response.
    pub(crate) async fn replay_last(&self) -> Result<Reply, Error> {
        let sent = self.last.clone().ok_or("nothing to replay")?;
        let mut request = self.http.request(sent.method, &self.url).headers(sent.headers);
        if let Some(body) = sent.body {
            request = request.body(body);
        }
        Reply::read(request.send().await?).await
    }

    /// The token as a Bearer token, with no proof, on `tools/call` of `tool`.
    ///
    /// # Errors
    ///
    /// No HTTP response.
    pub(crate) async fn call_as_bearer(&mut self, tool: &str) -> Result<Reply, Error> {
        let body = jsonrpc_request(self.next_id, "tools/call", json!({ "name": tool, "arguments": {} }));
        let mut headers = self.mcp_headers()?;
        headers.insert("authorization", format!("Bearer {}", self.token).parse()?);
        let request = self.http.post(&self.url).headers(headers).body(body.to_string());
        Reply::read(request.send().await?).await
    }

    /// Sends once; once more with the server's nonce if it asks for one (RFC 9449 §8).
    async fn send(&mut self, method: Method, body: Option<String>, proof: &Proof) -> Result<Exchange, Error> {
        let first = self.send_once(method.clone(), body.clone(), proof).await?;
        let asks_for_nonce = first.status == 401 && first.error().as_deref() == Some("use_dpop_nonce");
        if asks_for_nonce && proof.nonce.is_none() && first.header("dpop-nonce").is_some() {
            let reply = self.send_once(method, body, proof).await?;
            return Ok(Exchange { nonce_challenge: Some(first), reply });
        }
        Ok(Exchange { nonce_challenge: None, reply: first })
    }

    async fn send_once(&mut self, method: Method, body: Option<String>, proof: &Proof) -> Result<Reply, Error> {
        let htm = proof.htm.as_deref().unwrap_or(method.as_str());
        let htu = proof.htu.as_deref().unwrap_or(&self.url);
        let mut builder = self.key.proof(htm, htu).access_token(&self.token);
        if let Some(nonce) = proof.nonce.as_deref().or(self.nonce.as_deref()) {
            builder = builder.nonce(nonce);
        }
        if let Some(iat) = proof.iat {
            builder = builder.issued_at(iat);
        }
        let mut headers = self.mcp_headers()?;
        headers.insert("authorization", format!("DPoP {}", self.token).parse()?);
        headers.insert("dpop", builder.sign()?.parse()?);
        self.last = Some(Sent { method: method.clone(), headers: headers.clone(), body: body.clone() });

        let mut request = self.http.request(method, &self.url).headers(headers);
        if let Some(body) = body {
            request = request.body(body);
        }
        let reply = Reply::read(request.send().await?).await?;
        // The server may send the next nonce with any response (RFC 9449 §8.2).
        if let Some(nonce) = reply.header("dpop-nonce") {
            self.nonce = Some(nonce.to_owned());
        }
        if let Some(session) = reply.header("mcp-session-id") {
            self.session = Some(session.to_owned());
        }
        Ok(reply)
    }

    /// The streamable HTTP headers: content types, session, protocol version.
    fn mcp_headers(&self) -> Result<HeaderMap, Error> {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json".parse()?);
        headers.insert("accept", "application/json, text/event-stream".parse()?);
        if let Some(session) = &self.session {
            headers.insert("mcp-session-id", session.parse()?);
        }
        if let Some(version) = &self.protocol_version {
            headers.insert("mcp-protocol-version", version.parse()?);
        }
        Ok(headers)
    }
}

fn jsonrpc_request(id: u64, method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

fn initialize_params() -> Value {
    json!({
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": { "name": "dpop-guard-example-client", "version": env!("CARGO_PKG_VERSION") },
    })
}
