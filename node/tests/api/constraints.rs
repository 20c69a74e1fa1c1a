//! Postgres enforces every limit of docs/architecture.md §3.1 on its own: these tests
//! write with SQL directly, bypassing the node, and expect refusals.

use crate::helpers::*;
use sqlx::PgPool;

async fn campaign(db: &PgPool, id: &str, kind: &str, total: Option<i32>, per_user: i32) {
    sqlx::query(
        "INSERT INTO campaigns (campaign_id, slot, name, kind, code, discount, total_limit, per_user_limit, \
         starts_at, ends_at, release_on_refund) VALUES ($1, 1, 'c', $2, $3, '{\"type\":\"free_shipping\"}', $4, $5, \
         '2020-01-01Z', '2099-01-01Z', true)",
    )
    .bind(id)
    .bind(kind)
    .bind((kind == "shared").then(|| format!("CODE{id}")))
    .bind(total)
    .bind(per_user)
    .execute(db)
    .await
    .unwrap();
}

struct Row<'a> {
    campaign: &'a str,
    user: &'a str,
    key: &'a str,
    seat: Option<i32>,
    use_no: i32,
    code: Option<&'a str>,
}

async fn insert(db: &PgPool, id: &str, r: Row<'_>) -> Result<(), String> {
    sqlx::query(
        "INSERT INTO redemptions (redemption_id, campaign_id, slot, epoch, user_id, order_id, idempotency_key, \
         request_hash, code, pool_code, seat_no, use_no, discount) \
         VALUES ($1, $2, 1, 1, $3, 'o', $4, 'h', 'X', $5, $6, $7, '{}')",
    )
    .bind(id)
    .bind(r.campaign)
    .bind(r.user)
    .bind(r.key)
    .bind(r.code)
    .bind(r.seat)
    .bind(r.use_no)
    .execute(db)
    .await
    .map(|_| ())
    .map_err(|e| e.as_database_error().and_then(|d| d.constraint()).unwrap_or("?").to_owned())
}

fn shared<'a>(campaign: &'a str, user: &'a str, key: &'a str, seat: i32, use_no: i32) -> Row<'a> {
    Row {
        campaign,
        user,
        key,
        seat: Some(seat),
        use_no,
        code: None,
    }
}

async fn release(db: &PgPool, id: &str) {
    sqlx::query("UPDATE redemptions SET released_at = now() WHERE redemption_id = $1")
        .bind(id)
        .execute(db)
        .await
        .unwrap();
}

#[tokio::test]
async fn postgres_refuses_a_redemption_beyond_total_limit() {
    let app = TestApp::spawn().await;
    campaign(&app.db, "c1", "shared", Some(2), 1).await;
    insert(&app.db, "r1", shared("c1", "u1", "k", 1, 1))
        .await
        .unwrap();
    insert(&app.db, "r2", shared("c1", "u2", "k", 2, 1))
        .await
        .unwrap();
    assert_eq!(
        insert(&app.db, "r3", shared("c1", "u3", "k", 3, 1)).await,
        Err("redemptions_seat_within_total_limit".into())
    );
    assert_eq!(
        insert(&app.db, "r4", shared("c1", "u4", "k", 1, 1)).await,
        Err("redemptions_seat_once".into())
    );
    let no_seat = Row {
        seat: None,
        ..shared("c1", "u5", "k", 0, 1)
    };
    assert_eq!(
        insert(&app.db, "r5", no_seat).await,
        Err("redemptions_seat_within_total_limit".into())
    );
    assert_eq!(app.active_redemptions("c1").await, 2);
    // A released seat is free again.
    release(&app.db, "r1").await;
    insert(&app.db, "r6", shared("c1", "u6", "k", 1, 1))
        .await
        .unwrap();
    assert_eq!(app.active_redemptions("c1").await, 2);
}

#[tokio::test]
async fn postgres_refuses_a_pool_code_used_twice() {
    let app = TestApp::spawn().await;
    campaign(&app.db, "p1", "pool", None, 5).await;
    sqlx::query("INSERT INTO codes (code, campaign_id, seq) VALUES ('C1', 'p1', 1)")
        .execute(&app.db)
        .await
        .unwrap();
    let row = |user, key| Row {
        campaign: "p1",
        user,
        key,
        seat: None,
        use_no: 1,
        code: Some("C1"),
    };
    insert(&app.db, "r1", row("u1", "k")).await.unwrap();
    assert_eq!(
        insert(&app.db, "r2", row("u2", "k")).await,
        Err("redemptions_code_once".into())
    );
    // A code of another campaign, or none at all, is refused too. (A code
    // both foreign and in use names `redemptions_code_once`: the limits
    // are checked once the statement's rows are in.)
    sqlx::query("INSERT INTO codes (code, campaign_id, seq) VALUES ('C2', 'p1', 2)")
        .execute(&app.db)
        .await
        .unwrap();
    campaign(&app.db, "p2", "pool", None, 5).await;
    let foreign = Row {
        campaign: "p2",
        code: Some("C2"),
        ..row("u3", "k")
    };
    assert_eq!(
        insert(&app.db, "r3", foreign).await,
        Err("redemptions_code_matches_kind".into())
    );
    // A released code can be used again.
    release(&app.db, "r1").await;
    insert(&app.db, "r4", row("u2", "k")).await.unwrap();
}

#[tokio::test]
async fn postgres_refuses_a_user_beyond_a_per_user_limit_of_one() {
    let app = TestApp::spawn().await;
    campaign(&app.db, "c1", "shared", Some(100), 1).await;
    insert(&app.db, "r1", shared("c1", "u1", "k1", 1, 1))
        .await
        .unwrap();
    assert_eq!(
        insert(&app.db, "r2", shared("c1", "u1", "k2", 2, 1)).await,
        Err("redemptions_user_use_once".into())
    );
    assert_eq!(
        insert(&app.db, "r3", shared("c1", "u1", "k3", 3, 2)).await,
        Err("redemptions_use_within_per_user_limit".into())
    );
    release(&app.db, "r1").await;
    insert(&app.db, "r4", shared("c1", "u1", "k4", 4, 1))
        .await
        .unwrap();
}

#[tokio::test]
async fn postgres_refuses_a_user_beyond_a_per_user_limit_of_three() {
    let app = TestApp::spawn().await;
    campaign(&app.db, "c3", "shared", None, 3).await;
    let row = |key, use_no| Row {
        campaign: "c3",
        user: "u1",
        key,
        seat: None,
        use_no,
        code: None,
    };
    for (i, key) in ["k1", "k2", "k3"].into_iter().enumerate() {
        insert(&app.db, &format!("r{i}"), row(key, i as i32 + 1))
            .await
            .unwrap();
    }
    assert_eq!(
        insert(&app.db, "r4", row("k4", 4)).await,
        Err("redemptions_use_within_per_user_limit".into())
    );
    assert_eq!(
        insert(&app.db, "r5", row("k5", 2)).await,
        Err("redemptions_user_use_once".into())
    );
    assert_eq!(app.active_redemptions("c3").await, 3);
    release(&app.db, "r1").await;
    insert(&app.db, "r6", row("k6", 2)).await.unwrap();
}

#[tokio::test]
async fn postgres_refuses_two_redemptions_under_one_callers_idempotency_key() {
    let app = TestApp::spawn().await;
    campaign(&app.db, "c1", "shared", None, 5).await;
    campaign(&app.db, "c2", "shared", None, 5).await;
    let row = |campaign, user, use_no| Row {
        campaign,
        user,
        key: "same-key",
        seat: None,
        use_no,
        code: None,
    };
    insert(&app.db, "r1", row("c1", "u1", 1)).await.unwrap();
    assert_eq!(
        insert(&app.db, "r2", row("c1", "u1", 2)).await,
        Err("redemptions_idempotency_once".into())
    );
    // Keys are scoped to the caller and the campaign: another campaign is
    // another scope (as it is when it lives in another region).
    insert(&app.db, "r3", row("c2", "u1", 1)).await.unwrap();
    // Released or not, the key stays spent.
    release(&app.db, "r1").await;
    assert_eq!(
        insert(&app.db, "r4", row("c1", "u1", 1)).await,
        Err("redemptions_idempotency_once".into())
    );
    // Keys are scoped to the caller.
    insert(&app.db, "r5", row("c1", "u2", 1)).await.unwrap();
}

#[tokio::test]
async fn postgres_refuses_unreleasing_and_changing_limits() {
    let app = TestApp::spawn().await;
    campaign(&app.db, "c1", "shared", Some(1), 1).await;
    insert(&app.db, "r1", shared("c1", "u1", "k", 1, 1))
        .await
        .unwrap();
    release(&app.db, "r1").await;
    let err = sqlx::query("UPDATE redemptions SET released_at = NULL WHERE redemption_id = 'r1'")
        .execute(&app.db)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().unwrap().constraint(),
        Some("redemptions_release_final")
    );
    let err = sqlx::query("UPDATE campaigns SET total_limit = 5 WHERE campaign_id = 'c1'")
        .execute(&app.db)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().unwrap().constraint(),
        Some("campaigns_limits_immutable")
    );
}

async fn constraint_of(db: &PgPool, sql: &str) -> Option<String> {
    constraint_of_bound(sqlx::query(sql), db).await
}

#[tokio::test]
async fn postgres_refuses_any_change_to_a_redemption_but_its_release() {
    let app = TestApp::spawn().await;
    campaign(&app.db, "c1", "shared", Some(2), 1).await;
    campaign(&app.db, "c2", "shared", Some(2), 1).await;
    campaign(&app.db, "p1", "pool", None, 1).await;
    sqlx::query(
        "INSERT INTO codes (code, campaign_id, seq) VALUES ('C1', 'p1', 1), ('C2', 'p1', 2)",
    )
    .execute(&app.db)
    .await
    .unwrap();
    insert(&app.db, "r1", shared("c1", "u1", "k", 1, 1))
        .await
        .unwrap();
    let pool = Row {
        campaign: "p1",
        user: "u1",
        key: "kp",
        seat: None,
        use_no: 1,
        code: Some("C1"),
    };
    insert(&app.db, "rp", pool).await.unwrap();
    // Each of these would slip past a limit: a seat beyond the cap, a use
    // beyond the per-user limit, a move to another campaign, a second code.
    for set in [
        "seat_no = 999",
        "use_no = 7",
        "campaign_id = 'c2'",
        "user_id = 'u2'",
        "idempotency_key = 'other'",
        "order_id = 'changed'",
        "discount = '{\"type\":\"percent\",\"percent\":100}'",
    ] {
        assert_eq!(
            constraint_of(
                &app.db,
                &format!("UPDATE redemptions SET {set} WHERE redemption_id = 'r1'")
            )
            .await,
            Some("redemptions_immutable".to_owned()),
            "{set}"
        );
    }
    assert_eq!(
        constraint_of(
            &app.db,
            "UPDATE redemptions SET pool_code = 'C2' WHERE redemption_id = 'rp'"
        )
        .await,
        Some("redemptions_immutable".to_owned())
    );
    // The release is the one change allowed, once.
    release(&app.db, "r1").await;
    assert_eq!(
        constraint_of(
            &app.db,
            "UPDATE redemptions SET release_reason = 'other' WHERE redemption_id = 'r1'"
        )
        .await,
        Some("redemptions_immutable".to_owned())
    );
    assert_eq!(
        constraint_of(&app.db, "UPDATE redemptions SET released_at = now() - interval '1 day' WHERE redemption_id = 'r1'").await,
        Some("redemptions_immutable".to_owned())
    );
    // The same holds for the rows the limits rest on.
    assert_eq!(
        constraint_of(
            &app.db,
            "UPDATE codes SET campaign_id = 'c2' WHERE code = 'C2'"
        )
        .await,
        Some("codes_immutable".to_owned())
    );
    assert_eq!(
        constraint_of(
            &app.db,
            "UPDATE codes SET intended_user = 'u9' WHERE code = 'C2'"
        )
        .await,
        Some("codes_immutable".to_owned())
    );
    sqlx::query("UPDATE codes SET used = true WHERE code = 'C2'")
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(
        constraint_of(
            &app.db,
            "UPDATE campaigns SET slot = 2 WHERE campaign_id = 'c1'"
        )
        .await,
        Some("campaigns_identity_immutable".to_owned())
    );
    assert_eq!(
        constraint_of(
            &app.db,
            "UPDATE campaigns SET code = 'NEWCODE' WHERE campaign_id = 'c1'"
        )
        .await,
        Some("campaigns_identity_immutable".to_owned())
    );
    sqlx::query(
        "INSERT INTO outbox (event_id, type, campaign_id, data) VALUES ('e1', 't', 'c1', '{}')",
    )
    .execute(&app.db)
    .await
    .unwrap();
    assert_eq!(
        constraint_of(
            &app.db,
            "UPDATE outbox SET data = '{\"forged\":true}' WHERE event_id = 'e1'"
        )
        .await,
        Some("outbox_append_only".to_owned())
    );
}

/// (campaign, seat, use, pool code) of a row to insert.
type NewRow = (&'static str, Option<i32>, i32, Option<&'static str>);

/// Rows inserted several to a statement (as a group of winners is): one
/// row in the middle that breaks a limit refuses the whole statement with
/// that limit's constraint, and nothing of it is stored.
#[tokio::test]
async fn postgres_refuses_a_multi_row_insert_with_one_row_beyond_a_limit() {
    let app = TestApp::spawn().await;
    campaign(&app.db, "m1", "shared", Some(5), 1).await;
    campaign(&app.db, "m2", "pool", None, 1).await;
    sqlx::query("INSERT INTO codes (code, campaign_id, seq) VALUES ('MC1', 'm2', 1)")
        .execute(&app.db)
        .await
        .unwrap();
    // (campaign, user, seat, use, pool code) of three rows; the middle one
    // is the bad one.
    let cases: [(&str, [NewRow; 3], &str); 5] = [
        (
            "a seat beyond the cap",
            [
                ("m1", Some(1), 1, None),
                ("m1", Some(6), 1, None),
                ("m1", Some(2), 1, None),
            ],
            "redemptions_seat_within_total_limit",
        ),
        (
            "a use beyond the per-user limit",
            [
                ("m1", Some(1), 1, None),
                ("m1", Some(3), 2, None),
                ("m1", Some(2), 1, None),
            ],
            "redemptions_use_within_per_user_limit",
        ),
        (
            "a pool code on a shared campaign",
            [
                ("m1", Some(1), 1, None),
                ("m1", Some(3), 1, Some("MC1")),
                ("m1", Some(2), 1, None),
            ],
            "redemptions_code_matches_kind",
        ),
        (
            "another campaign's code",
            [
                ("m2", None, 1, Some("MC1")),
                ("m2", None, 1, Some("NOPE")),
                ("m1", Some(2), 1, None),
            ],
            "redemptions_code_matches_kind",
        ),
        (
            "no such campaign",
            [
                ("m1", Some(1), 1, None),
                ("gone", Some(3), 1, None),
                ("m1", Some(2), 1, None),
            ],
            "redemptions_campaign_exists",
        ),
    ];
    for (what, rows, constraint) in cases {
        let n = rows.len();
        let ids: Vec<String> = (0..n).map(|i| format!("mr-{i}")).collect();
        let campaigns: Vec<&str> = rows.iter().map(|r| r.0).collect();
        let users: Vec<String> = (0..n).map(|i| format!("mu-{i}")).collect();
        let seats: Vec<Option<i32>> = rows.iter().map(|r| r.1).collect();
        let uses: Vec<i32> = rows.iter().map(|r| r.2).collect();
        let codes: Vec<Option<&str>> = rows.iter().map(|r| r.3).collect();
        let got = constraint_of_bound(
            sqlx::query(
                "INSERT INTO redemptions (redemption_id, campaign_id, slot, epoch, user_id, order_id, \
                 idempotency_key, request_hash, code, pool_code, seat_no, use_no, discount) \
                 SELECT q.i, q.c, 1, 1, q.u, 'o', 'k', 'h', 'X', q.p, q.s, q.n, '{}' \
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[]) \
                   AS q(i, c, u, p, s, n)",
            )
            .bind(&ids)
            .bind(&campaigns)
            .bind(&users)
            .bind(&codes)
            .bind(&seats)
            .bind(&uses),
            &app.db,
        )
        .await;
        assert_eq!(got.as_deref(), Some(constraint), "{what}");
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM redemptions")
            .fetch_one(&app.db)
            .await
            .unwrap();
        assert_eq!(stored, 0, "{what}: part of the statement was stored");
    }
}

async fn constraint_of_bound(
    q: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    db: &PgPool,
) -> Option<String> {
    q.execute(db)
        .await
        .err()
        .and_then(|e| e.as_database_error()?.constraint().map(str::to_owned))
}
