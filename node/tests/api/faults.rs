//! Faults on the burst path against real processes (issue 3, acceptance 2):
//! Redis flushed or killed mid-burst, a crash between claim and commit,
//! Postgres stopped mid-burst. Each ends by checking in Postgres that no
//! limit was exceeded and that every 201 has its row.

use crate::concurrency::{burst, tally};
use crate::helpers::*;
use coupon_node::burst::keys::Keys;
use coupon_testkit::{postgres::PgOptions, PgServer, RedisServer};
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

type Results = Vec<(StatusCode, Value, bool)>;

/// One answered request, with who asked and with which key.
struct Asked {
    user: String,
    key: String,
    status: StatusCode,
    body: Value,
}

/// Names the results of a burst: result `i` was asked by `who(i)`.
fn asked(results: &Results, who: impl Fn(usize) -> (String, String)) -> Vec<Asked> {
    results
        .iter()
        .enumerate()
        .map(|(i, (status, body, _))| {
            let (user, key) = who(i);
            Asked {
                user,
                key,
                status: *status,
                body: body.clone(),
            }
        })
        .collect()
}

/// Checks every request made on a campaign against Postgres, both ways:
/// - no more active redemptions than `total`, and every 201 has its row;
/// - every row of the campaign was asked for by a request (same user and
///   key) that was acknowledged (201/200) or failed ambiguously (5xx): no
///   redemption lands while its client was told a definitive "no".
async fn check_acknowledged(app: &TestApp, campaign: &str, all: &[Asked], total: i64) {
    let active = app.active_redemptions(campaign).await;
    assert!(
        active <= total,
        "{active} active redemptions exceed the limit {total}"
    );
    for a in all.iter().filter(|a| a.status == StatusCode::CREATED) {
        let id = a.body["redemption_id"].as_str().expect("201 carries an id");
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM redemptions WHERE redemption_id = $1")
                .bind(id)
                .fetch_one(&app.db)
                .await
                .unwrap();
        assert_eq!(
            n, 1,
            "acknowledged redemption {id} is missing from postgres"
        );
    }
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT redemption_id, user_id, idempotency_key FROM redemptions WHERE campaign_id = $1",
    )
    .bind(campaign)
    .fetch_all(&app.db)
    .await
    .unwrap();
    for (id, user, key) in rows {
        let mine: Vec<StatusCode> = all
            .iter()
            .filter(|a| a.user == user && a.key == key)
            .map(|a| a.status)
            .collect();
        assert!(
            mine.iter().any(|s| s.is_success() || s.is_server_error()),
            "row {id} of {user} key {key} exists but its requests were answered {mine:?}"
        );
    }
}

/// Requests served on the Postgres-only path because Redis could not serve
/// them: proof that a Redis fault landed while the burst was running.
async fn fallbacks(app: &TestApp) -> f64 {
    app.metric("coupon_claim_fallback_total").await
}

async fn reconcile(app: &TestApp, campaign: &str) -> Value {
    let r = app
        .post(
            &format!("/v1/campaigns/{campaign}/reconcile"),
            Some(&app.admin()),
            &json!({}),
        )
        .await;
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::OK, "reconcile: {body}");
    body
}

/// Waits (bounded) until the node reports ready again: right after a store
/// restarts it answers 503 until its pool reconnects and its lease renews,
/// which is correct but not what a check after the fault is about. Seen
/// once in a full-suite run: the reconcile after a Postgres restart got 503.
async fn wait_ready(app: &TestApp) {
    for _ in 0..300 {
        if app.get("/readyz", None).await.status() == StatusCode::OK {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the node did not become ready again within 30 s");
}

/// Redis agrees with Postgres: free seats = limit - active, nothing in flight.
async fn assert_redis_agrees(app: &TestApp, redis_url: &str, campaign: &str, total: i64) {
    let report = reconcile(app, campaign).await;
    let again = reconcile(app, campaign).await;
    assert_eq!(
        again["drift"], 0,
        "after reconcile: {again} (first pass: {report})"
    );
    let mut r = redis::Client::open(redis_url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let k = Keys::new(campaign);
    let free = redis_free_seats(&mut r, campaign, total).await;
    let in_flight: i64 = r.zcard(k.claims()).await.unwrap();
    let active = app.active_redemptions(campaign).await;
    assert_eq!(
        (free, in_flight),
        (total - active, 0),
        "redis free seats vs postgres ({active} active)"
    );
}

/// Wait until the burst is really under way: `n` redemptions committed.
async fn when_active(db: sqlx::PgPool, campaign: String, n: i64) {
    for _ in 0..600 {
        let active: i64 =
            sqlx::query_scalar("SELECT count(*) FROM redemptions WHERE campaign_id = $1")
                .bind(&campaign)
                .fetch_one(&db)
                .await
                .unwrap_or(0);
        if active >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the burst never got going");
}

async fn shared_campaign(app: &TestApp, code: &str, total: i64) -> String {
    let c = app
        .campaign(json!({"kind": "shared", "code": code, "total_limit": total}))
        .await;
    c["campaign_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flushall_mid_burst_never_over_redeems_and_reconcile_restores_the_seats() {
    let redis = RedisServer::start_temp().unwrap();
    let app = Arc::new(TestApp::spawn_on(&stores().pg, &redis.url(), |_| {}).await);
    let id = shared_campaign(&app, "FLUSHME", 1000).await;
    let (url, db, cid) = (redis.url(), app.db.clone(), id.clone());
    let flusher = tokio::spawn(async move {
        when_active(db, cid, 200).await;
        let mut r = redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let _: () = redis::cmd("FLUSHALL").query_async(&mut r).await.unwrap();
    });
    let results = burst(
        &app,
        5000,
        |i| format!("a{i}"),
        |i| format!("k{i}"),
        "FLUSHME",
    )
    .await;
    flusher.await.unwrap();
    eprintln!("first burst: {:?}", tally(&results));
    let mut all = asked(&results, |i| (format!("a{i}"), format!("k{i}")));
    check_acknowledged(&app, &id, &all, 1000).await;
    if redis_engine() {
        assert!(
            fallbacks(&app).await > 0.0,
            "the flush landed after the burst: nothing took the fallback path"
        );
    }
    assert_redis_agrees(&app, &redis.url(), &id, 1000).await;
    // The rest of the seats can still be won.
    let more = burst(
        &app,
        3000,
        |i| format!("b{i}"),
        |i| format!("k{i}"),
        "FLUSHME",
    )
    .await;
    all.extend(asked(&more, |i| (format!("b{i}"), format!("k{i}"))));
    check_acknowledged(&app, &id, &all, 1000).await;
    assert_eq!(
        app.active_redemptions(&id).await,
        1000,
        "second burst: {:?}",
        tally(&more)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_redis_mid_burst_falls_back_and_the_node_recovers_without_restart() {
    let mut redis = RedisServer::start_temp().unwrap();
    let app = Arc::new(TestApp::spawn_on(&stores().pg, &redis.url(), |_| {}).await);
    let id = shared_campaign(&app, "KILLREDIS", 1000).await;
    let (pid, db, cid) = (redis.pid().unwrap(), app.db.clone(), id.clone());
    let started = std::time::Instant::now();
    let killer = tokio::spawn(async move {
        when_active(db, cid, 200).await;
        coupon_testkit::procs::signal(pid, libc::SIGKILL);
    });
    let results = burst(
        &app,
        5000,
        |i| format!("a{i}"),
        |i| format!("k{i}"),
        "KILLREDIS",
    )
    .await;
    killer.await.unwrap();
    eprintln!(
        "burst with redis killed: {:?} in {:?}",
        tally(&results),
        started.elapsed()
    );
    let mut all = asked(&results, |i| (format!("a{i}"), format!("k{i}")));
    check_acknowledged(&app, &id, &all, 1000).await;
    if redis_engine() {
        assert!(
            fallbacks(&app).await > 0.0,
            "the kill landed after the burst: nothing took the fallback path"
        );
    }
    redis.restart().unwrap();
    // The node reconnects by itself; the empty Redis is rebuilt on demand.
    let mut ok = false;
    for _ in 0..50 {
        let r = app
            .post(
                &format!("/v1/campaigns/{id}/reconcile"),
                Some(&app.admin()),
                &json!({}),
            )
            .await;
        if r.status() == StatusCode::OK {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ok, "node did not reach the restarted redis");
    eprintln!("reconnected after {:?}", started.elapsed());
    assert_redis_agrees(&app, &redis.url(), &id, 1000).await;
    let more = burst(
        &app,
        3000,
        |i| format!("b{i}"),
        |i| format!("k{i}"),
        "KILLREDIS",
    )
    .await;
    eprintln!(
        "second burst done after {:?}: {:?}",
        started.elapsed(),
        tally(&more)
    );
    all.extend(asked(&more, |i| (format!("b{i}"), format!("k{i}"))));
    check_acknowledged(&app, &id, &all, 1000).await;
    assert_eq!(
        app.active_redemptions(&id).await,
        1000,
        "second burst: {:?}",
        tally(&more)
    );
    let mut r = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ready: bool = r.exists(Keys::new(&id).ready()).await.unwrap();
    assert!(ready, "the burst path is serving from redis again");
}

#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_claim_and_commit_leaks_a_seat_until_the_grace_period_ends() {
    let scenario = fail::FailScenario::setup();
    let app = TestApp::spawn_with(|c| c.burst.reconcile_grace_ms = 2000).await;
    let id = shared_campaign(&app, "CRASHY", 3).await;
    fail::cfg("after_claim_before_commit", "1*return").unwrap();
    let (s, b, _) = app.redeem("u1", "k1", "CRASHY", "o").await;
    assert_problem(s, &b, 503, "unavailable");
    assert_eq!(app.active_redemptions(&id).await, 0);
    let mut r = redis::Client::open(stores().redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let free = redis_free_seats(&mut r, &id, 3).await;
    assert_eq!(free, 2, "the crashed claim holds a seat");
    let early = reconcile(&app, &id).await;
    assert_eq!(
        early["leaks_returned"], 0,
        "not before the grace period: {early}"
    );
    assert_eq!(redis_free_seats(&mut r, &id, 3).await, 2);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let late = reconcile(&app, &id).await;
    assert_eq!(late["leaks_returned"], 1, "{late}");
    assert_eq!(redis_free_seats(&mut r, &id, 3).await, 3);
    // The crashed caller may retry with its key, and all three seats can be won.
    for (u, key) in [("u1", "k1"), ("u2", "k2"), ("u3", "k3")] {
        let (s, b, _) = app.redeem(u, key, "CRASHY", "o").await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    assert_eq!(app.active_redemptions(&id).await, 3);
    scenario.teardown();
}

/// A claim leaked by a crash leaves the user's use counted in Redis; the
/// user's next redeem must not be refused `already_redeemed` on that alone:
/// Postgres, which has no use of theirs, decides.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_use_leaked_by_a_crash_does_not_refuse_the_users_next_redeem() {
    let scenario = fail::FailScenario::setup();
    let app = TestApp::spawn().await;
    let id = shared_campaign(&app, "LEAKUSE", 3).await;
    fail::cfg("after_claim_before_commit", "1*return").unwrap();
    let (s, b, _) = app.redeem("u1", "k1", "LEAKUSE", "o1").await;
    assert_problem(s, &b, 503, "unavailable");
    let (s, b, _) = app.redeem("u1", "k2", "LEAKUSE", "o2").await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // A use really spent is still refused.
    let (s, b, _) = app.redeem("u1", "k3", "LEAKUSE", "o3").await;
    assert_problem(s, &b, 409, "already_redeemed");
    assert_eq!(app.active_redemptions(&id).await, 1);
    scenario.teardown();
}

#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_commit_before_reply_is_replayed_on_retry() {
    let scenario = fail::FailScenario::setup();
    let app = TestApp::spawn().await;
    let id = shared_campaign(&app, "LOSTREPLY", 3).await;
    fail::cfg("after_commit_before_reply", "1*return").unwrap();
    let (s, _, _) = app.redeem("u1", "k1", "LOSTREPLY", "o").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.active_redemptions(&id).await, 1, "the commit happened");
    let (s, b, h) = app.redeem("u1", "k1", "LOSTREPLY", "o").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(h["idempotent-replayed"], "true");
    assert_eq!(
        app.active_redemptions(&id).await,
        1,
        "the retry burned no second use"
    );
    scenario.teardown();
}

/// A caller that hangs up between the claim and the commit (a router's
/// forward timeout) must not cut the redeem short: it finishes, and the
/// retry with the same key replays it instead of `already_redeemed` or a
/// leaked claim.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_caller_hanging_up_mid_redeem_does_not_cut_the_redeem_short() {
    let scenario = fail::FailScenario::setup();
    let app = TestApp::spawn().await;
    let id = shared_campaign(&app, "HANGUP", 3).await;
    // Blocks the redeem for 800 ms right after the Redis claim.
    fail::cfg("after_claim_before_commit", "1*sleep(800)").unwrap();
    let hung_up = app
        .http
        .post(format!("{}/v1/coupons/redeem", app.base))
        .bearer_auth(app.user("h1"))
        .header("Idempotency-Key", "hang-1")
        .timeout(Duration::from_millis(200))
        .json(&json!({"code": "HANGUP", "order_id": "o1"}))
        .send()
        .await;
    assert!(hung_up.is_err(), "the client gave up first: {hung_up:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.active_redemptions(&id).await, 1, "the redeem finished");
    let (s, b, h) = app.redeem("h1", "hang-1", "HANGUP", "o1").await;
    assert_eq!(s, StatusCode::OK, "the retry replays: {b}");
    assert_eq!(h["idempotent-replayed"], "true");
    scenario.teardown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_mid_burst_gives_503s_and_the_claims_back() {
    let mut pg = PgServer::start_temp(PgOptions::default()).unwrap();
    let redis = RedisServer::start_temp().unwrap();
    let app = Arc::new(TestApp::spawn_on(&pg, &redis.url(), |_| {}).await);
    let id = shared_campaign(&app, "PGDOWN", 1000).await;
    let task = {
        let app = app.clone();
        tokio::spawn(async move {
            burst(
                &app,
                2000,
                |i| format!("a{i}"),
                |i| format!("k{i}"),
                "PGDOWN",
            )
            .await
        })
    };
    when_active(app.db.clone(), id.clone(), 100).await;
    pg.stop();
    let results = task.await.unwrap();
    let t = tally(&results);
    eprintln!(
        "burst with postgres stopped: {t:?}; first: {}",
        results[0].1
    );
    assert!(t.get("503 unavailable").copied().unwrap_or(0) > 0, "{t:?}");
    assert!(t.get("201").copied().unwrap_or(0) >= 100, "{t:?}");
    assert!(
        t.keys()
            .all(|k| ["201", "503 unavailable", "410 exhausted"].contains(&k.as_str())),
        "{t:?}"
    );
    pg.restart().unwrap();
    wait_ready(&app).await;
    // The test's own pool reconnects to the restarted server.
    let app2 = TestApp {
        db: sqlx::PgPool::connect(&app.db_url).await.unwrap(),
        ..clone_app(&app)
    };
    let all = asked(&results, |i| (format!("a{i}"), format!("k{i}")));
    check_acknowledged(&app2, &id, &all, 1000).await;
    // The Redis side of the claims only exists on the burst path.
    if !redis_engine() {
        return;
    }
    let mut r = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let k = Keys::new(&id);
    // A redeem whose commit outlived the commit wait answered 503 (outcome
    // unknown) and settles its claim when its task learns the outcome:
    // wait for those, bounded.
    let mut in_flight: i64 = r.zcard(k.claims()).await.unwrap();
    for _ in 0..100 {
        if in_flight == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        in_flight = r.zcard(k.claims()).await.unwrap();
    }
    assert_eq!(in_flight, 0, "every failed claim was given back");
    let free = redis_free_seats(&mut r, &id, 1000).await;
    let active = app2.active_redemptions(&id).await;
    // No seat was lost: every failed claim went back. (A commit that landed
    // while its reply was lost to the shutdown is given back as well, one
    // seat too many, which the reconciler then removes.)
    assert!(
        free + active >= 1000,
        "{free} free + {active} rows < 1000: a claim was not given back"
    );
    let report = reconcile(&app2, &id).await;
    let free = redis_free_seats(&mut r, &id, 1000).await;
    assert_eq!(
        free + active,
        1000,
        "after reconcile redis agrees with postgres: {report}"
    );
}

fn clone_app(app: &TestApp) -> TestApp {
    TestApp {
        base: app.base.clone(),
        http: app.http.clone(),
        issuer: app.issuer.clone(),
        db: app.db.clone(),
        db_url: app.db_url.clone(),
        redis_url: app.redis_url.clone(),
    }
}

/// A node whose Redis died keeps taking traffic (Postgres path), so the
/// Kubernetes readiness probe (`/readyz?scope=traffic`) stays green while the
/// full check names Redis; the periodic reconciler's failures are counted
/// for the alert, and the counter is exported at 0 before the first one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_keeps_the_node_ready_for_traffic_and_counts_reconcile_failures() {
    let redis = RedisServer::start_temp().unwrap();
    let app = TestApp::spawn_on(&stores().pg, &redis.url(), |c| {
        c.burst.reconcile_interval_ms = 200;
    })
    .await;
    let metrics = |app: &TestApp| {
        let req = app.http.get(format!("{}/metrics", app.base));
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let before = metrics(&app).await;
    assert!(
        before.contains("coupon_reconcile_failures_total 0"),
        "alerted counter exported at 0 from the start:\n{before}"
    );
    let id = shared_campaign(&app, "READYREDIS", 10).await;
    let (s, _, _) = app.redeem("r1", "k1", "READYREDIS", "o1").await;
    assert_eq!(s, StatusCode::CREATED);
    coupon_testkit::procs::signal(redis.pid().unwrap(), libc::SIGKILL);

    let full = app.get("/readyz", None).await;
    assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = full.json().await.unwrap();
    assert!(body["failing"].to_string().contains("redis"), "{body}");
    let traffic = app.get("/readyz?scope=traffic", None).await;
    assert_eq!(
        traffic.status(),
        StatusCode::OK,
        "{:?}",
        traffic.text().await
    );
    let bad = app.get("/readyz?scope=everything", None).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    // And it really takes traffic: the Postgres path answers.
    let (s, b, _) = app.redeem("r2", "k2", "READYREDIS", "o2").await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(app.active_redemptions(&id).await, 2);

    let mut counted = false;
    for _ in 0..50 {
        let m = metrics(&app).await;
        if m.lines().any(|l| {
            l.strip_prefix("coupon_reconcile_failures_total ")
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|v| v > 0)
        }) {
            counted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        counted,
        "reconcile failures counted:\n{}",
        metrics(&app).await
    );
}

/// Generated codes refused by the Bloom filter so far (from /metrics).
async fn bloom_rejects(app: &TestApp) -> u64 {
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    metrics
        .lines()
        .filter(|l| l.starts_with("coupon_bloom_rejects_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_job_that_dies_without_retiring_its_lease_stalls_the_bloom_filter_only_until_it_expires(
) {
    let scenario = fail::FailScenario::setup();
    let app = TestApp::spawn().await;
    let c = app.campaign(json!({"kind": "pool", "code": null})).await;
    let id = c["campaign_id"].as_str().unwrap();
    let slot = coupon_core::Slot::new(c["slot"].as_u64().unwrap() as u16).unwrap();
    let probe = |i: usize| {
        let bogus = coupon_core::GeneratedCode::random(slot, &mut rand::thread_rng());
        let app = &app;
        async move {
            let (s, b, _) = app
                .redeem("prober", &format!("k{i}"), bogus.as_str(), "o")
                .await;
            assert_problem(s, &b, 404, "unknown_code");
        }
    };
    // The job ends as if it crashed (or its last Redis call failed) between
    // announcing itself and retiring the announcement.
    fail::cfg("codegen_lease_lost", "return").unwrap();
    app.generate(id, json!({"count": 20})).await;
    // While the announcement stands, "no" is not trusted...
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before = bloom_rejects(&app).await;
    probe(0).await;
    assert_eq!(
        bloom_rejects(&app).await,
        before,
        "trusted during a live job"
    );
    // ...and once it lapses, it is again.
    let started = std::time::Instant::now();
    for i in 1..100 {
        probe(i).await;
        if bloom_rejects(&app).await > before {
            scenario.teardown();
            return;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    panic!(
        "the filter was still untrusted {:?} after the job died",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeder_never_deletes_a_seed_lock_another_seeder_took_over() {
    let app = TestApp::spawn().await;
    let (id, k, mut r) = pool_with_codes(&app, 100000).await;
    let _: () = r.del(k.ready()).await.unwrap();
    // Seeder A: the reconciler rebuilding the campaign (100,000 codes).
    let a = {
        let (http, base, admin, id) = (app.http.clone(), app.base.clone(), app.admin(), id.clone());
        tokio::spawn(async move {
            http.post(format!("{base}/v1/campaigns/{id}/reconcile"))
                .bearer_auth(admin)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    let mut seen = false;
    for _ in 0..2000 {
        if r.exists::<_, bool>(k.seed_lock()).await.unwrap() {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(seen, "seeder A never took the lock");
    // A's lock expired meanwhile and seeder B took it over.
    hold_seed_lock(&mut r, &k, "seeder-b").await;
    assert_eq!(a.await.unwrap(), StatusCode::OK);
    let holder: Option<String> = r.get(k.seed_lock()).await.unwrap();
    assert_eq!(holder.as_deref(), Some("seeder-b"), "A deleted B's lock");
}

/// A code job whose campaign another seeder is rebuilding waits for that
/// seeder to publish and then adds its own batch: the seeder may have paged
/// past the new codes, and would otherwise leave them out of Redis (the
/// job's report would then fail it, with every code in Postgres).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_job_during_another_seeders_rebuild_still_lands_its_codes_in_redis() {
    if !redis_engine() {
        return;
    }
    let app = TestApp::spawn().await;
    let (id, k, mut r) = pool_with_codes(&app, 100).await;
    // Another seeder is mid-rebuild: it holds the lock, `ready` is gone, and
    // it publishes (what it read before the job's codes existed) in 400 ms.
    let _: () = r.del(k.ready()).await.unwrap();
    hold_seed_lock(&mut r, &k, "other-seeder").await;
    let publish = {
        let (mut r, k) = (r.clone(), Keys::new(&id));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            let _: () = r.set(k.ready(), 1).await.unwrap();
            let _: () = r.del(k.seed_lock()).await.unwrap();
        })
    };
    let job = app.generate(&id, json!({"count": 1000})).await;
    publish.await.unwrap();
    let free: i64 = r.scard(k.free()).await.unwrap();
    assert_eq!(free, 1100, "codes missing from redis after {job}");
}

/// A pool campaign with `count` generated codes, its Redis keys and a
/// connection to the shared Redis.
async fn pool_with_codes(
    app: &TestApp,
    count: u64,
) -> (String, Keys, redis::aio::MultiplexedConnection) {
    let c = app.campaign(json!({"kind": "pool", "code": null})).await;
    let id = c["campaign_id"].as_str().unwrap().to_owned();
    app.generate(&id, json!({ "count": count })).await;
    let r = redis::Client::open(stores().redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    (id.clone(), Keys::new(&id), r)
}

/// Another seeder holds the campaign's seed lock (for a minute).
async fn hold_seed_lock(r: &mut redis::aio::MultiplexedConnection, k: &Keys, holder: &str) {
    let _: () = redis::cmd("SET")
        .arg(k.seed_lock())
        .arg(holder)
        .arg("PX")
        .arg(60_000)
        .query_async(r)
        .await
        .unwrap();
}

/// A Postgres that stops answering (every process SIGSTOPped: its sockets
/// stay open, as behind a silent network) costs a validate, and a redeem
/// whose code must be looked up, a 503 within the read limit instead of a
/// request held until the caller or TCP gives up; once it answers again,
/// so do validates (no batch of reads is left stuck in front of them).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_postgres_costs_reads_a_prompt_503_and_they_recover_when_it_resumes() {
    let pg = PgServer::start_temp(PgOptions::default()).unwrap();
    let redis = RedisServer::start_temp().unwrap();
    let app = Arc::new(TestApp::spawn_on(&pg, &redis.url(), |_| {}).await);
    shared_campaign(&app, "PGPAUSE", 100).await;
    let pool = app
        .campaign(json!({"kind": "pool", "code": "PAUSEPOOL"}))
        .await;
    let pool_id = pool["campaign_id"].as_str().unwrap().to_owned();
    app.generate(&pool_id, json!({"count": 1})).await;
    let code = app.export(&pool_id).await[0]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let validate = |user: String| {
        let app = app.clone();
        async move {
            let started = std::time::Instant::now();
            let token = app.user(&user);
            let body = json!({"code": "PGPAUSE"});
            let asked = app.post("/v1/coupons/validate", Some(&token), &body);
            let resp = tokio::time::timeout(Duration::from_secs(15), asked)
                .await
                .expect("a validate answered within 15 s");
            (resp.status(), started.elapsed())
        }
    };
    assert_eq!(validate("before".into()).await.0, StatusCode::OK);

    pg.pause();
    let asked: Vec<_> = (0..50).map(|i| validate(format!("p{i}"))).collect();
    let redeem = {
        let app = app.clone();
        async move {
            let started = std::time::Instant::now();
            let asked = app.redeem("r0", "k-pause", &code, "o-pause");
            let answer = tokio::time::timeout(Duration::from_secs(15), asked).await;
            (answer, started.elapsed())
        }
    };
    let (answers, redeemed) = tokio::join!(futures::future::join_all(asked), redeem);
    pg.resume();
    for (status, took) in &answers {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "after {took:?}");
        assert!(*took < Duration::from_secs(6), "a validate took {took:?}");
    }
    let (status, body, _) = redeemed.0.expect("the redeem answered within 15 s");
    assert_problem(status, &body, 503, "unavailable");
    // Without its own bound the lookup waited for the pool's 5 s acquire
    // timeout (for ever if its connection was mid-query at the pause).
    let took = redeemed.1;
    assert!(
        took < Duration::from_millis(4500),
        "the redeem took {took:?}"
    );

    let resumed = std::time::Instant::now();
    loop {
        let (status, _) = validate(format!("after{}", resumed.elapsed().as_millis())).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            resumed.elapsed() < Duration::from_secs(10),
            "validates still answer {status} 10 s after postgres resumed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
