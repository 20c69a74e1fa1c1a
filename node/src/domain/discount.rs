//! The discount a campaign grants; frozen into every redemption as a snapshot.

use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Money is integer minor units plus an ISO 4217 currency (API.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Discount {
    Amount { amount_minor: i64, currency: String },
    Percent { percent: u8 },
    FreeShipping,
}

impl Discount {
    /// Checks the ranges serde cannot express.
    pub fn validate(&self) -> Result<(), ApiError> {
        match self {
            Discount::Amount {
                amount_minor,
                currency,
            } => {
                if *amount_minor < 1 {
                    return Err(ApiError::invalid(
                        "discount.amount_minor",
                        "amount_minor must be a positive integer of minor units",
                    ));
                }
                if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(ApiError::invalid(
                        "discount.currency",
                        "currency must be an ISO 4217 code such as USD",
                    ));
                }
            }
            Discount::Percent { percent } => {
                if !(1..=100).contains(percent) {
                    return Err(ApiError::invalid(
                        "discount.percent",
                        "percent must be 1 to 100",
                    ));
                }
            }
            Discount::FreeShipping => {}
        }
        Ok(())
    }
}
