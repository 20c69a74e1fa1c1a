//! `GET /openapi.json`: the node's document, from the `coupon-api` crate
//! that also holds the wire types these handlers parse and write.

use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/openapi.json",
        get(|State(state): State<AppState>| async move {
            Json(coupon_api::doc::node_document_for(state.region()))
        }),
    )
}

#[cfg(test)]
mod tests {
    use coupon_api::limits as doc;

    /// The bounds the handlers enforce are the ones the document states.
    #[test]
    fn the_node_enforces_the_documents_bounds() {
        use crate::domain::campaign as c;
        assert_eq!(c::MAX_NAME_LEN, doc::MAX_NAME_LEN);
        assert_eq!(c::MAX_PER_USER_LIMIT, doc::MAX_PER_USER_LIMIT);
        assert_eq!(c::MAX_AUDIENCE_USERS, doc::MAX_AUDIENCE_USERS);
        assert_eq!(crate::codegen::MAX_POOL_COUNT, doc::MAX_POOL_COUNT);
        assert_eq!(crate::codegen::MAX_INTENDED_USERS, doc::MAX_INTENDED_USERS);
        assert_eq!(crate::auth::verifier::MAX_SUB_LEN, doc::MAX_USER_ID_LEN);
    }
}
