//! Admin commands on the map: init, add region, begin/complete/abort a slot move.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;

use crate::http::error::ApiError;
use crate::http::extract::{self, json};
use crate::http::state::AppState;
use crate::http::write::propose;
use crate::model::{Region, RegionId, DEFAULT_SLOT_COUNT};
use crate::state_machine::{Command, Request};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/cluster/init", post(init))
        .route("/v1/cluster/regions", post(add_region))
        .route("/v1/cluster/moves/begin", post(begin_move))
        .route("/v1/cluster/moves/complete", post(complete_move))
        .route("/v1/cluster/moves/abort", post(abort_move))
}

#[derive(Deserialize)]
struct InitBody {
    request_id: String,
    regions: Vec<Region>,
    /// Defaults to [`DEFAULT_SLOT_COUNT`].
    slot_count: Option<u32>,
}

#[derive(Deserialize)]
struct RegionBody {
    request_id: String,
    #[serde(flatten)]
    region: Region,
}

#[derive(Deserialize)]
struct BeginBody {
    request_id: String,
    slot: u32,
    to: RegionId,
}

#[derive(Deserialize)]
struct SlotBody {
    request_id: String,
    slot: u32,
}

fn check_region(r: &Region) -> Result<(), ApiError> {
    extract::url("router", &r.router)?;
    if let Some(sb) = &r.standby {
        extract::url("standby.node", &sb.node)?;
    }
    extract::url("node", &r.node)
}

pub(crate) async fn run(
    s: AppState,
    request_id: String,
    command: Command,
    (method, uri, headers, body): (Method, Uri, HeaderMap, Bytes),
) -> Result<Response, ApiError> {
    extract::request_id(&request_id)?;
    let span = tracing::Span::current();
    span.record("request_id", request_id.as_str());
    if let Command::BeginMove { slot, .. }
    | Command::CompleteMove { slot }
    | Command::AbortMove { slot } = &command
    {
        span.record("slot", slot);
    }
    let incoming = extract::incoming(method, &uri, headers, body);
    propose(
        &s,
        Request {
            request_id,
            command,
        },
        &incoming,
    )
    .await
}

#[tracing::instrument(skip_all)]
async fn init(
    State(s): State<AppState>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: InitBody = json(&body)?;
    b.regions.iter().try_for_each(check_region)?;
    let slot_count = b.slot_count.unwrap_or(DEFAULT_SLOT_COUNT);
    let cmd = Command::Init {
        regions: b.regions,
        slot_count,
    };
    run(s, b.request_id, cmd, (m, u, h, body)).await
}

#[tracing::instrument(skip_all)]
async fn add_region(
    State(s): State<AppState>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: RegionBody = json(&body)?;
    check_region(&b.region)?;
    run(
        s,
        b.request_id,
        Command::AddRegion { region: b.region },
        (m, u, h, body),
    )
    .await
}

#[tracing::instrument(skip_all, fields(slot, request_id))]
async fn begin_move(
    State(s): State<AppState>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: BeginBody = json(&body)?;
    run(
        s,
        b.request_id,
        Command::BeginMove {
            slot: b.slot,
            to: b.to,
        },
        (m, u, h, body),
    )
    .await
}

#[tracing::instrument(skip_all, fields(slot, request_id))]
async fn complete_move(
    State(s): State<AppState>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: SlotBody = json(&body)?;
    run(
        s,
        b.request_id,
        Command::CompleteMove { slot: b.slot },
        (m, u, h, body),
    )
    .await
}

#[tracing::instrument(skip_all, fields(slot, request_id))]
async fn abort_move(
    State(s): State<AppState>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: SlotBody = json(&body)?;
    run(
        s,
        b.request_id,
        Command::AbortMove { slot: b.slot },
        (m, u, h, body),
    )
    .await
}
