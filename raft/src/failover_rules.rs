//! Apply rules of region leases and takeovers (docs/failover.md). Pure: the
//! *timing* judgement (has the lease lapsed?) is made by the controller on
//! the leader's monotonic clock; the state machine only checks that nothing
//! changed since that judgement (the lease sequence it names).

use crate::command::RejectCode;
use crate::model::{FailoverRecord, FailoverState, Lease, RegionId, SlotState, Standby};
use crate::state_machine::{reject, CommandResult, MapState, Rejection};

impl MapState {
    pub(crate) fn renew_lease(
        &mut self,
        region: &RegionId,
        timeline: u64,
        acked_lsn: u64,
        degraded: bool,
    ) -> CommandResult {
        if self.map.region(region).is_none() {
            return Err(reject(
                RejectCode::UnknownRegion,
                format!("no region {region}"),
            ));
        }
        if self.failing_over(region) {
            return Err(reject(
                RejectCode::FailoverInProgress,
                format!("region {region} is being taken over; its old primary may not renew"),
            ));
        }
        let lease = self.map.leases.entry(region.clone()).or_insert(Lease {
            seq: 0,
            timeline,
            acked_lsn: 0,
            degraded,
        });
        if timeline < lease.timeline {
            return Err(reject(
                RejectCode::StaleTimeline,
                format!(
                    "region {region}'s primary is on timeline {}; timeline {timeline} was replaced",
                    lease.timeline
                ),
            ));
        }
        lease.seq += 1;
        lease.timeline = timeline;
        lease.acked_lsn = lease.acked_lsn.max(acked_lsn);
        lease.degraded = degraded;
        Ok(crate::command::Applied {
            version: self.map.version,
            slot: None,
        })
    }

    fn failing_over(&self, region: &RegionId) -> bool {
        self.map
            .failovers
            .get(region)
            .is_some_and(|f| f.state == FailoverState::FailingOver)
    }

    pub(crate) fn begin_failover(
        &mut self,
        region: &RegionId,
        lease_seq: Option<u64>,
        planned: bool,
        id: &str,
    ) -> Result<(), Rejection> {
        let Some(r) = self.map.region(region) else {
            return Err(reject(
                RejectCode::UnknownRegion,
                format!("no region {region}"),
            ));
        };
        let Some(standby) = r.standby.clone() else {
            return Err(reject(
                RejectCode::NoStandby,
                format!("region {region} has no standby to take over"),
            ));
        };
        if self.failing_over(region) {
            return Err(reject(
                RejectCode::FailoverInProgress,
                format!("region {region} is already being taken over"),
            ));
        }
        let lease = self.map.leases.get(region).cloned();
        if let Some(seq) = lease_seq {
            let now = lease.as_ref().map_or(0, |l| l.seq);
            if now != seq {
                return Err(reject(
                    RejectCode::LeaseRenewed,
                    format!("region {region} renewed its lease (seq {now}, judged {seq})"),
                ));
            }
        }
        let mut slots = Vec::new();
        for (i, e) in self.map.slots.iter_mut().enumerate() {
            if &e.region == region && e.state == SlotState::Active {
                e.state = SlotState::FailingOver;
                slots.push((i as u32, e.epoch + 1));
            }
        }
        let (from_timeline, acked_lsn) = lease.map_or((0, 0), |l| (l.timeline, l.acked_lsn));
        self.map.failovers.insert(
            region.clone(),
            FailoverRecord {
                id: id.to_owned(),
                region: region.clone(),
                state: FailoverState::FailingOver,
                node: standby.node,
                from_timeline,
                acked_lsn,
                forced: lease_seq.is_none() && !planned,
                planned,
                slots,
            },
        );
        Ok(())
    }

    pub(crate) fn complete_failover(
        &mut self,
        region: &RegionId,
        timeline: u64,
    ) -> Result<(), Rejection> {
        let Some(rec) = self
            .map
            .failovers
            .get_mut(region)
            .filter(|f| f.state == FailoverState::FailingOver)
        else {
            return Err(reject(
                RejectCode::NoFailover,
                format!("region {region} has no takeover in progress"),
            ));
        };
        if timeline <= rec.from_timeline {
            return Err(reject(
                RejectCode::StaleTimeline,
                format!(
                    "the promoted database must be past timeline {} (got {timeline})",
                    rec.from_timeline
                ),
            ));
        }
        rec.state = FailoverState::Completed;
        let rec = rec.clone();
        for (slot, epoch) in &rec.slots {
            if let Some(e) = self.map.slots.get_mut(*slot as usize) {
                if e.state == SlotState::FailingOver && &e.region == region {
                    e.state = SlotState::Active;
                    e.epoch = *epoch;
                }
            }
        }
        if let Some(r) = self.map.regions.iter_mut().find(|r| &r.id == region) {
            r.node = rec.node.clone();
            r.standby = None;
        }
        let seq = self.map.leases.get(region).map_or(0, |l| l.seq);
        // The new primary runs alone until a standby is rebuilt: degraded.
        self.map.leases.insert(
            region.clone(),
            Lease {
                seq: seq + 1,
                timeline,
                acked_lsn: 0,
                degraded: true,
            },
        );
        Ok(())
    }

    pub(crate) fn set_standby(
        &mut self,
        region: &RegionId,
        standby: Option<Standby>,
    ) -> Result<(), Rejection> {
        if self.failing_over(region) {
            return Err(reject(
                RejectCode::FailoverInProgress,
                format!("region {region} is being taken over"),
            ));
        }
        // No rule on `host`: after a takeover the region's primary lives in
        // the standby's old host, and its home region hosts the new standby.
        let Some(r) = self.map.regions.iter_mut().find(|r| &r.id == region) else {
            return Err(reject(
                RejectCode::UnknownRegion,
                format!("no region {region}"),
            ));
        };
        r.standby = standby;
        Ok(())
    }
}
