//! `/v1/campaigns`: create, get, pause, resume (admin).

use super::body::JsonBody;
use crate::auth::Admin;
use crate::domain::campaign::{campaign_view, CampaignView, CreateCampaign, ValidateCampaign};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::campaigns;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use coupon_core::{CampaignId, Code, Slot};
use rand::seq::SliceRandom;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/campaigns", post(create))
        .route("/v1/campaigns/{campaign_id}", get(read))
        .route("/v1/campaigns/{campaign_id}/pause", post(pause))
        .route("/v1/campaigns/{campaign_id}/resume", post(resume))
        .route("/v1/campaigns/{campaign_id}/reconcile", post(reconcile))
}

/// Create a campaign. Its home slot is the vanity code's slot, or a random
/// slot this region owns.
pub async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    JsonBody(body): JsonBody<CreateCampaign>,
) -> ApiResult<(StatusCode, Json<CampaignView>)> {
    let new = body.validate()?;
    let owned = state.owned().active();
    let slot = match &new.code {
        Some(code @ Code::Vanity(_)) => {
            let s = code.slot().get();
            if !owned.contains(&s) {
                return Err(ApiError::Misdirected {
                    slot: s,
                    owner: None,
                    epoch: None,
                });
            }
            if let Some(home) = new.home_region.as_deref().filter(|h| *h != state.region()) {
                // The code decides: it hashes to a slot, and this region owns it.
                return Err(ApiError::invalid(
                    "home_region",
                    format!(
                        "code `{}` belongs to slot {s}, which region `{}` owns; a campaign with \
                         a vanity code lives in its code's slot, so home_region must be `{}` \
                         or omitted (asked for `{home}`)",
                        code.as_str(),
                        state.region(),
                        state.region()
                    ),
                ));
            }
            s
        }
        _ => {
            if let Some(home) = new.home_region.as_deref().filter(|h| *h != state.region()) {
                return Err(foreign_home(&state, home));
            }
            *owned
                .choose(&mut rand::thread_rng())
                .ok_or(ApiError::Unavailable {
                    what: "slot ownership",
                })?
        }
    };
    let id = CampaignId::random(
        Slot::new(slot).expect("owned slot"),
        &mut rand::thread_rng(),
    );
    tracing::Span::current()
        .record("slot", slot)
        .record("campaign", id.as_str());
    campaigns::insert(state.db(), id.as_str(), slot, &new).await?;
    if let Some(c) = state.campaigns().by_id(state.db(), id.as_str()).await? {
        // Redis is an accelerator: if it cannot be seeded now, the first
        // redeem seeds it and meanwhile takes the Postgres-only path.
        if let Err(e) = state.claim().seed(&c).await {
            tracing::warn!(error = %e, "could not seed the new campaign's redis state");
        }
    }
    let view = view(&state, id.as_str()).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[tracing::instrument(skip_all, fields(region = %state.region(), campaign = %id))]
pub async fn read(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    owned_id(&state, &id)?;
    Ok(Json(view(&state, &id).await?))
}

#[tracing::instrument(skip_all, fields(region = %state.region(), campaign = %id))]
pub async fn pause(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    set_paused(&state, &id, true).await
}

#[tracing::instrument(skip_all, fields(region = %state.region(), campaign = %id))]
pub async fn resume(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    set_paused(&state, &id, false).await
}

/// Compare the campaign's Redis state with Postgres now, give back leaked
/// claims older than the grace period, and rebuild on drift.
#[tracing::instrument(skip_all, fields(region = %state.region(), campaign = %id))]
pub async fn reconcile(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    owned_id(&state, &id)?;
    let c = campaigns::by_id(state.db(), &id)
        .await?
        .ok_or(ApiError::NotFound("campaign"))?;
    Ok(Json(state.claim().reconcile(&c).await?))
}

async fn set_paused(state: &AppState, id: &str, paused: bool) -> ApiResult<Json<CampaignView>> {
    owned_id(state, id)?;
    if !campaigns::set_paused(state.db(), id, paused).await? {
        return Err(ApiError::NotFound("campaign"));
    }
    state.campaigns().forget(id);
    if let Some(c) = campaigns::by_id(state.db(), id).await? {
        if let Err(e) = state.claim().campaign_changed(&c).await {
            // The cache TTL and the next reseed still carry the pause.
            tracing::warn!(error = %e, "could not mirror pause state to redis");
        }
    }
    Ok(Json(view(state, id).await?))
}

/// `home_region` names another region: say whether it exists at all.
fn foreign_home(state: &AppState, home: &str) -> ApiError {
    let known = state
        .regional()
        .maps()
        .map(|m| m.current().regions.iter().any(|r| r.id.as_str() == home));
    let detail = match known {
        Some(false) => format!("no region `{home}` in the cluster"),
        _ => format!(
            "this node serves region `{}`; region `{home}`'s campaigns are created by its \
             own node (any router sends them there)",
            state.region()
        ),
    };
    ApiError::invalid("home_region", detail)
}

pub fn parse_id(id: &str) -> ApiResult<CampaignId> {
    CampaignId::parse(id).map_err(|_| ApiError::NotFound("campaign"))
}

/// A campaign id this node may answer for now (else 421 / 503).
pub fn owned_id(state: &AppState, id: &str) -> ApiResult<CampaignId> {
    let c = parse_id(id)?;
    state.serve_slot(c.slot().get())?;
    Ok(c)
}

pub async fn view(state: &AppState, id: &str) -> ApiResult<CampaignView> {
    let c = campaigns::by_id(state.db(), id)
        .await?
        .ok_or(ApiError::NotFound("campaign"))?;
    let (redeemed, codes) = campaigns::counts(state.db(), id).await?;
    Ok(campaign_view(c, state.region(), redeemed, codes))
}
