//! Admin client: map commands and membership calls against one member (followers forward).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::ClientError;
use crate::model::Region;
use crate::state_machine::SlotChange;

/// Result of a map command.
#[derive(Debug, Clone, Deserialize)]
pub struct WriteOutcome {
    pub request_id: String,
    pub replayed: bool,
    pub version: u64,
    pub slot: Option<SlotChange>,
}

/// Talks to one member with the admin token.
#[derive(Clone)]
pub struct AdminClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// Decodes a success body or a problem+json error.
pub(crate) async fn decode<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, ClientError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp.json().await?);
    }
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Err(ClientError::Problem {
        status: status.as_u16(),
        code: text("code"),
        detail: text("detail"),
    })
}

impl AdminClient {
    pub fn new(base: &str, token: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http,
        })
    }

    /// POSTs `body` to `path` and decodes the answer.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let resp = self
            .http
            .post(format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        decode(resp).await
    }

    pub async fn initialize_raft(&self, members: &[(u64, String)]) -> Result<Value, ClientError> {
        let members: Vec<Value> = members
            .iter()
            .map(|(id, addr)| json!({"node_id": id, "addr": addr}))
            .collect();
        self.post("/v1/raft/initialize", &json!({ "members": members }))
            .await
    }

    pub async fn init(
        &self,
        request_id: &str,
        regions: &[Region],
        slot_count: Option<u32>,
    ) -> Result<WriteOutcome, ClientError> {
        let body = json!({"request_id": request_id, "regions": regions, "slot_count": slot_count});
        self.post("/v1/cluster/init", &body).await
    }

    pub async fn add_region(
        &self,
        request_id: &str,
        region: &Region,
    ) -> Result<WriteOutcome, ClientError> {
        let mut body = serde_json::to_value(region).map_err(|e| ClientError::Problem {
            status: 0,
            code: "encode".into(),
            detail: e.to_string(),
        })?;
        body["request_id"] = json!(request_id);
        self.post("/v1/cluster/regions", &body).await
    }

    pub async fn begin_move(
        &self,
        request_id: &str,
        slot: u32,
        to: &str,
    ) -> Result<WriteOutcome, ClientError> {
        let body = json!({"request_id": request_id, "slot": slot, "to": to});
        self.post("/v1/cluster/moves/begin", &body).await
    }

    pub async fn complete_move(
        &self,
        request_id: &str,
        slot: u32,
    ) -> Result<WriteOutcome, ClientError> {
        self.post(
            "/v1/cluster/moves/complete",
            &json!({"request_id": request_id, "slot": slot}),
        )
        .await
    }

    pub async fn abort_move(
        &self,
        request_id: &str,
        slot: u32,
    ) -> Result<WriteOutcome, ClientError> {
        self.post(
            "/v1/cluster/moves/abort",
            &json!({"request_id": request_id, "slot": slot}),
        )
        .await
    }

    pub async fn add_learner(&self, node_id: u64, addr: &str) -> Result<Value, ClientError> {
        self.post(
            "/v1/cluster/members/learner",
            &json!({"node_id": node_id, "addr": addr}),
        )
        .await
    }

    pub async fn promote(&self, node_ids: &[u64]) -> Result<Value, ClientError> {
        self.post(
            "/v1/cluster/members/promote",
            &json!({ "node_ids": node_ids }),
        )
        .await
    }

    pub async fn remove(&self, node_id: u64) -> Result<Value, ClientError> {
        self.post("/v1/cluster/members/remove", &json!({ "node_id": node_id }))
            .await
    }
}
