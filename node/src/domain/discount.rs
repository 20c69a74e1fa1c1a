//! The discount a campaign grants; frozen into every redemption as a snapshot.

use crate::error::ApiError;
pub use coupon_api::discount::{Discount, MAX_AMOUNT_MINOR};

/// The discount rules the node enforces on a create request.
pub trait DiscountRules {
    fn validate(&self) -> Result<(), ApiError>;
}

impl DiscountRules for Discount {
    /// Checks the ranges serde cannot express.
    fn validate(&self) -> Result<(), ApiError> {
        match self {
            Discount::Amount {
                amount_minor,
                currency,
            } => {
                if !(1..=MAX_AMOUNT_MINOR).contains(amount_minor) {
                    return Err(ApiError::invalid(
                        "discount.amount_minor",
                        "amount_minor must be 1 to 100000000000 minor units",
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
