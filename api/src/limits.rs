//! Bounds the node enforces and the document states (one place for both).

/// Campaign name, in characters (after trimming).
pub const MAX_NAME_LEN: usize = 200;
/// Uses one user may have of one campaign.
pub const MAX_PER_USER_LIMIT: i32 = 1000;
/// Users in a campaign's audience.
pub const MAX_AUDIENCE_USERS: usize = 100_000;
/// User ids (token `sub`, audience, intended users), in characters.
pub const MAX_USER_ID_LEN: usize = 255;
/// Order ids and release reasons, in characters.
pub const MAX_ORDER_ID: usize = 255;
pub const MAX_REASON: usize = 255;
/// Largest export page and events page.
pub const MAX_EXPORT_PAGE: i64 = 10_000;
pub const MAX_EVENTS_PAGE: i64 = 1000;
/// Largest `total_limit` of a shared campaign.
pub const MAX_TOTAL_LIMIT: i32 = 100_000_000;
/// Pool codes per generation job, intended users per job.
pub const MAX_POOL_COUNT: i64 = 10_000_000;
pub const MAX_INTENDED_USERS: usize = 100_000;
/// Free text (order ids, reasons): no control characters (C0, DEL, C1).
pub const PLAIN_PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]*$";
/// Text a person reads (names, user ids): also no invisible or
/// direction-changing characters (bidi overrides and isolates, zero-width).
pub const DISPLAY_PATTERN: &str = concat!(
    r"^[^\u0000-\u001F\u007F-\u009F\u200B-\u200F\u202A-\u202E\u2060-\u2069",
    r"\uFEFF\u061C\u180E\uFFF9-\uFFFB]*$"
);
/// A campaign name: display text with at least one non-space character.
pub const NAME_PATTERN: &str = concat!(
    r"^[^\u0000-\u001F\u007F-\u009F\u200B-\u200F\u202A-\u202E\u2060-\u2069\uFEFF\u061C\u180E\uFFF9-\uFFFB]*",
    r"[^\s\u0000-\u001F\u007F-\u009F\u200B-\u200F\u202A-\u202E\u2060-\u2069\uFEFF\u061C\u180E\uFFF9-\uFFFB]",
    r"[^\u0000-\u001F\u007F-\u009F\u200B-\u200F\u202A-\u202E\u2060-\u2069\uFEFF\u061C\u180E\uFFF9-\uFFFB]*$"
);
/// A vanity code as marketing writes it: letters and digits (spaces and
/// dashes are ignored when matching), not 13 symbols long (that shape is
/// reserved for generated codes).
pub const VANITY_PATTERN: &str = r"^([A-Za-z0-9]{1,12}|[A-Za-z0-9]{14,64})$";
/// Any code a shopper may type: 1–64 letters or digits.
pub const CODE_PATTERN: &str = r"^[A-Za-z0-9]{1,64}$";
/// Ids carry their kind, home slot and a check character.
pub const CAMPAIGN_ID_PATTERN: &str = r"^cmp_[2-9A-HJ-NP-Z]{15}$";
pub const REDEMPTION_ID_PATTERN: &str = r"^red_[2-9A-HJ-NP-Z]{15}$";
pub const JOB_ID_PATTERN: &str = r"^job_[2-9A-HJ-NP-Z]{15}$";
/// Idempotency-Key: 1–255 visible ASCII characters.
pub const IDEMPOTENCY_KEY_PATTERN: &str = r"^[!-~]{1,255}$";
/// A page cursor: the `next` of the previous page.
pub const CURSOR_PATTERN: &str = r"^[0-9]{0,18}$";
