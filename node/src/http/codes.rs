//! Code generation jobs, job status and code export (admin).

use super::body::JsonBody;
use super::body::QueryParams;
use super::campaigns::owned_id;
use crate::auth::Admin;
use crate::codegen::{self, Spec, MAX_INTENDED_USERS, MAX_POOL_COUNT};
use crate::domain::campaign::Kind;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{codes, jobs};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
pub use coupon_api::codes::{
    ExportPage, ExportQuery, ExportedCode, GenerateCodes, JobAccepted, JobView,
};

/// Largest export page (the document states the same bound).
pub use coupon_api::limits::MAX_EXPORT_PAGE;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/campaigns/{campaign_id}/codes",
            post(generate).get(export),
        )
        .route("/v1/jobs/{job_id}", get(job))
}

#[tracing::instrument(skip_all, fields(region = %state.region(), campaign = %id))]
pub async fn generate(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<GenerateCodes>,
) -> ApiResult<(StatusCode, Json<JobAccepted>)> {
    owned_id(&state, &id)?;
    let campaign = state
        .campaigns()
        .by_id(state.db(), &id)
        .await?
        .ok_or(ApiError::NotFound("campaign"))?;
    let spec = match (campaign.kind, body.count, body.intended_users) {
        (Kind::Pool, Some(count), None) => {
            if !(1..=MAX_POOL_COUNT).contains(&count) {
                return Err(ApiError::invalid(
                    "count",
                    format!("count must be 1 to {MAX_POOL_COUNT}"),
                ));
            }
            Spec::Pool { count }
        }
        (Kind::Unique, None, Some(users)) => {
            if users.is_empty() || users.len() > MAX_INTENDED_USERS {
                return Err(ApiError::invalid(
                    "intended_users",
                    format!("1 to {MAX_INTENDED_USERS} user ids per request"),
                ));
            }
            crate::domain::text::user_ids("intended_users", &users)?;
            Spec::Unique { users }
        }
        (Kind::Pool, _, _) => {
            return Err(ApiError::invalid(
                "count",
                "pool campaigns take exactly `count`",
            ))
        }
        (Kind::Unique, _, _) => {
            return Err(ApiError::invalid(
                "intended_users",
                "unique campaigns take exactly `intended_users`",
            ))
        }
        (Kind::Shared, _, _) => {
            return Err(ApiError::invalid(
                "kind",
                "shared campaigns have one vanity code; nothing to generate",
            ))
        }
    };
    let job_id = codegen::start(&state, campaign, spec).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(JobAccepted {
            job_id: job_id.to_string(),
        }),
    ))
}

#[tracing::instrument(skip_all, fields(region = %state.region(), job = %id))]
pub async fn job(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<JobView>> {
    let jid = coupon_core::JobId::parse(&id).map_err(|_| ApiError::NotFound("job"))?;
    state.serve_slot(jid.slot().get())?;
    let j = jobs::get(state.db(), &id)
        .await?
        .ok_or(ApiError::NotFound("job"))?;
    Ok(Json(JobView {
        job_id: j.job_id,
        campaign_id: j.campaign_id,
        state: j.state,
        done: j.done,
        total: j.total,
        report: j.report,
        error: j.error,
        created_at: j.created_at,
    }))
}

#[tracing::instrument(skip_all, fields(region = %state.region(), campaign = %id))]
pub async fn export(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<ExportQuery>,
) -> ApiResult<Json<ExportPage>> {
    owned_id(&state, &id)?;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=MAX_EXPORT_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("limit must be 1 to {MAX_EXPORT_PAGE}"),
        ));
    }
    let after = match q.after.as_deref() {
        None | Some("") => 0,
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::invalid("after", "not a cursor from this API"))?,
    };
    state
        .campaigns()
        .by_id(state.db(), &id)
        .await?
        .ok_or(ApiError::NotFound("campaign"))?;
    let rows = codes::page(state.db(), &id, after, limit).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.seq.to_string()))
        .flatten();
    let codes = rows
        .into_iter()
        .map(|r| ExportedCode {
            code: r.code,
            state: if r.used { "used" } else { "unused" },
            intended_user: r.intended_user,
        })
        .collect();
    Ok(Json(ExportPage { codes, next }))
}
