//! [`SessionBindingLayer`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use dpop_core::Rejection;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{Either, Full};
use tower_layer::Layer;
use tower_service::Service;

use super::{Binding, InMemorySessionStore, SESSION_HEADER, SessionKey, SessionOwner, SessionStore, SessionStoreError};

/// Binds each MCP session to the caller that opened it and refuses it to anyone else.
///
/// Put it *inside* the DPoP layer (nearer the MCP service), so the verified caller is in the
/// request extensions when it runs. For every request:
///
/// - **Without `Mcp-Session-Id`**: passed on. When the response carries an `Mcp-Session-Id`
///   (the `initialize` response that opened a session), the session is bound to the caller —
///   its key thumbprint (`jkt`) and subject, see [`SessionOwner`] — before the client sees
///   the response. If the binding cannot be recorded (store full or unavailable), the client
///   gets `503` instead and never learns the session id; a caller holding as many sessions as
///   the store lets one owner hold gets `429` the same way. The orphaned session is left to
///   the MCP server's own idle timeout.
/// - **With `Mcp-Session-Id`**: passed on only if the session is bound to this same caller.
///   A session bound to another key or subject is answered `404 Not Found` — what the MCP
///   spec answers for an unknown session, so a caller learns nothing about sessions that are
///   not its own — and so is a session with no binding (never opened through this layer,
///   expired, or ended). The MCP service never sees the request.
/// - **`DELETE` with `Mcp-Session-Id`** (ending the session): checked as above; after a `2xx`
///   the binding is removed.
///
/// A malformed `Mcp-Session-Id` (more than one, or not visible ASCII as MCP requires) is
/// `400`; a store that cannot answer is `503` (fail closed); a request without a verified
/// caller (no DPoP layer in front) is the DPoP layer's `401` for an unguarded route. Every
/// refusal is a `tracing` event with the reason.
///
/// ```
/// use std::sync::Arc;
///
/// use axum::Router;
/// use dpop_axum::DpopLayer;
/// use dpop_mcp::SessionBindingLayer;
/// use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
/// use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
/// # use rmcp::ServerHandler;
/// # #[derive(Clone)]
/// # struct Tools;
/// # impl ServerHandler for Tools {}
/// # let guard = dpop_core::DpopGuard::builder()
/// #     .resource("https://mcp.example.com/mcp")
/// #     .token_validator(dpop_core::validator_fn(|_| Err(dpop_core::TokenError::Invalid(dpop_core::InvalidToken::Other("unknown")))))
/// #     .build()?;
///
/// let mcp = StreamableHttpService::new(
///     || Ok(Tools),
///     Arc::new(LocalSessionManager::default()),
///     StreamableHttpServerConfig::default(),
/// );
/// let app: Router = Router::new()
///     .route_service("/mcp", mcp)
///     // Layers run outside in: the last one added runs first.
///     .layer(SessionBindingLayer::in_memory())
///     .layer(DpopLayer::with_guard(guard));
/// # Ok::<(), dpop_core::ConfigError>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct SessionBindingLayer {
    store: Arc<dyn SessionStore>,
}

impl SessionBindingLayer {
    /// A layer keeping its bindings in `store`.
    pub fn new(store: impl SessionStore) -> Self {
        Self { store: Arc::new(store) }
    }

    /// A layer with a default [`InMemorySessionStore`]: for one server instance.
    pub fn in_memory() -> Self {
        Self::new(InMemorySessionStore::default())
    }
}

impl std::fmt::Debug for SessionBindingLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionBindingLayer").finish_non_exhaustive()
    }
}

impl<S> Layer<S> for SessionBindingLayer {
    type Service = SessionBindingService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionBindingService { inner, store: Arc::clone(&self.store) }
    }
}

/// The service [`SessionBindingLayer`] produces.
#[derive(Clone)]
pub struct SessionBindingService<S> {
    inner: S,
    store: Arc<dyn SessionStore>,
}

impl<S> std::fmt::Debug for SessionBindingService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionBindingService").finish_non_exhaustive()
    }
}

/// The body of a [`SessionBindingService`] response: the inner service's, or the layer's own
/// refusal.
pub type SessionResponseBody<B> = Either<B, Full<Bytes>>;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionBindingService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<SessionResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The ready service goes with this request; the clone stays for the next `poll_ready`.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let store = Arc::clone(&self.store);
        let presented = presented(&request);
        Box::pin(async move {
            let admitted = match presented {
                Ok((owner, session)) => admit(&*store, owner, session).await,
                Err(refusal) => Err(refusal),
            };
            match admitted {
                Ok(admitted) => forward(&*store, inner, request, admitted).await,
                Err(refusal) => Ok(refusal.response().map(Either::Right)),
            }
        })
    }
}

/// A request the layer lets through: its caller and the session it presented.
struct Admitted {
    owner: SessionOwner,
    session: Option<(String, SessionKey)>,
}

/// Decides whether the caller may use the session it presented.
async fn admit(store: &dyn SessionStore, owner: SessionOwner, session: Option<String>) -> Result<Admitted, Refusal> {
    let Some(session) = session else { return Ok(Admitted { owner, session: None }) };
    let key = SessionKey::of(&session);
    match store.owner(key).await {
        Ok(Some(bound)) => match bound.difference(&owner) {
            None => Ok(Admitted { owner, session: Some((session, key)) }),
            Some(who) => {
                tracing::warn!(
                    session = ?key,
                    presented_by = who,
                    jkt = owner.jkt().unwrap_or_default(),
                    "MCP request refused: the session belongs to another caller"
                );
                Err(Refusal::SessionNotFound)
            }
        },
        Ok(None) => {
            tracing::info!(session = ?key, "MCP request refused: no binding for the session (unknown, expired or ended)");
            Err(Refusal::SessionNotFound)
        }
        Err(error) => {
            tracing::error!(%error, "MCP request refused: the session store could not answer");
            Err(Refusal::Unavailable)
        }
    }
}

/// The request's verified caller and the session id it presents (read before any wait, so the
/// request is never borrowed across one).
fn presented<B>(request: &Request<B>) -> Result<(SessionOwner, Option<String>), Refusal> {
    let Some(owner) = SessionOwner::of(request.extensions()) else {
        tracing::error!("MCP session binding is not behind a DPoP layer: no verified caller");
        return Err(Refusal::Unguarded);
    };
    match session_id(request.headers()) {
        Ok(session) => Ok((owner, session.map(str::to_owned))),
        Err(reason) => {
            tracing::info!(reason, "MCP request refused: malformed Mcp-Session-Id");
            Err(Refusal::Malformed(reason))
        }
    }
}

/// Calls the MCP service, binds the session it opens, forgets the session its owner ends.
async fn forward<S, ReqBody, ResBody>(
    store: &dyn SessionStore,
    mut inner: S,
    request: Request<ReqBody>,
    admitted: Admitted,
) -> Result<Response<SessionResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    let ends_session = request.method() == Method::DELETE;
    let response = inner.call(request).await?;
    let Admitted { owner, session } = admitted;
    let presented = session.as_ref().map(|(id, _)| id.as_str());
    match session_id(response.headers()) {
        Ok(Some(issued)) if Some(issued) != presented => {
            if let Err(refusal) = bind(store, issued, &owner).await {
                return Ok(refusal.response().map(Either::Right));
            }
        }
        Ok(_) => {}
        Err(reason) => {
            tracing::error!(reason, "MCP response refused: the server sent a malformed Mcp-Session-Id");
            return Ok(Refusal::Unavailable.response().map(Either::Right));
        }
    }
    if let (true, Some((_, key))) = (ends_session && response.status().is_success(), session) {
        // The session is over either way; a binding left behind only expires later.
        if let Err(error) = store.unbind(key).await {
            tracing::warn!(%error, session = ?key, "could not remove the binding of an ended MCP session");
        }
    }
    Ok(response.map(Either::Left))
}

/// Binds the session the MCP service just opened to `owner`.
async fn bind(store: &dyn SessionStore, session: &str, owner: &SessionOwner) -> Result<(), Refusal> {
    let key = SessionKey::of(session);
    match store.bind(key, owner).await {
        Ok(Binding::New) => {
            tracing::debug!(session = ?key, jkt = owner.jkt().unwrap_or_default(), "MCP session bound to its caller");
            Ok(())
        }
        Ok(Binding::AlreadyBound) => {
            tracing::error!(session = ?key, "MCP session refused: the server issued a session id that is already bound");
            Err(Refusal::Unavailable)
        }
        Err(error @ SessionStoreError::OwnerQuotaExceeded { .. }) => {
            // Info, not error: a caller's own limit, not a fault of the server.
            tracing::info!(%error, jkt = owner.jkt().unwrap_or_default(), "MCP session refused: too many sessions");
            Err(Refusal::TooManySessions)
        }
        Err(error) => {
            tracing::error!(%error, "MCP session refused: could not record who opened it");
            Err(Refusal::Unavailable)
        }
    }
}

/// The session id of a request or response: `None` without one, an error for anything but
/// one header of visible ASCII (MCP: `0x21`–`0x7E`).
fn session_id(headers: &HeaderMap) -> Result<Option<&str>, &'static str> {
    let mut values = headers.get_all(SESSION_HEADER).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err("more than one Mcp-Session-Id");
    }
    let visible_ascii = |byte: &u8| (0x21..=0x7e).contains(byte);
    if value.is_empty() || !value.as_bytes().iter().all(visible_ascii) {
        return Err("Mcp-Session-Id must be visible ASCII");
    }
    value.to_str().map(Some).map_err(|_| "Mcp-Session-Id must be visible ASCII")
}

/// Why the layer answers a request itself.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    /// No verified caller: the layer is not behind a DPoP layer.
    Unguarded,
    /// A malformed `Mcp-Session-Id`.
    Malformed(&'static str),
    /// A session that is not the caller's: the MCP spec's answer for an unknown one.
    SessionNotFound,
    /// The caller holds as many sessions as one caller may.
    TooManySessions,
    /// The store cannot say who owns a session, or record it.
    Unavailable,
}

impl Refusal {
    /// The response: JSON, never cached.
    fn response(self) -> Response<Full<Bytes>> {
        let (status, error, description) = match self {
            Self::Unguarded => {
                let reply = Rejection::unguarded_route(dpop_core::AlgorithmSet::default()).reply();
                return dpop_tower::reply_response(&reply).map(|body| Full::new(Bytes::from(body)));
            }
            Self::Malformed(reason) => (StatusCode::BAD_REQUEST, "invalid_request", reason),
            Self::SessionNotFound => (StatusCode::NOT_FOUND, "session_not_found", "No such MCP session"),
            Self::TooManySessions => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sessions",
                "This caller holds as many MCP sessions as it may; end one (DELETE) or let one expire",
            ),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "MCP sessions are unavailable; retry later",
            ),
        };
        let body = format!(r#"{{"error":"{error}","error_description":"{description}"}}"#);
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            if let Ok(value) = HeaderValue::from_bytes(value) {
                headers.append(SESSION_HEADER, value);
            }
        }
        headers
    }

    #[test]
    fn one_visible_ascii_value_is_a_session_id() {
        assert_eq!(session_id(&headers(&[])), Ok(None));
        assert_eq!(session_id(&headers(&[b"0b6a-4c1d"])), Ok(Some("0b6a-4c1d")));
    }

    #[test]
    fn anything_else_is_malformed() {
        assert!(session_id(&headers(&[b"a", b"b"])).is_err());
        assert!(session_id(&headers(&[b"with space"])).is_err());
        assert!(session_id(&headers(&[b""])).is_err());
        assert!(session_id(&headers(&[b"caf\xc3\xa9"])).is_err());
        assert!(session_id(&headers(&[b"tab\there"])).is_err());
    }
}
