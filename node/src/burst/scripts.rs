//! The Lua scripts, loaded once per process and run with EVALSHA (the redis
//! crate re-sends the source on NOSCRIPT, e.g. after a Redis restart).

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

pub fn scripts() -> &'static Scripts {
    static S: OnceLock<Scripts> = OnceLock::new();
    S.get_or_init(|| Scripts {
        claim_shared: Script::new(include_str!("lua/claim_shared.lua")),
        claim_pool: Script::new(include_str!("lua/claim_pool.lua")),
        claim_unique: Script::new(include_str!("lua/claim_unique.lua")),
        give_back: Script::new(include_str!("lua/give_back.lua")),
        finish: Script::new(include_str!("lua/finish.lua")),
        rate_limit: Script::new(include_str!("lua/rate_limit.lua")),
        unlock: Script::new(include_str!("lua/unlock.lua")),
    })
}
