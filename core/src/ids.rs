//! Ids that carry their home slot: `cmp_…` campaigns, `red_…` redemptions,
//! `job_…` jobs. Layout after the prefix: 2 slot symbols, 12 random symbols,
//! 1 check symbol. The underscore keeps ids and codes from ever colliding.

use crate::alphabet::{self, ALPHABET};
use crate::slot::Slot;
use rand::Rng;
use std::fmt;

const BODY_LEN: usize = 2 + 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Campaign,
    Redemption,
    Job,
}

impl IdKind {
    fn prefix(self) -> &'static str {
        match self {
            IdKind::Campaign => "cmp_",
            IdKind::Redemption => "red_",
            IdKind::Job => "job_",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("id must start with {0}")]
    Prefix(&'static str),
    #[error("id has the wrong length or characters")]
    Shape,
    #[error("id check character is wrong")]
    Check,
}

fn random_body(slot: Slot, rng: &mut impl Rng) -> String {
    let mut body = alphabet::encode(slot.get() as u64, 2);
    body.extend((0..12).map(|_| ALPHABET[rng.gen_range(0..32)]));
    let check = alphabet::check_char(&body);
    body.push(check);
    String::from_utf8(body).expect("ASCII")
}

fn parse_body(kind: IdKind, raw: &str) -> Result<Slot, IdError> {
    let body = raw
        .strip_prefix(kind.prefix())
        .ok_or(IdError::Prefix(kind.prefix()))?;
    let b = body.as_bytes();
    if b.len() != BODY_LEN + 1 || !b.iter().all(|&c| alphabet::value(c).is_some()) {
        return Err(IdError::Shape);
    }
    if alphabet::check_char(&b[..BODY_LEN]) != b[BODY_LEN] {
        return Err(IdError::Check);
    }
    let n = alphabet::decode(&b[..2]).expect("validated") as u16;
    Ok(Slot::new(n).expect("two symbols are below 1024"))
}

macro_rules! slotted_id {
    ($name:ident, $kind:expr) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn random(slot: Slot, rng: &mut impl Rng) -> Self {
                Self(format!("{}{}", $kind.prefix(), random_body(slot, rng)))
            }

            pub fn parse(raw: &str) -> Result<Self, IdError> {
                parse_body($kind, raw).map(|_| Self(raw.to_owned()))
            }

            pub fn slot(&self) -> Slot {
                parse_body($kind, &self.0).expect("validated at construction")
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

slotted_id!(CampaignId, IdKind::Campaign);
slotted_id!(RedemptionId, IdKind::Redemption);
slotted_id!(JobId, IdKind::Job);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_slot_and_refuse_tampering() {
        let slot = Slot::new(999).unwrap();
        let id = CampaignId::random(slot, &mut rand::thread_rng());
        assert_eq!(CampaignId::parse(id.as_str()).unwrap().slot(), slot);
        let mut bad = id.as_str().as_bytes().to_vec();
        let i = bad.len() - 3;
        bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            CampaignId::parse(std::str::from_utf8(&bad).unwrap()),
            Err(IdError::Check)
        );
        assert_eq!(
            RedemptionId::parse(id.as_str()),
            Err(IdError::Prefix("red_"))
        );
    }
}
