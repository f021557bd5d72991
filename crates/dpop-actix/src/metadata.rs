//! Serving the RFC 9728 document where the middleware does not wrap the whole app.

use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use dpop_core::DpopGuard;

use crate::middleware::reply_response;

/// Registers `GET`/`HEAD` on the guard's well-known metadata path, for apps that wrap only some
/// scopes with [`Dpop`](crate::Dpop): `App::new().configure(dpop_actix::metadata(guard))`.
/// (An app wrapped as a whole already answers it from the middleware.) Registers nothing when
/// the guard has no resource configured.
pub fn metadata(guard: DpopGuard) -> impl Fn(&mut ServiceConfig) {
    move |config| {
        let Some(path) = guard.metadata_path() else { return };
        let guard = guard.clone();
        config.service(
            web::resource(path).to(move |request: HttpRequest| {
                let reply = guard.metadata_reply(request.method().as_str(), request.path());
                async move {
                    reply.map_or_else(|| HttpResponse::MethodNotAllowed().finish(), |reply| reply_response(&reply))
                }
            }),
        );
    }
}
