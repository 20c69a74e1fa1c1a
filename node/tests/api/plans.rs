//! Queries every burst runs, whose plans must not read a whole campaign:
//! each member or ask is one probe of an index. Postgres chooses a plan by
//! its statistics, and at a launch those lag (the table was analyzed when
//! the campaign was nearly empty) or the table is still small enough that
//! reading it looks cheaper; either way a read that grows with the
//! campaign then runs once per batch or group. The plans are checked with
//! `EXPLAIN` over 1,000 redemptions, a 1,000-seat launch.

use crate::helpers::*;
use serde_json::json;
use sqlx::Row;

/// A shared campaign with `n` redemptions of users `u1..un`, keys `k1..kn`,
/// written straight to the table; `analyze_first` refreshes the statistics
/// before the rows arrive (as at a launch), otherwise after. With `seats`
/// the campaign has `n` seats and redemption `g` holds seat `g`.
async fn campaign_with_rows(
    app: &TestApp,
    code: &str,
    n: i32,
    analyze_first: bool,
    seats: bool,
) -> String {
    let total_limit = seats.then_some(n);
    let c = app
        .campaign(json!({"kind": "shared", "code": code, "total_limit": total_limit}))
        .await;
    let id = c["campaign_id"].as_str().unwrap().to_owned();
    let slot = c["slot"].as_i64().unwrap() as i32;
    let analyze = || async {
        sqlx::query("ANALYZE redemptions")
            .execute(&app.db)
            .await
            .unwrap();
    };
    if analyze_first {
        // Autovacuum must not refresh them behind the test's back.
        sqlx::query("ALTER TABLE redemptions SET (autovacuum_enabled = off)")
            .execute(&app.db)
            .await
            .unwrap();
        analyze().await;
    }
    sqlx::query(
        "INSERT INTO redemptions (redemption_id, campaign_id, slot, epoch, user_id, order_id, \
         idempotency_key, request_hash, code, seat_no, use_no, discount) \
         SELECT 'plan-' || g, $1, $2, 1, 'u' || g, 'o', 'k' || g, 'h', $3, \
                CASE WHEN $5 THEN g END, 1, \
                '{\"type\": \"percent\", \"value\": 10}'::jsonb \
         FROM generate_series(1, $4) g",
    )
    .bind(&id)
    .bind(slot)
    .bind(code)
    .bind(n)
    .bind(seats)
    .execute(&app.db)
    .await
    .expect("insert redemptions");
    if !analyze_first {
        analyze().await;
    }
    id
}

/// The group commit's read, for 100 members: the key check must probe the
/// key's index per member, not hash every redemption of the campaign once
/// (what an `EXISTS` became with statistics from before the launch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_read_probes_each_member_by_index() {
    let app = TestApp::spawn().await;
    let id = campaign_with_rows(&app, "GROUPPLAN", 1000, true, false).await;
    let n = 100;
    let locks: Vec<i64> = (0..n).collect();
    let users: Vec<String> = (0..n).map(|i| format!("u{}", i * 7)).collect();
    let keys: Vec<String> = (0..n).map(|i| format!("k{}", i * 7)).collect();
    let plan: Vec<String> = sqlx::query_scalar(&format!(
        "EXPLAIN {}",
        coupon_node::redeem::group_commit::SETTLE_READ
    ))
    .bind(&id)
    .bind(1i32)
    .bind(&locks)
    .bind(&users)
    .bind(&keys)
    .fetch_all(&app.db)
    .await
    .expect("explain the group read");
    let plan = plan.join("\n");
    // A scan on the campaign alone (the parameter shows inlined) reads all
    // of its redemptions; a probe names the user and the key too.
    let whole_campaign = plan.lines().any(|l| {
        (l.contains("Cond: (campaign_id =") && !l.contains(" AND "))
            || l.contains("Seq Scan on redemptions")
    });
    assert!(
        !whole_campaign,
        "the group read scans the whole campaign instead of probing each member:\n{plan}"
    );
}

/// Every refusal on the burst path asks the batched replay lookup: each
/// ask must be one probe of the key's unique index. Written as a plain
/// join, Postgres hashed the batch and read all of `redemptions` for every
/// batch while the table was small (a Seq Scan here at 1,000 rows, a
/// 1,000-seat launch: 0.35 ms a batch against 0.09 ms for the probes; at
/// 5,000 rows it chose the index by itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batched_replay_lookup_probes_the_index() {
    let app = TestApp::spawn().await;
    let id = campaign_with_rows(&app, "PLANCHECK", 1000, false, false).await;
    let id = id.as_str();
    let n = 20;
    let campaigns = vec![id.to_owned(); n];
    let users: Vec<String> = (0..n).map(|i| format!("u{}", i * 7)).collect();
    let keys: Vec<String> = (0..n).map(|i| format!("k{}", i * 7)).collect();
    // The lookup's own text, run two ways.
    let db = &app.db;
    let run = |wrap: &str| {
        let sql = wrap.replace("{}", coupon_node::redeem::replay_batch::lookup_sql());
        let (campaigns, users, keys) = (&campaigns, &users, &keys);
        async move {
            sqlx::query(&sql)
                .bind(campaigns)
                .bind(users)
                .bind(keys)
                .fetch_all(db)
                .await
                .expect("run the lookup")
        }
    };
    let plan: Vec<String> = run("EXPLAIN {}")
        .await
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    let plan = plan.join("\n");
    assert!(
        plan.contains("Index Scan") && !plan.contains("Seq Scan on redemptions"),
        "the replay lookup reads the table instead of probing the index:\n{plan}"
    );
    // And it finds what it probes (u0/k0 is not there; u7/k7 is).
    let found: Vec<i64> = run("SELECT ask FROM ({}) x ORDER BY ask")
        .await
        .iter()
        .map(|r| r.get::<i64, _>(0))
        .collect();
    assert_eq!(found, (2..=n as i64).collect::<Vec<_>>());
}

/// The Postgres-only engine's seat probe over a full 1,000-seat campaign,
/// with statistics from before its launch: it must read the campaign's
/// seats once, never once per seat tried (a nested loop or a subplan per
/// seat, which Postgres ran over every redemption of the campaign for each
/// seat when the probe was `generate_series` and `NOT EXISTS`). And it
/// finds a free seat of a range, skipping one a racer has locked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seat_probe_reads_the_campaign_once_whatever_the_statistics() {
    let app = TestApp::spawn().await;
    let n = 1000;
    let id = campaign_with_rows(&app, "SEATPLAN", n, true, true).await;
    let sql = coupon_node::redeem::pg::FREE_SEAT;
    let seat_in = |from: i32, to: i32| {
        sqlx::query_scalar::<_, i32>(sql)
            .bind(&id)
            .bind(from)
            .bind(to)
    };
    // Run on a full campaign, so every gap is looked for.
    let plan: serde_json::Value =
        sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, FORMAT JSON) {sql}"))
            .bind(&id)
            .bind(1i32)
            .bind(n)
            .fetch_one(&app.db)
            .await
            .expect("explain the seat probe");
    let mut found = Vec::new();
    scans_of_redemptions(&plan[0]["Plan"], &mut found);
    let scans: Vec<u64> = found
        .iter()
        .map(|scan| scan["Actual Loops"].as_u64().unwrap_or(u64::MAX))
        .collect();
    assert!(
        !scans.is_empty() && scans.iter().all(|&loops| loops <= 1),
        "the seat probe reads the campaign's redemptions more than once (loops {scans:?}):\n{plan:#}"
    );
    // Full: nothing. A seat given back is found, and the range is kept on
    // both sides.
    let db = &app.db;
    assert_eq!(seat_in(1, n).fetch_optional(db).await.unwrap(), None);
    sqlx::query(
        "UPDATE redemptions SET released_at = now() \
         WHERE campaign_id = $1 AND seat_no IN (1, 700, 701)",
    )
    .bind(&id)
    .execute(db)
    .await
    .unwrap();
    let found = |from, to| async move { seat_in(from, to).fetch_optional(db).await.unwrap() };
    assert_eq!(found(1, n).await, Some(1));
    assert_eq!(found(2, n).await, Some(700));
    assert_eq!(found(701, n).await, Some(701));
    assert_eq!(found(702, n).await, None);
    assert_eq!(found(650, 699).await, None);
    // A racer's pick holds its seat until its transaction ends: the next
    // pick skips it.
    let mut racer = app.db.begin().await.unwrap();
    assert_eq!(
        seat_in(2, n).fetch_optional(&mut *racer).await.unwrap(),
        Some(700)
    );
    assert_eq!(found(2, n).await, Some(701));
    racer.rollback().await.unwrap();
    assert_eq!(found(2, n).await, Some(700));
}

/// Every scan of `redemptions` in an `EXPLAIN (ANALYZE, FORMAT JSON)` plan.
fn scans_of_redemptions<'a>(node: &'a serde_json::Value, scans: &mut Vec<&'a serde_json::Value>) {
    if node["Relation Name"] == "redemptions" {
        scans.push(node);
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        scans_of_redemptions(child, scans);
    }
}

/// The point reads of a request (validate's count of the user's uses, the
/// single path's free use number, its check of a seat after a lost race,
/// the lookup of a key), run on a 1,000-seat campaign with statistics from
/// before its launch: each reads a few rows of `redemptions`, never the
/// campaign's. Postgres takes every index that starts with `campaign_id`
/// for "one row" then, and chose one that cannot find a seat for the
/// seat check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_reads_read_a_few_rows_whatever_the_statistics() {
    let app = TestApp::spawn().await;
    let id = campaign_with_rows(&app, "POINTPLAN", 1000, true, true).await;
    let explain = |sql: &str| format!("EXPLAIN (ANALYZE, FORMAT JSON) {sql}");
    let (uses, free_use, by_key, seat) = (
        explain(coupon_node::redeem::uses_batch::USES_OF_USERS),
        explain(coupon_node::redeem::pg::FREE_USE),
        explain(coupon_node::store::redemptions::by_key_sql()),
        explain(coupon_node::redeem::pg::SEAT_HELD),
    );
    let by_user = |sql| {
        sqlx::query_scalar::<_, serde_json::Value>(sql)
            .bind(&id)
            .bind("u7")
    };
    let db = &app.db;
    let plans = [
        (
            "validate's count, three asks",
            sqlx::query_scalar::<_, serde_json::Value>(&uses)
                .bind(vec![id.clone(); 3])
                .bind(vec!["u7", "u8", "nobody"])
                .fetch_one(db)
                .await,
        ),
        (
            "the free use number",
            by_user(&free_use).bind(1i32).fetch_one(db).await,
        ),
        (
            "the key's redemption",
            by_user(&by_key).bind("k7").fetch_one(db).await,
        ),
        (
            "the seat check",
            sqlx::query_scalar::<_, serde_json::Value>(&seat)
                .bind(&id)
                .bind(700i32)
                .fetch_one(db)
                .await,
        ),
    ];
    for (what, plan) in plans {
        let plan = plan.expect("explain");
        let read = rows_read_from_redemptions(&plan[0]["Plan"]);
        assert!(
            read <= 5,
            "{what} read {read} rows of redemptions:\n{plan:#}"
        );
    }
    // The seat check answers for the seat asked, not one above it.
    let held = |seat: i32| {
        sqlx::query_scalar::<_, bool>(coupon_node::redeem::pg::SEAT_HELD)
            .bind(&id)
            .bind(seat)
            .fetch_one(&app.db)
    };
    assert!(held(700).await.unwrap());
    sqlx::query(
        "UPDATE redemptions SET released_at = now() WHERE campaign_id = $1 AND seat_no = 700",
    )
    .bind(&id)
    .execute(&app.db)
    .await
    .unwrap();
    assert!(!held(700).await.unwrap());
    assert!(held(701).await.unwrap());
    assert!(!held(1001).await.unwrap());
}

/// Rows a plan's scans of `redemptions` returned or filtered out, over
/// all of their loops.
fn rows_read_from_redemptions(plan: &serde_json::Value) -> u64 {
    let mut scans = Vec::new();
    scans_of_redemptions(plan, &mut scans);
    scans
        .iter()
        .map(|scan| {
            let n = |k: &str| scan[k].as_u64().unwrap_or(0);
            (n("Actual Rows") + n("Rows Removed by Filter") + n("Rows Removed by Index Recheck"))
                * n("Actual Loops").max(1)
        })
        .sum()
}
