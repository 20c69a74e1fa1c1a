//! `/v1/events`: the outbox feed for downstream systems (admin).

use super::body::QueryParams;
use crate::auth::Admin;
use crate::domain::time::utc;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::outbox;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub const MAX_EVENTS_PAGE: i64 = 1000;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/events", get(feed))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    pub after: Option<String>,
    pub limit: Option<i64>,
    /// The region whose feed to read. Routers route on it and pass it on;
    /// a node serves only its own and refuses another by name.
    pub region: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Deterministic per redemption and event type.
    pub id: String,
    /// `coupon.redeemed` | `coupon.released`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(with = "utc")]
    pub at: DateTime<Utc>,
    pub data: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<EventView>,
    /// Cursor for the next call (same as `after` when nothing new). Never
    /// moves past an event that can still commit: events of transactions
    /// still running are held back until they finish.
    pub next: String,
}

#[utoipa::path(get, path = "/v1/events", params(FeedQuery), responses((status = 200, body = EventPage)))]
#[tracing::instrument(skip_all, fields(region = %state.region()))]
pub async fn feed(
    State(state): State<AppState>,
    _admin: Admin,
    QueryParams(q): QueryParams<FeedQuery>,
) -> ApiResult<Json<EventPage>> {
    if let Some(region) = q.region.as_deref() {
        if region != state.region() {
            return Err(ApiError::invalid(
                "region",
                format!(
                    "this node serves region `{}`'s feed; ask a router for region `{region}`",
                    state.region()
                ),
            ));
        }
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_EVENTS_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("limit must be 1 to {MAX_EVENTS_PAGE}"),
        ));
    }
    let after = match q.after.as_deref() {
        None | Some("") => outbox::Cursor::default(),
        Some(c) => match (outbox::Cursor::parse(c), c.parse::<i64>()) {
            (Some(cursor), _) => cursor,
            (None, Ok(seq)) if seq >= 0 => outbox::Cursor::legacy(state.db(), seq).await?,
            _ => return Err(ApiError::invalid("after", "not a cursor from this API")),
        },
    };
    let rows = outbox::feed(state.db(), after, limit).await?;
    let next = rows.last().map_or(after, |e| e.cursor).to_string();
    let events = rows
        .into_iter()
        .map(|e| EventView {
            id: e.id,
            kind: e.kind,
            at: e.at,
            data: e.data,
        })
        .collect();
    Ok(Json(EventPage { events, next }))
}
