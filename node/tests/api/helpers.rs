//! Shared test helpers: one real Postgres and one real Redis per test
//! process, a fresh database per test, the node on a real listener.

use clap::Parser;
use coupon_node::config::NodeConfig;
use coupon_testkit::issuer::{DEV_AUD, DEV_ISS};
use coupon_testkit::{postgres::PgOptions, Issuer, PgServer, RedisServer};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::OnceLock;

pub struct Stores {
    pub pg: PgServer,
    pub redis: RedisServer,
}

pub fn stores() -> &'static Stores {
    static S: OnceLock<Stores> = OnceLock::new();
    S.get_or_init(|| Stores {
        pg: PgServer::start_temp(PgOptions::default()).expect("start postgres"),
        redis: RedisServer::start_temp().expect("start redis"),
    })
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub issuer: Issuer,
    /// Direct access to this test's database, for checks that bypass the node.
    pub db: PgPool,
    #[allow(dead_code)]
    pub db_url: String,
    #[allow(dead_code)]
    pub redis_url: String,
}

/// The claim engine these tests run on: the Redis burst path unless the
/// environment says `COUPON_CLAIM_ENGINE=postgres` (read by the node's own
/// config parser, so the same suites run on both engines).
pub fn redis_engine() -> bool {
    std::env::var("COUPON_CLAIM_ENGINE").map_or(true, |v| v != "postgres")
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut NodeConfig)) -> TestApp {
        let s = stores();
        TestApp::spawn_on(&s.pg, &s.redis.url(), tweak).await
    }

    /// A node on the given stores (fault tests kill and restart their own).
    pub async fn spawn_on(
        pg: &PgServer,
        redis_url: &str,
        tweak: impl FnOnce(&mut NodeConfig),
    ) -> TestApp {
        let name = format!("t{}", coupon_testkit::unique_tag());
        let db_url = pg.create_database(&name).expect("create database");
        let issuer = Issuer::generate(DEV_ISS, DEV_AUD);
        TestApp::node(db_url, redis_url, issuer, tweak).await
    }

    /// Another node on this one's database and Redis, as two replicas of a
    /// region share them, trusting the same token issuer.
    #[allow(dead_code)]
    pub async fn peer(&self) -> TestApp {
        TestApp::node(
            self.db_url.clone(),
            &self.redis_url,
            self.issuer.clone(),
            |_| {},
        )
        .await
    }

    async fn node(
        db_url: String,
        redis_url: &str,
        issuer: Issuer,
        tweak: impl FnOnce(&mut NodeConfig),
    ) -> TestApp {
        let name = format!("t{}", coupon_testkit::unique_tag());
        let keydir = coupon_testkit::scratch_root().join(format!("keys-{name}"));
        let (_, public) = issuer.write(&keydir, "issuer").expect("write keys");
        let mut cfg = NodeConfig::try_parse_from([
            "coupon-node",
            "--region=us",
            "--listen=127.0.0.1:0",
            &format!("--database-url={db_url}"),
            &format!("--redis-url={redis_url}"),
            &format!("--issuer-public-key={}", public.display()),
            &format!("--issuer={DEV_ISS}"),
            &format!("--audience={DEV_AUD}"),
            // Rate limits have their own test; the others fire bursts per user.
            "--user-rate=0",
        ])
        .expect("test config parses");
        tweak(&mut cfg);
        let state = coupon_node::start::build_state(&cfg)
            .await
            .expect("build node state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(coupon_node::start::serve(
            listener,
            state,
            std::future::pending(),
        ));
        let db = PgPool::connect(&db_url).await.expect("test pool");
        TestApp {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(1000)
                .build()
                .unwrap(),
            issuer,
            db,
            db_url,
            redis_url: redis_url.to_owned(),
        }
    }

    pub fn admin(&self) -> String {
        self.issuer.admin()
    }

    /// Sum of every sample of the metric `name` (all label sets).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .get("/metrics", None)
            .await
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.split(['{', ' ']).next() == Some(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub fn user(&self, id: &str) -> String {
        self.issuer.user(id)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    /// Create a campaign from `spec` merged over sensible defaults.
    pub async fn campaign(&self, spec: Value) -> Value {
        let mut body = json!({
            "name": "Test campaign",
            "discount": {"type": "amount", "amount_minor": 1000, "currency": "USD"},
            "per_user_limit": 1,
            "starts_at": "2020-01-01T00:00:00Z",
            "ends_at": "2099-01-01T00:00:00Z",
        });
        for (k, v) in spec.as_object().expect("object spec") {
            body[k] = v.clone();
        }
        let resp = self.post("/v1/campaigns", Some(&self.admin()), &body).await;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "create campaign: {v}");
        v
    }

    /// Generate codes and wait for the job to finish; returns the job.
    pub async fn generate(&self, campaign_id: &str, body: Value) -> Value {
        let path = format!("/v1/campaigns/{campaign_id}/codes");
        let resp = self.post(&path, Some(&self.admin()), &body).await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        let job: Value = resp.json().await.unwrap();
        let id = job["job_id"].as_str().unwrap().to_owned();
        for _ in 0..600 {
            let j: Value = self
                .get(&format!("/v1/jobs/{id}"), Some(&self.admin()))
                .await
                .json()
                .await
                .unwrap();
            if j["state"] != "running" {
                assert_eq!(j["state"], "done", "job failed: {j}");
                return j;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("job {id} did not finish");
    }

    /// Every code of a campaign, through the export API.
    pub async fn export(&self, campaign_id: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let path = format!("/v1/campaigns/{campaign_id}/codes?limit=10000&after={after}");
            let page: Value = self
                .get(&path, Some(&self.admin()))
                .await
                .json()
                .await
                .unwrap();
            out.extend(page["codes"].as_array().unwrap().iter().cloned());
            match page["next"].as_str() {
                Some(n) => after = n.to_owned(),
                None => return out,
            }
        }
    }

    pub async fn redeem(
        &self,
        user: &str,
        key: &str,
        code: &str,
        order: &str,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let resp = self
            .http
            .post(format!("{}/v1/coupons/redeem", self.base))
            .bearer_auth(self.user(user))
            .header("Idempotency-Key", key)
            .json(&json!({"code": code, "order_id": order}))
            .send()
            .await
            .expect("redeem request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.json().await.unwrap_or(Value::Null);
        (status, body, headers)
    }

    pub async fn active_redemptions(&self, campaign_id: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM redemptions WHERE campaign_id = $1 AND released_at IS NULL",
        )
        .bind(campaign_id)
        .fetch_one(&self.db)
        .await
        .unwrap()
    }
}

/// Assert a problem+json answer with `status` and reason `code`.
#[track_caller]
pub fn assert_problem(status: StatusCode, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status.as_u16(), want_status, "body: {body}");
    assert_eq!(body["code"], want_code, "body: {body}");
    assert_eq!(body["status"], want_status, "body: {body}");
}

/// Free seats of a capped shared campaign as Redis holds them: the listed
/// free-list plus every seat from the `next` counter up to the cap.
pub async fn redis_free_seats(
    r: &mut redis::aio::MultiplexedConnection,
    campaign: &str,
    total: i64,
) -> i64 {
    let k = coupon_node::burst::keys::Keys::new(campaign);
    let (listed, next): (i64, Option<i64>) = redis::pipe()
        .scard(k.free())
        .get(k.next())
        .query_async(r)
        .await
        .unwrap();
    listed + coupon_node::burst::keys::unlisted(Some(total as i32), next)
}
