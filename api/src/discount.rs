//! The discount a campaign grants; frozen into every redemption as a snapshot.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Largest `amount_minor` (10^11 minor units).
pub const MAX_AMOUNT_MINOR: i64 = 100_000_000_000;

/// Money is integer minor units plus an ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Discount {
    Amount {
        #[schema(minimum = 1, maximum = 100000000000.0)]
        #[serde(deserialize_with = "crate::int::i64")]
        amount_minor: i64,
        /// ISO 4217 currency code, upper case.
        #[schema(pattern = r"^[A-Z]{3}$", example = "USD")]
        currency: String,
    },
    Percent {
        #[schema(minimum = 1, maximum = 100)]
        #[serde(deserialize_with = "crate::int::u8")]
        percent: u8,
    },
    FreeShipping,
}
