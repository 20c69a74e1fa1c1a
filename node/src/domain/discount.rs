//! The discount a campaign grants; frozen into every redemption as a snapshot.

use crate::error::ApiError;
pub use coupon_api::discount::{Discount, MAX_AMOUNT_MINOR};

/// Active ISO 4217 currency codes (funds and precious metals excluded).
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
    "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
    "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
    "VED", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW",
    "ZWG",
];

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
                        format!("amount_minor must be 1 to {MAX_AMOUNT_MINOR} minor units"),
                    ));
                }
                if !ISO_4217.contains(&currency.as_str()) {
                    return Err(ApiError::invalid(
                        "discount.currency",
                        "currency must be an active ISO 4217 code such as USD",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_refuses_fields_it_does_not_have() {
        let bad = [
            r#"{"type":"free_shipping","percent":500,"junk":{}}"#,
            r#"{"type":"percent","percent":5,"currency":"USD"}"#,
            r#"{"type":"amount","amount_minor":5,"currency":"USD","percent":1}"#,
        ];
        for b in bad {
            assert!(serde_json::from_str::<Discount>(b).is_err(), "{b}");
        }
        let ok: Discount = serde_json::from_str(r#"{"type":"free_shipping"}"#).unwrap();
        assert_eq!(ok, Discount::FreeShipping);
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"type":"free_shipping"}"#
        );
    }

    #[test]
    fn currencies_are_iso_4217_and_amounts_bounded() {
        let amount = |m, c: &str| Discount::Amount {
            amount_minor: m,
            currency: c.into(),
        };
        assert!(amount(1000, "USD").validate().is_ok());
        assert!(amount(1000, "ABC").validate().is_err());
        assert!(amount(i64::MAX, "USD").validate().is_err());
        assert!(amount(0, "USD").validate().is_err());
    }
}
