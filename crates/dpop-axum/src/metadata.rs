//! Serving the RFC 9728 document where the layer does not wrap the whole router.

use axum::Router;
use axum::extract::OriginalUri;
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use dpop_core::DpopGuard;

/// A router that serves the guard's RFC 9728 protected-resource metadata document (`GET` and
/// `HEAD` on [`DpopGuard::metadata_path`]), for apps that protect routes with
/// [`route_layer`](axum::Router::route_layer) or on a sub-router: a layer there only sees the
/// requests of the routes it wraps, never the well-known path, so merge this router beside
/// them. (A [`DpopLayer`](crate::DpopLayer) applied with `.layer(..)` to the whole router
/// already answers the well-known path itself.) Empty when the guard has no
/// [`resource`](dpop_core::DpopGuardBuilder::resource).
///
/// ```
/// use axum::{Router, routing::post};
/// use dpop_axum::{Authenticated, DpopLayer, metadata_router};
/// use dpop_core::DpopGuard;
/// # let validator = dpop_core::validator_fn(|_| Err(dpop_core::TokenError::Invalid(dpop_core::InvalidToken::Other("unknown token"))));
///
/// async fn mcp(auth: Authenticated) -> String {
///     format!("hello, {}", auth.claims().subject.as_deref().unwrap_or("?"))
/// }
///
/// let guard = DpopGuard::builder()
///     .resource("https://mcp.example.com/mcp")
///     .authorization_server("https://auth.example.com")
///     .token_validator(validator)
///     .build()?;
/// let app: Router = Router::new()
///     .route("/mcp", post(mcp))
///     .route_layer(DpopLayer::with_guard(guard.clone()))
///     // GET /.well-known/oauth-protected-resource/mcp: the document every 401 points to.
///     .merge(metadata_router(&guard));
/// # Ok::<(), dpop_core::ConfigError>(())
/// ```
///
/// The document is the one the layer would serve, byte for byte: the guard's
/// [`metadata_reply`](DpopGuard::metadata_reply), public, with
/// `Access-Control-Allow-Origin: *`. A path segment axum would read as a capture (one starting
/// with `:` or `*`, or holding `{` or `}`) is registered as a capture and the request's path is
/// still compared with the exact well-known path, so merging never panics on an odd resource
/// path and the router answers nothing else.
pub fn metadata_router<S>(guard: &DpopGuard) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let Some(path) = guard.metadata_path() else { return Router::new() };
    let guard = guard.clone();
    let serve = move |method: Method, OriginalUri(uri): OriginalUri| {
        let reply = guard.metadata_reply(method.as_str(), uri.path());
        async move {
            match reply {
                Some(reply) => dpop_tower::reply_response(&reply).into_response(),
                // A path the capture matched that is not the metadata path.
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
    };
    Router::new().route(&route_path(path), get(serve))
}

/// The route for `path`: segments axum would read as captures or wildcards become numbered
/// captures (the handler compares the whole path anyway).
fn route_path(path: &str) -> String {
    path.split('/')
        .enumerate()
        .map(|(index, segment)| {
            let special = segment.starts_with([':', '*']) || segment.contains(['{', '}']);
            if special { format!("{{dpop_metadata_segment_{index}}}") } else { segment.to_owned() }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::route_path;

    #[test]
    fn ordinary_paths_are_routed_as_they_are() {
        assert_eq!(
            route_path("/.well-known/oauth-protected-resource/mcp"),
            "/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(route_path("/.well-known/oauth-protected-resource"), "/.well-known/oauth-protected-resource");
    }

    #[test]
    fn segments_axum_would_capture_become_captures() {
        assert_eq!(
            route_path("/.well-known/oauth-protected-resource/:a/b/*c/{d}"),
            "/.well-known/oauth-protected-resource/{dpop_metadata_segment_3}/b/{dpop_metadata_segment_5}/{dpop_metadata_segment_6}"
        );
    }
}
