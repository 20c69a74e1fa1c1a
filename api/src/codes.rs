//! Code generation jobs, job status and code export on the wire.

use crate::time::utc;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `{"count": n}` for pool campaigns or `{"intended_users": [...]}` for
/// unique ones.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateCodes {
    #[serde(default, deserialize_with = "crate::int::option_i64")]
    pub count: Option<i64>,
    #[serde(default)]
    pub intended_users: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobAccepted {
    #[schema(pattern = r"^job_[2-9A-HJ-NP-Z]{15}$")]
    pub job_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub job_id: String,
    pub campaign_id: String,
    /// `running` | `done` | `failed`.
    #[schema(pattern = "^(running|done|failed)$")]
    pub state: String,
    pub done: i64,
    pub total: i64,
    /// Per-store counts, verified in each store.
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(with = "utc")]
    #[schema(format = DateTime)]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Opaque cursor from the previous page's `next`.
    #[param(pattern = r"^[0-9]{0,18}$")]
    pub after: Option<String>,
    /// Page size, 1 to 10000 (default 1000).
    #[param(minimum = 1, maximum = 10_000)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExportedCode {
    pub code: String,
    /// `unused` | `used`.
    #[schema(pattern = "^(unused|used)$")]
    pub state: &'static str,
    pub intended_user: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExportPage {
    pub codes: Vec<ExportedCode>,
    pub next: Option<String>,
}
