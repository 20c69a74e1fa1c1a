//! The public API as data: request and response bodies (the wire types the
//! node parses and writes) and the OpenAPI document that describes them,
//! served by nodes and routers alike. No behaviour lives here: the node
//! validates and serves, the router forwards; both describe the same API.

pub mod campaign;
pub mod codes;
pub mod coupons;
pub mod discount;
pub mod doc;
pub mod events;
pub mod int;
pub mod limits;
pub mod problem;
pub mod time;
