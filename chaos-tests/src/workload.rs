//! Workloads that record every request and answer, for the checker.

use crate::harness::Harness;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Client-side limit per request: far above every server timeout, so a
/// request that hits it is itself a finding.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// One redeem attempt as the client saw it.
#[derive(Debug, Clone)]
pub struct Record {
    /// Region of the router it went through.
    pub via: String,
    pub user: String,
    pub key: String,
    pub code: String,
    /// 0 = no answer (client timeout or transport error).
    pub status: u16,
    pub reason: Option<String>,
    /// `Coupon-Region` of the answer.
    pub region: Option<String>,
    pub redemption_id: Option<String>,
    pub elapsed: Duration,
}

/// Creates a shared campaign through `via`'s router.
pub async fn shared_campaign(h: &Harness, via: &str, code: &str, total: i64) -> Value {
    let body = json!({
        "name": format!("chaos {code}"), "kind": "shared", "code": code,
        "discount": {"type": "amount", "amount_minor": 500, "currency": "USD"},
        "total_limit": total, "per_user_limit": 1,
        "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z",
    });
    let resp = h
        .http
        .post(format!("{}/v1/campaigns", h.router(via)))
        .bearer_auth(h.issuer.admin())
        .json(&body)
        .send()
        .await
        .expect("create campaign");
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 201, "create campaign {code} (seed {}): {v}", h.seed);
    v
}

/// One redeem through `via`'s router; the key is deterministic per
/// (user, code), so a retry reuses it.
pub async fn redeem(
    http: &reqwest::Client,
    router: &str,
    via: &str,
    token: &str,
    user: &str,
    code: &str,
) -> Record {
    let key = format!("{user}-{code}");
    let started = Instant::now();
    let res = http
        .post(format!("{router}/v1/coupons/redeem"))
        .bearer_auth(token)
        .header("Idempotency-Key", &key)
        .timeout(CLIENT_TIMEOUT)
        .json(&json!({"code": code, "order_id": format!("ord-{key}")}))
        .send()
        .await;
    let mut rec = Record {
        via: via.to_owned(),
        user: user.to_owned(),
        key,
        code: code.to_owned(),
        status: 0,
        reason: None,
        region: None,
        redemption_id: None,
        elapsed: Duration::ZERO,
    };
    if let Ok(r) = res {
        rec.status = r.status().as_u16();
        rec.region = r
            .headers()
            .get("coupon-region")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: Value = r.json().await.unwrap_or(Value::Null);
        rec.reason = body["code"]
            .as_str()
            .filter(|_| rec.status >= 400)
            .map(str::to_owned);
        rec.redemption_id = body["redemption_id"].as_str().map(str::to_owned);
    }
    rec.elapsed = started.elapsed();
    rec
}

/// Fires `attempts` (via region, user, code) with at most `concurrency` in
/// flight; returns every record.
pub async fn burst(
    h: &Harness,
    attempts: Vec<(String, String, String)>,
    concurrency: usize,
) -> Vec<Record> {
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut set = tokio::task::JoinSet::new();
    for (via, user, code) in attempts {
        let (http, router, token) = (h.http.clone(), h.router(&via), h.issuer.user(&user));
        let permit = sem.clone().acquire_owned().await.expect("semaphore");
        set.spawn(async move {
            let r = redeem(&http, &router, &via, &token, &user, &code).await;
            drop(permit);
            r
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.expect("redeem task"));
    }
    out
}

/// Records whose status is `status`.
pub fn with_status(records: &[Record], status: u16) -> Vec<&Record> {
    records.iter().filter(|r| r.status == status).collect()
}
