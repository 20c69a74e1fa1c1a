//! The chaos suite: one cluster per scenario, every scenario checked by
//! `coupon_chaos_tests::checker` at the end. Replay a failure with the
//! printed `CHAOS_SEED`.

mod chaos;
