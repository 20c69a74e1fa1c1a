//! UTC timestamps on the wire (defined with the wire types in `coupon-api`).

pub use coupon_api::time::{rfc3339, utc};
