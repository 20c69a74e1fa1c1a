//! Free text from clients (names, order ids, reasons, user ids): checked at
//! the edge so a control character never reaches Postgres (which refuses
//! NUL in text and jsonb, and would answer 500) or a log or an admin screen.

use crate::error::ApiError;

/// Longest user id (token `sub`, audience and intended users).
pub const MAX_USER_ID: usize = 255;

/// Characters that reorder or hide text when displayed (bidi overrides and
/// isolates, zero-width and other format characters): refused in names a
/// person reads, where they can make one campaign look like another.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}'
        | '\u{FEFF}' | '\u{061C}' | '\u{180E}' | '\u{FFF9}'..='\u{FFFB}')
}

/// 1..=`max` bytes with no control character (C0, DEL, C1), else a 400
/// naming `field`.
pub fn plain(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > max {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be 1-{max} characters"),
        ));
    }
    no_control(field, value)
}

/// No control character, whatever the length (codes: a malformed one is
/// otherwise an unknown code, 404).
pub fn no_control(field: &str, value: &str) -> Result<(), ApiError> {
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(ApiError::invalid(
            field,
            format!(
                "{field} must not contain control characters (found U+{:04X})",
                c as u32
            ),
        )),
        None => Ok(()),
    }
}

/// [`plain`], and no bidi-override or other invisible format character.
pub fn display(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    plain(field, value, max)?;
    if let Some(c) = value.chars().find(|c| is_format(*c)) {
        return Err(ApiError::invalid(
            field,
            format!(
                "{field} must not contain invisible or direction-changing characters (found U+{:04X})",
                c as u32
            ),
        ));
    }
    Ok(())
}

/// A list of user ids: each [`display`]-clean and at most [`MAX_USER_ID`]
/// bytes, none twice (a duplicate is a mistake in the list, and for
/// intended users it would mean two codes for one user).
pub fn user_ids(field: &str, users: &[String]) -> Result<(), ApiError> {
    let mut seen = std::collections::HashSet::with_capacity(users.len());
    for (i, u) in users.iter().enumerate() {
        let name = format!("{field}[{i}]");
        display(&name, u, MAX_USER_ID)?;
        if !seen.insert(u.as_str()) {
            return Err(ApiError::invalid(
                name,
                format!("user `{u}` is listed twice"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_control_and_format_characters_and_duplicates() {
        assert!(plain("f", "ord_1", 10).is_ok());
        assert!(plain("f", "a\0b", 10).is_err());
        assert!(plain("f", "a\u{85}b", 10).is_err());
        assert!(plain("f", "", 10).is_err());
        assert!(plain("f", "a\u{202E}b", 10).is_ok());
        assert!(display("f", "a\u{202E}b", 10).is_err());
        assert!(display("f", "Black Friday ünïcode", 40).is_ok());
        assert!(user_ids("u", &["a".into(), "b".into()]).is_ok());
        assert!(user_ids("u", &["a".into(), "a".into()]).is_err());
        assert!(user_ids("u", &["".into()]).is_err());
    }
}
