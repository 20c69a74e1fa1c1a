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

/// Talks to the members with the admin token: to the first one that
/// answers (followers forward writes to the leader). A write whose answer
/// was lost is safe to send again to another member: the state machine
/// deduplicates by request id.
#[derive(Clone)]
pub struct AdminClient {
    bases: Vec<String>,
    token: String,
    http: reqwest::Client,
}

/// Longest wait for one member's answer before the next member is tried
/// (a paused member must not hang an operator's command).
const MEMBER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

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
        Self::with_members(&[base.to_owned()], token)
    }

    /// A client that falls over to the next member when one does not answer
    /// or has no leader.
    pub fn with_members(bases: &[String], token: &str) -> Result<Self, ClientError> {
        if bases.is_empty() {
            return Err(ClientError::NoMembers);
        }
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .timeout(MEMBER_TIMEOUT)
            .build()?;
        Ok(Self {
            bases: bases
                .iter()
                .map(|b| b.trim_end_matches('/').to_owned())
                .collect(),
            token: token.to_owned(),
            http,
        })
    }

    /// POSTs `body` to `path` and decodes the answer, trying each member in
    /// turn while they fail in transport or answer 5xx.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let mut last = ClientError::NoMembers;
        for base in &self.bases {
            let sent = self
                .http
                .post(format!("{base}{path}"))
                .bearer_auth(&self.token)
                .json(body)
                .send()
                .await;
            match sent {
                Ok(resp) if !resp.status().is_server_error() => return decode(resp).await,
                Ok(resp) => last = decode::<Value>(resp).await.err().unwrap_or(last),
                Err(e) => last = e.into(),
            }
        }
        Err(last)
    }

    /// The map as the first answering member serves it (moves included).
    pub async fn map(&self) -> Result<crate::map_view::MapView, ClientError> {
        let mut last = ClientError::NoMembers;
        for base in &self.bases {
            match self.http.get(format!("{base}/v1/cluster/map")).send().await {
                Ok(resp) if !resp.status().is_server_error() => return decode(resp).await,
                Ok(resp) => last = decode::<Value>(resp).await.err().unwrap_or(last),
                Err(e) => last = e.into(),
            }
        }
        Err(last)
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
