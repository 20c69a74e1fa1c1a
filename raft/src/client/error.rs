//! Errors of the client library.

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no member URLs configured")]
    NoMembers,
    #[error("transport: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{status} {code}: {detail}")]
    Problem {
        status: u16,
        code: String,
        detail: String,
    },
}

impl ClientError {
    /// The problem `code` when the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Problem { code, .. } => Some(code),
            _ => None,
        }
    }
}
