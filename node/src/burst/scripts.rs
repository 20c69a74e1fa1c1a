//! The Lua scripts, loaded once per process and run with EVALSHA (the redis
//! crate re-sends the source on NOSCRIPT, e.g. after a Redis restart).
//! The rate limit's GCRA is one Lua function (`gcra.lua`) put in front of
//! the script that checks one limit alone and of each claim script, which
//! charges the caller's limits first (`claim_limits.lua`).

use redis::Script;
use std::sync::OnceLock;

pub struct Scripts {
    pub claim_shared: Script,
    pub claim_pool: Script,
    pub claim_unique: Script,
    pub give_back: Script,
    pub finish: Script,
    pub rate_limit: Script,
    pub unlock: Script,
}

/// A claim script behind the rate limits it charges first.
macro_rules! claim {
    ($file:literal) => {
        concat!(
            include_str!("lua/gcra.lua"),
            include_str!("lua/claim_limits.lua"),
            include_str!($file)
        )
    };
}

pub fn scripts() -> &'static Scripts {
    static S: OnceLock<Scripts> = OnceLock::new();
    S.get_or_init(|| Scripts {
        claim_shared: Script::new(claim!("lua/claim_shared.lua")),
        claim_pool: Script::new(claim!("lua/claim_pool.lua")),
        claim_unique: Script::new(claim!("lua/claim_unique.lua")),
        give_back: Script::new(include_str!("lua/give_back.lua")),
        finish: Script::new(include_str!("lua/finish.lua")),
        rate_limit: Script::new(concat!(
            include_str!("lua/gcra.lua"),
            include_str!("lua/rate_limit.lua")
        )),
        unlock: Script::new(include_str!("lua/unlock.lua")),
    })
}
