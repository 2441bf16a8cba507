//! Turning captured command output into text.

use crate::bindings::mcpssh::plugin::exec::CapturedStream;

/// The line put between the head and the tail of a stream that was cut:
/// `"\n[... N bytes cut ...]\n"`.
///
/// ```
/// assert_eq!(mcpssh_sdk::stream::cut_marker(42), "\n[... 42 bytes cut ...]\n");
/// ```
pub fn cut_marker(cut_bytes: u64) -> String {
    format!("\n[... {cut_bytes} bytes cut ...]\n")
}

/// Joins the head and tail of a captured stream into a string.
///
/// When `cut_bytes` is 0 nothing was dropped and the result is `head` followed by `tail`,
/// decoded together (so a character split between them survives). Otherwise the result is
/// `head`, [`cut_marker(cut_bytes)`](cut_marker), `tail`. Invalid UTF-8 (including a character
/// split by the cut) becomes U+FFFD.
///
/// ```
/// use mcpssh_sdk::stream::join_lossy;
///
/// assert_eq!(join_lossy(b"hello ", b"world", 0), "hello world");
/// assert_eq!(join_lossy(b"abc", b"xyz", 100), "abc\n[... 100 bytes cut ...]\nxyz");
/// assert_eq!(join_lossy(b"bad \xff", b"", 0), "bad \u{fffd}");
/// ```
pub fn join_lossy(head: &[u8], tail: &[u8], cut_bytes: u64) -> String {
    if cut_bytes == 0 {
        if tail.is_empty() {
            return String::from_utf8_lossy(head).into_owned();
        }
        let mut all = Vec::with_capacity(head.len() + tail.len());
        all.extend_from_slice(head);
        all.extend_from_slice(tail);
        return String::from_utf8_lossy(&all).into_owned();
    }
    let mut text = String::from_utf8_lossy(head).into_owned();
    text.push_str(&cut_marker(cut_bytes));
    text.push_str(&String::from_utf8_lossy(tail));
    text
}

/// [`join_lossy`] applied to a [`CapturedStream`] from
/// [`exec::run`](crate::bindings::mcpssh::plugin::exec::run).
pub fn captured_to_string(stream: &CapturedStream) -> String {
    join_lossy(&stream.head, &stream.tail, stream.cut_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_cut() {
        assert_eq!(join_lossy(b"", b"", 0), "");
        assert_eq!(join_lossy(b"all of it\n", b"", 0), "all of it\n");
        assert_eq!(join_lossy(b"", b"only tail", 0), "only tail");
    }

    #[test]
    fn character_split_between_head_and_tail_survives_when_not_cut() {
        let s = "é".as_bytes();
        assert_eq!(join_lossy(&s[..1], &s[1..], 0), "é");
    }

    #[test]
    fn cut_inserts_the_marker() {
        assert_eq!(
            join_lossy(b"first\n", b"last\n", 1234),
            "first\n\n[... 1234 bytes cut ...]\nlast\n"
        );
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let s = "é".as_bytes();
        assert_eq!(
            join_lossy(&s[..1], &s[1..], 5),
            "\u{fffd}\n[... 5 bytes cut ...]\n\u{fffd}"
        );
        assert_eq!(join_lossy(b"\xc3\x28", b"", 0), "\u{fffd}(");
    }

    #[test]
    fn captured_stream() {
        let stream = CapturedStream {
            head: b"head".to_vec(),
            tail: b"tail".to_vec(),
            cut_bytes: 10,
            total_bytes: 18,
        };
        assert_eq!(
            captured_to_string(&stream),
            "head\n[... 10 bytes cut ...]\ntail"
        );
    }
}
