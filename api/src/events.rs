//! The outbox feed on the wire.

use crate::time::utc;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// Cursor: the `next` of the previous page (absent or empty: from the start).
    #[param(pattern = r"^[0-9]{0,18}$")]
    pub after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The region whose feed to read. Routers route on it; a node serves
    /// only its own and refuses another by name.
    /// (The router's document lists it; a node's does not.)
    #[param(ignore)]
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
    #[schema(format = DateTime)]
    pub at: DateTime<Utc>,
    #[schema(value_type = Object)]
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
