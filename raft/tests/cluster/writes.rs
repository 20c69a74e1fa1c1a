//! Write helpers: map changes retried with the same request id until acknowledged.

use std::time::Duration;

use coupon_raft::client::WriteOutcome;

use crate::helpers::Cluster;

/// Slot the bump writes move back and forth (owned by `us` after `init_map`).
pub const BUMP_SLOT: u32 = 0;

impl Cluster {
    /// Runs `op` against member `via` until it succeeds (same request id on every retry).
    pub async fn write_retrying(&self, via: u64, begin: bool, request_id: &str) -> WriteOutcome {
        let admin = self.admin(via);
        self.eventually(
            &format!("write {request_id} acknowledged"),
            Duration::from_secs(20),
            || {
                let admin = admin.clone();
                async move {
                    let res = if begin {
                        admin.begin_move(request_id, BUMP_SLOT, "eu").await
                    } else {
                        admin.abort_move(request_id, BUMP_SLOT).await
                    };
                    res.ok()
                }
            },
        )
        .await
    }

    /// `pairs` begin+abort pairs through `via` (2 versions each); returns the last version.
    pub async fn bump(&self, via: u64, tag: &str, pairs: u32) -> u64 {
        let mut version = 0;
        for i in 0..pairs {
            self.write_retrying(via, true, &format!("{tag}-b{i}")).await;
            version = self
                .write_retrying(via, false, &format!("{tag}-a{i}"))
                .await
                .version;
        }
        version
    }
}
