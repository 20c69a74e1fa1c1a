//! In-process campaign cache (docs/architecture.md §4 step 4): a short TTL bounds how
//! long another node's pause takes to be seen; this node's own writes
//! invalidate at once.

use crate::domain::campaign::Campaign;
use crate::error::ApiResult;
use crate::store::campaigns;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Entries kept before the cache is cleared wholesale (bounded memory).
const MAX_ENTRIES: usize = 100_000;

pub struct CampaignCache {
    ttl: Duration,
    by_id: RwLock<HashMap<String, (Instant, Arc<Campaign>)>>,
    /// Vanity/claim code → campaign id.
    by_code: RwLock<HashMap<String, (Instant, String)>>,
}

impl CampaignCache {
    pub fn new(ttl: Duration) -> CampaignCache {
        CampaignCache {
            ttl,
            by_id: RwLock::default(),
            by_code: RwLock::default(),
        }
    }

    pub async fn by_id(&self, db: &PgPool, id: &str) -> ApiResult<Option<Arc<Campaign>>> {
        if let Some((at, c)) = self.by_id.read().expect("cache lock").get(id) {
            if at.elapsed() < self.ttl {
                return Ok(Some(c.clone()));
            }
        }
        let Some(c) = campaigns::by_id(db, id).await? else {
            return Ok(None);
        };
        Ok(Some(self.put(c)))
    }

    pub async fn by_code(&self, db: &PgPool, code: &str) -> ApiResult<Option<Arc<Campaign>>> {
        let hit = self.by_code.read().expect("cache lock").get(code).cloned();
        if let Some((at, id)) = hit {
            if at.elapsed() < self.ttl {
                return self.by_id(db, &id).await;
            }
        }
        let Some(c) = campaigns::by_code(db, code).await? else {
            return Ok(None);
        };
        let mut map = self.by_code.write().expect("cache lock");
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(code.to_owned(), (Instant::now(), c.campaign_id.clone()));
        drop(map);
        Ok(Some(self.put(c)))
    }

    fn put(&self, c: Campaign) -> Arc<Campaign> {
        let c = Arc::new(c);
        let mut map = self.by_id.write().expect("cache lock");
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(c.campaign_id.clone(), (Instant::now(), c.clone()));
        c
    }

    pub fn forget(&self, id: &str) {
        self.by_id.write().expect("cache lock").remove(id);
    }

    /// Drops every campaign of `slot` (its owner changed).
    pub fn forget_slot(&self, slot: u16) {
        let of_slot =
            |id: &str| coupon_core::CampaignId::parse(id).is_ok_and(|c| c.slot().get() == slot);
        self.by_id
            .write()
            .expect("cache lock")
            .retain(|id, _| !of_slot(id));
        self.by_code
            .write()
            .expect("cache lock")
            .retain(|_, (_, id)| !of_slot(id));
    }
}
