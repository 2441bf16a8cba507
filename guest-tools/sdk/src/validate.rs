//! Checks for argument values, each returning an `invalid-argument` [`ToolError`] whose `field`
//! and message name the argument.
//!
//! ```
//! use mcpssh_sdk::validate;
//!
//! assert!(validate::non_empty("command", "ls").is_ok());
//! let err = validate::non_empty("command", "  ").unwrap_err();
//! assert_eq!(err.field(), Some("command"));
//! assert_eq!(err.message(), "`command` must not be empty");
//!
//! assert_eq!(validate::port("port", 22).unwrap(), 22u16);
//! assert!(validate::port("port", 0).is_err());
//! ```

use std::fmt::Display;

use crate::error::ToolError;

/// Fails when `value` is empty or only whitespace.
pub fn non_empty(field: &str, value: &str) -> Result<(), ToolError> {
    if value.trim().is_empty() {
        return Err(ToolError::invalid_argument(
            field,
            format!("`{field}` must not be empty"),
        ));
    }
    Ok(())
}

/// Fails when `value` contains a NUL character, which no remote shell or path can carry.
pub fn no_nul(field: &str, value: &str) -> Result<(), ToolError> {
    if value.contains('\0') {
        return Err(ToolError::invalid_argument(
            field,
            format!("`{field}` must not contain NUL characters"),
        ));
    }
    Ok(())
}

/// Fails when `value` contains a control character (including newline, tab and NUL).
pub fn no_control_chars(field: &str, value: &str) -> Result<(), ToolError> {
    if value.chars().any(char::is_control) {
        return Err(ToolError::invalid_argument(
            field,
            format!("`{field}` must not contain control characters such as newlines or tabs"),
        ));
    }
    Ok(())
}

/// Fails when `value` contains whitespace or a control character: for names such as host names
/// and user names.
pub fn single_word(field: &str, value: &str) -> Result<(), ToolError> {
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ToolError::invalid_argument(
            field,
            format!("`{field}` must not contain spaces or control characters"),
        ));
    }
    Ok(())
}

/// A session name, host name or `~/.ssh/config` alias: not empty, no whitespace and no
/// control characters.
///
/// ```
/// use mcpssh_sdk::validate::session_name;
///
/// assert!(session_name("host", "web1").is_ok());
/// assert_eq!(session_name("host", "").unwrap_err().message(), "`host` must not be empty");
/// assert_eq!(session_name("host", "a b").unwrap_err().field(), Some("host"));
/// ```
pub fn session_name(field: &str, value: &str) -> Result<(), ToolError> {
    non_empty(field, value)?;
    single_word(field, value)
}

/// Returns `value` when `min <= value <= max`, or an error naming the range.
pub fn in_range<T: PartialOrd + Display + Copy>(
    field: &str,
    value: T,
    min: T,
    max: T,
) -> Result<T, ToolError> {
    if value < min || value > max {
        return Err(ToolError::invalid_argument(
            field,
            format!("`{field}` must be between {min} and {max}, got {value}"),
        ));
    }
    Ok(value)
}

/// Returns `value` when `value >= min`, or an error naming the minimum.
pub fn at_least<T: PartialOrd + Display + Copy>(
    field: &str,
    value: T,
    min: T,
) -> Result<T, ToolError> {
    if value < min {
        return Err(ToolError::invalid_argument(
            field,
            format!("`{field}` must be at least {min}, got {value}"),
        ));
    }
    Ok(value)
}

/// A TCP port: an integer from 1 to 65535.
pub fn port(field: &str, value: i64) -> Result<u16, ToolError> {
    let value = in_range(field, value, 1, 65535)?;
    Ok(u16::try_from(value).expect("checked range"))
}

/// Converts a duration in seconds (which may be fractional) to whole milliseconds, rounding
/// up. The duration must be finite, more than 0 and at most `max_seconds`.
///
/// ```
/// use mcpssh_sdk::validate::seconds_to_millis;
///
/// assert_eq!(seconds_to_millis("timeout_seconds", 1.5, 86400.0).unwrap(), 1500);
/// assert_eq!(seconds_to_millis("timeout_seconds", 0.0001, 86400.0).unwrap(), 1);
/// assert!(seconds_to_millis("timeout_seconds", 0.0, 86400.0).is_err());
/// ```
pub fn seconds_to_millis(field: &str, seconds: f64, max_seconds: f64) -> Result<u64, ToolError> {
    if !seconds.is_finite() || seconds <= 0.0 || seconds > max_seconds {
        return Err(ToolError::invalid_argument(
            field,
            format!(
                "`{field}` must be more than 0 and at most {max_seconds} seconds, got {seconds}"
            ),
        ));
    }
    // At most `max_seconds * 1000`, which fits easily in a u64 for any sensible maximum.
    Ok(((seconds * 1000.0).ceil() as u64).max(1))
}

/// True when `name` is a portable environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Fails unless `name` [is a portable environment variable name](is_env_name). `field` is the
/// argument holding the variables (e.g. `env`).
pub fn env_name(field: &str, name: &str) -> Result<(), ToolError> {
    if !is_env_name(name) {
        return Err(ToolError::invalid_argument(
            field,
            format!(
                "`{field}` has an invalid variable name {name:?}: names must match [A-Za-z_][A-Za-z0-9_]*"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_empty_rejects_blank() {
        assert!(non_empty("x", "a").is_ok());
        assert!(non_empty("x", "").is_err());
        assert!(non_empty("x", " \n\t").is_err());
    }

    #[test]
    fn nul_and_control() {
        assert!(no_nul("x", "a\nb").is_ok());
        assert_eq!(no_nul("x", "a\0b").unwrap_err().field(), Some("x"));
        assert!(no_control_chars("x", "a b").is_ok());
        assert!(no_control_chars("x", "a\nb").is_err());
        assert!(single_word("x", "host.example").is_ok());
        assert!(single_word("x", "two words").is_err());
        assert!(single_word("x", "tab\t").is_err());
        assert!(session_name("x", "web-1.example").is_ok());
        assert!(session_name("x", "").is_err());
        assert!(session_name("x", "a\u{1}b").is_err());
    }

    #[test]
    fn ranges() {
        assert_eq!(in_range("n", 5, 1, 10).unwrap(), 5);
        assert_eq!(
            in_range("n", 11, 1, 10).unwrap_err().message(),
            "`n` must be between 1 and 10, got 11"
        );
        assert_eq!(at_least("m", 1024, 1024).unwrap(), 1024);
        assert_eq!(
            at_least("m", 10, 1024).unwrap_err().message(),
            "`m` must be at least 1024, got 10"
        );
    }

    #[test]
    fn ports() {
        assert_eq!(port("port", 1).unwrap(), 1);
        assert_eq!(port("port", 65535).unwrap(), 65535);
        assert!(port("port", 0).is_err());
        assert!(port("port", -22).is_err());
        assert!(port("port", 65536).is_err());
    }

    #[test]
    fn seconds() {
        assert_eq!(seconds_to_millis("t", 60.0, 86400.0).unwrap(), 60_000);
        assert_eq!(
            seconds_to_millis("t", 86400.0, 86400.0).unwrap(),
            86_400_000
        );
        assert_eq!(seconds_to_millis("t", 0.0015, 86400.0).unwrap(), 2);
        assert!(seconds_to_millis("t", 86400.5, 86400.0).is_err());
        assert!(seconds_to_millis("t", -1.0, 86400.0).is_err());
        assert!(seconds_to_millis("t", f64::NAN, 86400.0).is_err());
        assert!(seconds_to_millis("t", f64::INFINITY, 86400.0).is_err());
    }

    #[test]
    fn env_names() {
        for ok in ["A", "_", "PATH", "my_var2", "_X1"] {
            assert!(is_env_name(ok), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "É", "a.b"] {
            assert!(!is_env_name(bad), "{bad}");
        }
        let err = env_name("env", "A-B").unwrap_err();
        assert_eq!(err.field(), Some("env"));
        assert!(err.message().contains("\"A-B\""));
    }
}
