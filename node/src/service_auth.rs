//! Service tokens on the node: a request carrying `Coupon-Service-Token`
//! (a router forwarding, a peer checking our credentials) must carry a valid
//! one — EdDSA, known `kid`, audience = this region, not expired — or it gets
//! 401 `unauthorized` and counts in `coupon_service_auth_failures_total{peer}`.
//!
//! Requests without the header stay allowed: in-region clients and the API
//! tests call the node directly, authenticated by the user's JWT alone. The
//! inter-region guarantee is that a router never forwards without a token.

use crate::auth::cache::now_secs;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use coupon_core::service_token::{
    region_of_kid, KeyRing, ServiceClaims, SERVICE_AUTH_FAILED_HEADER, SERVICE_TOKEN_HEADER,
};
use serde_json::{json, Value};

/// The verified caller of a service request.
#[derive(Debug, Clone)]
pub struct ServicePeer(pub ServiceClaims);

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/service/ping", get(ping))
}

/// `GET /v1/service/ping`: 200 only with a valid service token, so a peer
/// can prove its credentials work here (readiness, `couponctl doctor`).
async fn ping(
    State(state): State<AppState>,
    peer: Option<Extension<ServicePeer>>,
) -> Result<Json<Value>, Response> {
    match peer {
        Some(Extension(ServicePeer(c))) => Ok(Json(
            json!({"region": state.region(), "peer": c.iss, "caller": c.sub}),
        )),
        None => Err(reject("a service token is required here".into())),
    }
}

/// Checks the service token, if any, then hands the request to `next`.
/// Called from the request-context middleware rather than layered on its
/// own: every layer of an axum router costs each request a boxed service
/// clone, a boxed future and a `Next` (docs/benchmarks.md).
pub async fn verify<F, Fut>(state: &AppState, mut req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let Some(token) = req.headers().get(SERVICE_TOKEN_HEADER) else {
        return next(req).await;
    };
    let token = token.to_str().unwrap_or_default().to_owned();
    // A router reuses one token for 20 s: verify it once, then serve it from
    // the cache until its `exp` (failures are never cached).
    let cache = state.service_tokens();
    let result = match (cache.get(&token, now_secs()), state.regional().keyring()) {
        (Some(claims), _) => Ok(claims),
        (None, Some(ring)) => match ring.verify(&token) {
            Ok(claims) => {
                cache.put(&token, claims.exp, claims.clone(), now_secs());
                Ok(claims)
            }
            Err(e) => Err((peer_label(ring, &token), e.to_string())),
        },
        (None, None) => Err((
            "unknown".to_owned(),
            "this node has no service keys configured".to_owned(),
        )),
    };
    match result {
        Ok(claims) => {
            req.extensions_mut().insert(ServicePeer(claims));
            next(req).await
        }
        Err((peer, why)) => {
            // The reason goes to the log; the caller learns only that its
            // service token was refused (no library error text).
            tracing::warn!(region = %state.region(), %peer, %why, "service token rejected");
            state
                .metrics()
                .inc("coupon_service_auth_failures_total", &[("peer", &peer)]);
            reject(
                "service token rejected (wrong key, audience or expired); see this node's logs"
                    .into(),
            )
        }
    }
}

/// Metric label of a failing token: the kid's region when the kid is known
/// (bounded cardinality), else `unknown`.
fn peer_label(ring: &KeyRing, token: &str) -> String {
    KeyRing::claimed_kid(token)
        .filter(|k| ring.kids().any(|known| known == k))
        .map_or_else(|| "unknown".to_owned(), |k| region_of_kid(&k).to_owned())
}

fn reject(detail: String) -> Response {
    let mut resp = ApiError::Unauthorized(detail).into_response();
    resp.headers_mut().insert(
        SERVICE_AUTH_FAILED_HEADER,
        HeaderValue::from_static("rejected"),
    );
    resp
}
