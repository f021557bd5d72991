//! [`reply_response`]: a decision of the guard as an `http` response.

use dpop_core::Reply;
use http::{HeaderValue, Response, StatusCode};

/// The HTTP response for a reply of the guard (a rejection, the metadata document), exactly as
/// it describes it: for handlers and services that call [`DpopGuard`](dpop_core::DpopGuard)
/// themselves.
pub fn reply_response(reply: &Reply) -> Response<String> {
    let mut response = Response::new(reply.body().to_owned());
    *response.status_mut() = StatusCode::from_u16(reply.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    for (name, value) in reply.headers() {
        // Challenge values are quoted-string escaped to visible ASCII, so this cannot fail;
        // if it ever did, the response stays a refusal, just without that header.
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().append(name, value);
        }
    }
    response
}
