//! [`Caller`]: who is calling an rmcp tool, as the DPoP layer verified it.

use std::ops::Deref;

use dpop_core::Authentication;
use http::request::Parts;
use rmcp::ErrorData;
use rmcp::handler::server::common::{AsRequestContext, FromContextPart};
use rmcp::model::ErrorCode;
use serde_json::json;

/// The JSON-RPC error code of a [`Caller::require_scope`] refusal: `-32600` (Invalid Request).
///
/// MCP defines no JSON-RPC code for authorization failures. Its authorization spec answers a
/// token without the scope a request needs at the HTTP level (`403` with
/// `WWW-Authenticate: … error="insufficient_scope", scope="…"`), which is what a route-wide
/// requirement does ([`DpopGuard::with_required_scopes`](dpop_core::DpopGuard::with_required_scopes)).
/// A tool decides inside the JSON-RPC exchange, once rmcp has answered `200`, so it answers
/// with a JSON-RPC error:
///
/// - a protocol error, not a tool result with `isError`: those are for the model to read and
///   correct its arguments, and no argument fixes a missing grant — the client must obtain a
///   token with the scope;
/// - a standard code, not an invented one: clients treat `-32600` as "refused as sent", and
///   MCP is moving its own custom codes to standard ones (rmcp sends `-32602` for `-32002`
///   from protocol `2026-07-28`); `-32603` (Internal Error) would claim a server fault;
/// - `data` says exactly what RFC 6750 §3.1's challenge would: `{"error":
///   "insufficient_scope", "scope": "<the scope>"}`, so a client can ask its authorization
///   server for it.
pub const INSUFFICIENT_SCOPE_CODE: ErrorCode = ErrorCode::INVALID_REQUEST;

/// The caller of an rmcp tool: the validated access token bound to the key that signed the
/// request's DPoP proof, as the DPoP layer in front of rmcp's `StreamableHttpService` verified
/// it. Take it as a tool parameter, and check per-tool scopes with
/// [`require_scope`](Self::require_scope):
///
/// ```
/// use dpop_mcp::Caller;
/// use rmcp::handler::server::router::tool::ToolRouter;
/// use rmcp::{ErrorData, tool, tool_router};
///
/// #[derive(Clone)]
/// struct Tools {
///     tool_router: ToolRouter<Self>,
/// }
///
/// #[tool_router]
/// impl Tools {
///     #[tool(description = "Who is calling")]
///     fn whoami(&self, caller: Caller) -> String {
///         format!("{} with key {}", caller.subject().unwrap_or("?"), caller.jkt().unwrap_or_default())
///     }
///
///     #[tool(description = "Deletes everything")]
///     fn purge(&self, caller: Caller) -> Result<String, ErrorData> {
///         caller.require_scope("tools:write")?;
///         Ok("purged".to_owned())
///     }
/// }
/// ```
///
/// [`Caller::from_parts`] does the same for code that holds rmcp's
/// `Extension<http::request::Parts>`. It dereferences to [`Authentication`] (claims, scheme,
/// proof).
///
/// Only a layer that validates tokens provides a caller. On a request without one (rmcp not
/// behind the layer, or behind a [proof-only](dpop_core::DpopGuardBuilder::proof_only) layer)
/// the tool does not run: rmcp answers `-32603` (Internal Error), and a `tracing::error!`
/// event names the misconfiguration.
#[derive(Clone, Debug)]
pub struct Caller(Authentication);

impl Caller {
    /// The caller of the request `parts` describe: the [`Authentication`] the DPoP layer left
    /// in its extensions.
    ///
    /// ```
    /// use dpop_mcp::Caller;
    /// use rmcp::ErrorData;
    /// use rmcp::handler::server::tool::Extension;
    ///
    /// fn subject(Extension(parts): Extension<http::request::Parts>) -> Result<String, ErrorData> {
    ///     Ok(Caller::from_parts(&parts)?.subject().unwrap_or_default().to_owned())
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// `-32603` (Internal Error) when there is none: the service is not behind a DPoP layer
    /// that validates tokens.
    pub fn from_parts(parts: &Parts) -> Result<Self, ErrorData> {
        parts.extensions.get::<Authentication>().cloned().map(Self).ok_or_else(unauthenticated)
    }

    /// The token's subject (`sub`).
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        self.0.claims().subject.as_deref()
    }

    /// The token's granted scopes.
    #[must_use]
    pub fn scopes(&self) -> &[String] {
        &self.0.claims().scopes
    }

    /// Refuses the call unless the token grants `scope`.
    ///
    /// ```
    /// # use dpop_mcp::Caller;
    /// fn delete(caller: &Caller) -> Result<String, rmcp::ErrorData> {
    ///     caller.require_scope("tools:write")?;
    ///     Ok("deleted".to_owned())
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// An [`ErrorData`] with [`INSUFFICIENT_SCOPE_CODE`] (see there for why), the message
    /// `insufficient_scope: this tool requires the scope "<scope>"` and the data
    /// `{"error": "insufficient_scope", "scope": "<scope>"}`; the refusal is a
    /// `tracing::info!` event.
    pub fn require_scope(&self, scope: &str) -> Result<(), ErrorData> {
        self.require_scopes([scope])
    }

    /// Refuses the call unless the token grants every scope of `scopes`; the error names all
    /// of them (space-separated, as in a `scope` challenge parameter).
    ///
    /// # Errors
    ///
    /// As [`require_scope`](Self::require_scope).
    pub fn require_scopes<'s>(&self, scopes: impl IntoIterator<Item = &'s str>) -> Result<(), ErrorData> {
        let scopes: Vec<&str> = scopes.into_iter().collect();
        let claims = self.0.claims();
        let Some(missing) = scopes.iter().find(|scope| !claims.has_scope(scope)) else { return Ok(()) };
        let required = scopes.join(" ");
        tracing::info!(
            missing = %missing,
            required = %required,
            subject = self.subject().unwrap_or_default(),
            "MCP call refused: the access token lacks a scope the tool requires"
        );
        Err(ErrorData::new(
            INSUFFICIENT_SCOPE_CODE,
            format!("insufficient_scope: this tool requires the scope \"{required}\""),
            Some(json!({ "error": "insufficient_scope", "scope": required })),
        ))
    }

    /// The verified authentication.
    #[must_use]
    pub fn into_inner(self) -> Authentication {
        self.0
    }
}

impl Deref for Caller {
    type Target = Authentication;

    fn deref(&self) -> &Authentication {
        &self.0
    }
}

/// A tool parameter: rmcp's streamable HTTP service puts the request's [`Parts`] into the
/// context's extensions, where the layer left the [`Authentication`].
impl<C: AsRequestContext> FromContextPart<C> for Caller {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        let parts = context.as_request_context().extensions.get::<Parts>().ok_or_else(unauthenticated)?;
        Self::from_parts(parts)
    }
}

/// The error for a request that reached a tool without an [`Authentication`].
fn unauthenticated() -> ErrorData {
    tracing::error!(
        "MCP call refused: no verified caller; serve rmcp's StreamableHttpService behind a DPoP layer that \
         validates access tokens"
    );
    ErrorData::internal_error("the request has no verified caller (server misconfiguration)", None)
}
