//! Integers as JSON Schema reads them: `5` and `5.0` are the same integer
//! (the document says `"type": "integer"`, and a JSON number with a zero
//! fraction is one), so the node accepts both; `5.5` is refused.

use serde::de::{Deserialize, Deserializer, Error};

fn integral<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => Ok(f as i64),
        _ => Err(D::Error::custom(format!("expected an integer, got {n}"))),
    }
}

fn narrow<'de, D: Deserializer<'de>, T: TryFrom<i64>>(d: D) -> Result<T, D::Error> {
    let i = integral(d)?;
    T::try_from(i).map_err(|_| D::Error::custom(format!("integer {i} is out of range")))
}

pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    integral(d)
}

pub fn i32<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    narrow(d)
}

pub fn u8<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    narrow(d)
}

/// An optional integer (`null` allowed).
pub fn option_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(serde::Deserialize)]
    struct W(#[serde(deserialize_with = "i64")] i64);
    Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
}

/// An optional `i32` (`null` allowed).
pub fn option_i32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    #[derive(serde::Deserialize)]
    struct W(#[serde(deserialize_with = "i32")] i32);
    Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize, Debug)]
    struct T {
        #[serde(deserialize_with = "super::i32")]
        n: i32,
    }

    #[test]
    fn a_zero_fraction_is_an_integer_and_nothing_else_is() {
        let n = |s: &str| serde_json::from_str::<T>(s).map(|t| t.n);
        assert_eq!(n(r#"{"n": 5}"#).unwrap(), 5);
        assert_eq!(n(r#"{"n": 5.0}"#).unwrap(), 5);
        assert!(n(r#"{"n": 5.5}"#).is_err());
        assert!(n(r#"{"n": 3000000000}"#).is_err(), "out of i32");
        assert!(n(r#"{"n": "5"}"#).is_err());
    }
}
