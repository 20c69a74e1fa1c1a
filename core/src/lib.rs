//! Shared wire types: the slot hash, the code alphabet and the id encodings
//! that let any router find a key's home slot from the string alone.

pub mod alphabet;
pub mod code;
pub mod hex;
pub mod ids;
pub mod logging;
pub mod metrics;
pub mod service_token;
pub mod slot;

pub use code::{Code, CodeError, GeneratedCode};
pub use ids::{CampaignId, IdError, IdKind, JobId, RedemptionId};
pub use slot::{Slot, SLOT_COUNT};
