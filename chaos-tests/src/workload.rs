//! Workloads that record every request and answer, with wall-clock start
//! and finish times, for the checker and for fault-overlap checks.

use crate::harness::Harness;
use chrono::{DateTime, Utc};
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
    /// `Retry-After` of the answer, when it had one.
    pub retry_after: Option<String>,
    /// `Idempotent-Replayed: true` was on the answer.
    pub replayed: bool,
    /// Wall clock (shared with every process on this machine, so it compares
    /// with Postgres' `now()` and with fault windows).
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub elapsed: Duration,
}

impl Record {
    /// No definitive answer: the request may or may not have committed.
    pub fn ambiguous(&self) -> bool {
        self.status == 0 || self.status >= 500
    }

    pub fn acknowledged(&self) -> bool {
        matches!(self.status, 200 | 201)
    }
}

/// Creates a shared campaign through `via`'s router.
pub async fn shared_campaign(h: &Harness, via: &str, code: &str, total: i64) -> Value {
    create_campaign(
        h,
        via,
        json!({
            "name": format!("chaos {code}"), "kind": "shared", "code": code,
            "discount": {"type": "amount", "amount_minor": 500, "currency": "USD"},
            "total_limit": total, "per_user_limit": 1,
            "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z",
        }),
    )
    .await
}

/// Creates any campaign through `via`'s router; panics unless 201. A 503
/// (a slow start on a loaded machine) is retried; when the first attempt
/// did land, the vanity code's campaign is looked up instead.
pub async fn create_campaign(h: &Harness, via: &str, body: Value) -> Value {
    let mut last = (0, Value::Null);
    for _ in 0..4 {
        let resp = h
            .http
            .post(format!("{}/v1/campaigns", h.router(via)))
            .bearer_auth(h.issuer.admin())
            .timeout(CLIENT_TIMEOUT)
            .json(&body)
            .send()
            .await;
        let Ok(resp) = resp else { continue };
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        match status {
            201 => return v,
            // A duplicate vanity code is refused with 400 naming `code`.
            400 if last.0 == 503 => {
                if let Some(c) = existing(h, via, &body).await {
                    return c;
                }
            }
            503 => tokio::time::sleep(Duration::from_millis(500)).await,
            _ => {}
        }
        last = (status, v);
        if last.0 != 503 {
            break;
        }
    }
    panic!("create campaign {body} (seed {}): {last:?}", h.seed);
}

/// The campaign of a vanity code, when an earlier create landed.
async fn existing(h: &Harness, via: &str, body: &Value) -> Option<Value> {
    let code = body["code"].as_str()?;
    let valid: Value = h
        .http
        .post(format!("{}/v1/coupons/validate", h.router(via)))
        .bearer_auth(h.issuer.user("chaos-lookup"))
        .json(&json!({"code": code}))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let id = valid["campaign_id"].as_str()?;
    h.http
        .get(format!("{}/v1/campaigns/{id}", h.router(via)))
        .bearer_auth(h.issuer.admin())
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// The idempotency key of (user, code): deterministic, so a retry reuses it.
pub fn key_of(user: &str, code: &str) -> String {
    format!("{user}-{code}")
}

/// One redeem through `via`'s router, keyed by [`key_of`].
pub async fn redeem(
    http: &reqwest::Client,
    router: &str,
    via: &str,
    token: &str,
    user: &str,
    code: &str,
) -> Record {
    redeem_keyed(http, router, via, token, user, code, &key_of(user, code)).await
}

/// One redeem through `via`'s router with an explicit idempotency key.
pub async fn redeem_keyed(
    http: &reqwest::Client,
    router: &str,
    via: &str,
    token: &str,
    user: &str,
    code: &str,
    key: &str,
) -> Record {
    let key = key.to_owned();
    let started_at = Utc::now();
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
        retry_after: None,
        replayed: false,
        started_at,
        finished_at: started_at,
        elapsed: Duration::ZERO,
    };
    if let Ok(r) = res {
        rec.status = r.status().as_u16();
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        rec.region = header("coupon-region");
        rec.retry_after = header("retry-after");
        rec.replayed = header("idempotent-replayed").as_deref() == Some("true");
        match r.json::<Value>().await {
            Ok(body) => {
                rec.reason = body["code"]
                    .as_str()
                    .filter(|_| rec.status >= 400)
                    .map(str::to_owned);
                rec.redemption_id = body["redemption_id"].as_str().map(str::to_owned);
            }
            // The status arrived but the body did not: still ambiguous for
            // a success, so keep the status and let the checker judge.
            Err(_) if rec.status < 300 => rec.status = 0,
            Err(_) => {}
        }
    }
    rec.elapsed = started.elapsed();
    rec.finished_at = Utc::now();
    rec
}

/// Fires `attempts` (via region, user, code) with at most `concurrency` in
/// flight; returns every record.
pub async fn burst(
    h: &Harness,
    attempts: Vec<(String, String, String)>,
    concurrency: usize,
) -> Vec<Record> {
    paced(h, attempts, concurrency, Duration::ZERO).await
}

/// Like [`burst`], but starts one attempt every `every`, so the load is
/// continuous over `attempts.len() × every` and spans a fault window.
pub async fn paced(
    h: &Harness,
    attempts: Vec<(String, String, String)>,
    concurrency: usize,
    every: Duration,
) -> Vec<Record> {
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut set = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(every.max(Duration::from_micros(1)));
    for (via, user, code) in attempts {
        if !every.is_zero() {
            tick.tick().await;
        }
        let (http, router, token) = (h.http.clone(), h.router(&via), h.issuer.user(&user));
        let permit = sem.clone().acquire_owned().await.expect("semaphore");
        let in_flight = h.in_flight.clone();
        set.spawn(async move {
            // The record spans the in-flight count (timeline::InFlight).
            let started_at = in_flight.enter();
            let mut r = redeem(&http, &router, &via, &token, &user, &code).await;
            r.finished_at = in_flight.leave();
            r.started_at = started_at;
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

/// Retries every attempt of `records` that has no definitive answer yet,
/// with its own key, until each has one or `rounds` run out. Returns the
/// retries' records (the originals stay as they were).
pub async fn retry_ambiguous(
    h: &Harness,
    records: &[Record],
    concurrency: usize,
    rounds: usize,
) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for _ in 0..rounds {
        let open = unresolved(records.iter().chain(&out));
        if open.is_empty() {
            break;
        }
        out.extend(burst(h, open, concurrency).await);
    }
    out
}

/// Asks the owner of `campaign_id` to reconcile now (through `via`'s
/// router): claims leaked by a stall or crash older than the grace period
/// go back to Redis.
pub async fn reconcile(h: &Harness, via: &str, campaign_id: &str) -> Value {
    let r = h
        .http
        .post(format!(
            "{}/v1/campaigns/{campaign_id}/reconcile",
            h.router(via)
        ))
        .bearer_auth(h.issuer.admin())
        .json(&json!({}))
        .send()
        .await
        .expect("reconcile");
    assert_eq!(r.status(), 200, "reconcile {campaign_id} (seed {})", h.seed);
    r.json().await.unwrap_or(Value::Null)
}

/// (via, user, code) of every key that has no acknowledgement yet.
pub fn unacknowledged<'a>(
    records: impl Iterator<Item = &'a Record>,
) -> Vec<(String, String, String)> {
    let mut by_key: std::collections::BTreeMap<(String, String), (bool, &Record)> =
        Default::default();
    for r in records {
        let e = by_key
            .entry((r.user.clone(), r.key.clone()))
            .or_insert((false, r));
        e.0 |= r.acknowledged();
    }
    by_key
        .values()
        .filter(|(acked, _)| !acked)
        .map(|(_, r)| (r.via.clone(), r.user.clone(), r.code.clone()))
        .collect()
}

/// (via, user, code) of every key whose latest answer is ambiguous.
pub fn unresolved<'a>(records: impl Iterator<Item = &'a Record>) -> Vec<(String, String, String)> {
    let mut last: std::collections::BTreeMap<(String, String), &Record> = Default::default();
    for r in records {
        let k = (r.user.clone(), r.key.clone());
        if last.get(&k).is_none_or(|p| p.started_at <= r.started_at) {
            last.insert(k, r);
        }
    }
    last.values()
        .filter(|r| r.ambiguous())
        .map(|r| (r.via.clone(), r.user.clone(), r.code.clone()))
        .collect()
}

/// Records whose status is `status`.
pub fn with_status(records: &[Record], status: u16) -> Vec<&Record> {
    records.iter().filter(|r| r.status == status).collect()
}
