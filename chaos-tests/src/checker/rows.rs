//! What every region's Postgres holds: redemptions, campaign limits and
//! active slots, read once at the end of a scenario.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row as _};
use std::collections::{BTreeMap, HashMap};

/// One redemption row as stored in one region.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub campaign: String,
    pub slot: i32,
    pub epoch: i64,
    pub user: String,
    pub order: String,
    pub key: String,
    pub code: String,
    pub pool_code: Option<String>,
    pub seat_no: Option<i32>,
    pub use_no: i32,
    pub discount: String,
    pub redeemed_at: DateTime<Utc>,
    pub active: bool,
}

impl Row {
    /// A copy made by a move is identical in everything a redemption can
    /// never change (only the release columns may differ later).
    pub fn same_redemption(&self, other: &Row) -> bool {
        Row {
            active: other.active,
            ..self.clone()
        } == *other
    }
}

/// Campaign limits as stored: (total_limit, per_user_limit).
pub type Limits = (Option<i32>, i32);

#[derive(Debug, Default)]
pub struct Stores {
    /// region → redemption id → row.
    pub rows: BTreeMap<String, HashMap<String, Row>>,
    /// campaign → limits, from whichever region holds the campaign.
    pub limits: HashMap<String, Limits>,
    /// slot → regions where it is active at the end.
    pub active_slots: HashMap<i32, Vec<String>>,
}

pub async fn read(db_urls: &BTreeMap<String, String>) -> Stores {
    let mut s = Stores::default();
    for (region, url) in db_urls {
        let db = PgPool::connect(url).await.expect("checker connects");
        let rows = sqlx::query(
            "SELECT redemption_id, campaign_id, slot, epoch, user_id, order_id, idempotency_key, \
             code, pool_code, seat_no, use_no, discount::text, redeemed_at, released_at IS NULL \
             FROM redemptions",
        )
        .fetch_all(&db)
        .await
        .expect("read redemptions");
        let mut m = HashMap::new();
        for r in rows {
            m.insert(
                r.get::<String, _>(0),
                Row {
                    campaign: r.get(1),
                    slot: r.get(2),
                    epoch: r.get(3),
                    user: r.get(4),
                    order: r.get(5),
                    key: r.get(6),
                    code: r.get(7),
                    pool_code: r.get(8),
                    seat_no: r.get(9),
                    use_no: r.get(10),
                    discount: r.get(11),
                    redeemed_at: r.get(12),
                    active: r.get(13),
                },
            );
        }
        s.rows.insert(region.clone(), m);
        for r in sqlx::query("SELECT campaign_id, total_limit, per_user_limit FROM campaigns")
            .fetch_all(&db)
            .await
            .expect("campaigns")
        {
            s.limits.insert(r.get(0), (r.get(1), r.get(2)));
        }
        for r in sqlx::query("SELECT slot FROM slot_ownership WHERE state = 'active'")
            .fetch_all(&db)
            .await
            .expect("slots")
        {
            s.active_slots
                .entry(r.get(0))
                .or_default()
                .push(region.clone());
        }
        db.close().await;
    }
    s
}
