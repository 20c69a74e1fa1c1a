//! `/v1/coupons/validate` and `/v1/coupons/redeem` (users).

use super::body::JsonBody;
use crate::auth::User;
use crate::burst::ratelimit::{self, Buckets};
use crate::domain::idempotency::{request_hash, IdempotencyKey};
use crate::domain::text;
use crate::error::{ApiError, ApiResult};
use crate::redeem::{resolve, validate::Validation, RedeemRequest};
use crate::state::AppState;
use crate::store::attempts::Attempt;
use crate::store::redemptions::Redemption;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
pub use coupon_api::coupons::{RedeemBody, ValidateBody};
use std::net::SocketAddr;

/// Header a router sets with the epoch it routed at; the fence checks it.
pub const SLOT_EPOCH_HEADER: &str = "coupon-slot-epoch";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// The longest a redeem waits before its COMMIT is sent: queued for a
/// Postgres connection, behind the group being committed, or in its own
/// statements. Under a launch burst that is load, not an unknown outcome
/// (a burst of 400 at once on the Postgres-only engine of a starved 2-core
/// machine waited up to 3 s), so it is not cut at the commit wait; but it
/// also grows behind a commit that never ends (a lost standby holds the
/// group committer and then every connection), so it is bounded: past it
/// the answer is the unknown outcome, as the task still runs on. Below the
/// 5 s in which a direct redeem must answer with the standby lost
/// (chaos test `standby_lost`).
const BEFORE_COMMIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(4);
/// Longest order id accepted, in characters.
pub use coupon_api::limits::MAX_ORDER_ID;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/coupons/validate", post(validate))
        .route("/v1/coupons/redeem", post(redeem))
}

pub async fn validate(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    via_router: Option<axum::Extension<crate::service_auth::ServicePeer>>,
    User(user): User,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ValidateBody>,
) -> ApiResult<Json<Validation>> {
    let ip = client_ip(&headers, peer, via_router.is_some());
    rate_limit(&state, &user, &ip).await?;
    text::no_control("code", &body.code)?;
    let v = crate::redeem::validate::validate(&state, &user, &body.code).await?;
    tracing::Span::current().record("campaign", v.campaign_id.as_str());
    Ok(Json(v))
}

pub async fn redeem(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    via_router: Option<axum::Extension<crate::service_auth::ServicePeer>>,
    User(user): User,
    key: IdempotencyKey,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RedeemBody>,
) -> ApiResult<Response> {
    let ip = client_ip(&headers, peer, via_router.is_some());
    // The Redis claim charges the caller's limits in its own round trip;
    // otherwise they are charged here, first.
    let limits = if state.claim().charges_limits() {
        Limits::InClaim
    } else {
        rate_limit(&state, &user, &ip).await?;
        Limits::Charged
    };
    let caller = Caller {
        user: &user,
        ip: &ip,
    };
    let epoch = match slot_epoch(&headers) {
        Ok(e) => e,
        Err(e) => {
            limits.charge_before_refusal(&state, caller).await?;
            return Err(e);
        }
    };
    let result = redeem_inner(&state, caller, key, &body, epoch, limits).await;
    let (campaign_id, outcome) = match &result {
        Ok((r, _)) => (Some(r.campaign_id.clone()), "redeemed"),
        // Not logged, as when the limit is charged up front: a caller over
        // its limit would otherwise cost a row per attempt.
        Err(ApiError::RateLimited { .. }) => return Err(result.unwrap_err()),
        Err(e) => (None, e.code()),
    };
    log_attempt(&state, campaign_id, &body.code, &user, ip, outcome);
    let (r, replayed) = result?;
    let status = if replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut resp = (status, Json(r)).into_response();
    if replayed {
        resp.headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    Ok(resp)
}

#[derive(Clone, Copy)]
struct Caller<'a> {
    user: &'a str,
    ip: &'a str,
}

/// Where a redeem's rate limits are charged.
#[derive(Clone, Copy)]
enum Limits {
    /// Already, before the handler went on.
    Charged,
    /// By the claim script; a redeem refused before its claim is charged
    /// before its refusal, so those (a guessed code, a paused campaign)
    /// count too, and a caller over its limit gets 429 either way.
    InClaim,
}

impl Limits {
    async fn charge_before_refusal(&self, state: &AppState, caller: Caller<'_>) -> ApiResult<()> {
        match self {
            Limits::Charged => Ok(()),
            Limits::InClaim => rate_limit(state, caller.user, caller.ip).await,
        }
    }
}

async fn redeem_inner(
    state: &AppState,
    caller: Caller<'_>,
    key: IdempotencyKey,
    body: &RedeemBody,
    epoch: Option<i64>,
    limits: Limits,
) -> ApiResult<(Redemption, bool)> {
    let (mut req, gate) = match prepare(state, caller.user, key, body, epoch).await {
        Ok(p) => p,
        Err(e) => {
            limits.charge_before_refusal(state, caller).await?;
            return Err(e);
        }
    };
    if let Err(e) = gate {
        limits.charge_before_refusal(state, caller).await?;
        return refuse_unless_retry(state, &req, e).await;
    }
    // The buckets' key names are built only for a redeem that gets this far.
    if let Limits::InClaim = limits {
        req.limits = Buckets::of(state, caller.user, caller.ip);
    }
    // Claim, commit and settling the claim run to the end even when the
    // caller hangs up (a router's forward timeout drops this future): cut
    // short between claim and commit, the claim leaked like a crash's, and
    // the user's retry read `already_redeemed` until the reconciler gave the
    // use back. Found by chaos::two_nodes under load.
    let engine = state.clone();
    let committing = req.committing.clone();
    let task = async move { engine.claim().redeem(&req).await };
    // The commit waits for the region's synchronous standby; when that wait
    // outlives `commit_wait` the answer is 503 with the outcome unknown
    // (never 201), while the task runs on and settles whatever happens.
    // That wait starts at the COMMIT; the wait before it has its own bound
    // (BEFORE_COMMIT_LIMIT).
    let mut handle = tokio::spawn(tracing::Instrument::in_current_span(task));
    let unknown = || {
        state
            .metrics()
            .inc("coupon_redeem_outcome_unknown_total", &[]);
        ApiError::OutcomeUnknown
    };
    let joined = tokio::select! {
        done = &mut handle => done,
        () = committing.raised() => {
            match tokio::time::timeout(state.commit_wait(), &mut handle).await {
                Ok(done) => done,
                Err(_) => return Err(unknown()),
            }
        }
        () = tokio::time::sleep(BEFORE_COMMIT_LIMIT) => return Err(unknown()),
    };
    let outcome = joined.map_err(|e| ApiError::Internal(format!("redeem task: {e}")))??;
    Ok((outcome.redemption, outcome.replayed))
}

fn slot_epoch(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(v) = headers.get(SLOT_EPOCH_HEADER) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| ApiError::invalid("Coupon-Slot-Epoch", "must be an integer epoch"))
}

/// Every check up to the claim: the request, and the campaign gate's
/// verdict (a refused gate may still answer a retry of a success).
async fn prepare(
    state: &AppState,
    user: &str,
    key: IdempotencyKey,
    body: &RedeemBody,
    epoch: Option<i64>,
) -> ApiResult<(RedeemRequest, ApiResult<()>)> {
    // Checked here, inside the logged part: a refused attempt is a fraud
    // signal too, and the log stores it in a storable form.
    text::no_control("code", &body.code)?;
    text::plain("order_id", &body.order_id, MAX_ORDER_ID)?;
    let code = resolve::shape(&body.code)?;
    let span = tracing::Span::current();
    span.record("slot", code.slot().get());
    state.serve_slot(code.slot().get())?;
    let hash = request_hash(code.as_str(), &body.order_id);
    let r = crate::redeem::bounded(resolve::resolve(state, &code)).await?;
    span.record("campaign", r.campaign.campaign_id.as_str());
    // A retry of a success replays even if the campaign closed since; the
    // claim engine looks the key up before anything else.
    let gate = resolve::gate(&r, user);
    let req = RedeemRequest {
        campaign: r.campaign.clone(),
        user: user.to_owned(),
        key,
        request_hash: hash,
        order_id: body.order_id.clone(),
        code: code.as_str().to_owned(),
        target: r.target.clone(),
        epoch,
        committing: Default::default(),
        limits: Default::default(),
    };
    Ok((req, gate))
}

/// The campaign gate refused: a retry of a success still replays, and a
/// request whose key is still in flight answers 409, not the gate's refusal
/// (the original may yet succeed). The key is looked up again after the
/// in-flight check, so an original that committed in between replays.
async fn refuse_unless_retry(
    state: &AppState,
    req: &RedeemRequest,
    refusal: ApiError,
) -> ApiResult<(Redemption, bool)> {
    use crate::redeem::pg;
    if let Some(prior) = pg::replay_only(state.db(), req).await? {
        return Ok((prior, true));
    }
    if state.claim().in_flight(req).await || pg::key_locked(state.db(), req).await? {
        return Err(ApiError::IdempotencyInFlight);
    }
    match pg::replay_only(state.db(), req).await? {
        Some(prior) => Ok((prior, true)),
        None => Err(refusal),
    }
}

/// The client's address: the peer, or, behind one of our routers (a
/// verified service token), the last `X-Forwarded-For` hop, which that
/// router appended. Hops a client wrote itself are never trusted.
fn client_ip(headers: &HeaderMap, peer: SocketAddr, via_router: bool) -> String {
    headers
        .get("x-forwarded-for")
        .filter(|_| via_router)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map_or_else(|| peer.ip().to_string(), str::to_owned)
}

/// Per-user and per-IP limits (docs/architecture.md §4 step 2).
async fn rate_limit(state: &AppState, user: &str, ip: &str) -> ApiResult<()> {
    let (per_user, per_ip) = state.limits();
    ratelimit::check(state, "user", user, per_user).await?;
    if per_ip.rate > 0.0 {
        ratelimit::check(state, "ip", ip, per_ip).await?;
    }
    Ok(())
}

fn log_attempt(
    state: &AppState,
    campaign_id: Option<String>,
    code: &str,
    user: &str,
    ip: String,
    result: &'static str,
) {
    let attempt = Attempt {
        campaign_id,
        code: code.chars().take(64).collect(),
        user_id: Some(user.to_owned()),
        ip: Some(ip),
        result,
    };
    if state.attempts().try_send(attempt).is_err() {
        state.metrics().inc("coupon_attempt_log_dropped_total", &[]);
    }
}
