//! The discount a campaign grants; frozen into every redemption as a snapshot.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Largest `amount_minor` (10^11 minor units): far above any real coupon
/// and exact in every JSON client (below 2^53), unlike `i64::MAX`.
pub const MAX_AMOUNT_MINOR: i64 = 100_000_000_000;

/// Money is integer minor units plus an ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Discount {
    Amount {
        #[schema(minimum = 1, maximum = 100000000000.0)]
        amount_minor: i64,
        /// An active ISO 4217 currency code, upper case.
        #[schema(pattern = r"^[A-Z]{3}$", example = "USD")]
        currency: String,
    },
    Percent {
        #[schema(minimum = 1, maximum = 100)]
        percent: u8,
    },
    FreeShipping,
}

/// The wire forms, one per variant, each refusing fields it does not have
/// (serde's internally tagged enums ignore unknown fields, and a unit
/// variant ignores everything, so `{"type":"free_shipping","percent":500}`
/// would pass).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Wire {
    Amount(AmountWire),
    Percent(PercentWire),
    FreeShipping(FreeShippingWire),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AmountWire {
    #[serde(deserialize_with = "crate::int::i64")]
    amount_minor: i64,
    currency: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PercentWire {
    #[serde(deserialize_with = "crate::int::u8")]
    percent: u8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FreeShippingWire {}

impl<'de> Deserialize<'de> for Discount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Wire::deserialize(d)? {
            Wire::Amount(a) => Discount::Amount {
                amount_minor: a.amount_minor,
                currency: a.currency,
            },
            Wire::Percent(p) => Discount::Percent { percent: p.percent },
            Wire::FreeShipping(FreeShippingWire {}) => Discount::FreeShipping,
        })
    }
}
