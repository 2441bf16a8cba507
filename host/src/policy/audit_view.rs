//! The audit log read back for people (`mcpssh audit show`): one line per request — when,
//! which tool, as whom on which host, how it ended, what the policy decided when it did
//! more than allow, and what was asked (the command, the paths, the URI). A line that is
//! not an audit entry is shown as such, never skipped. Every value shown is made printable
//! first (control and invisible formatting characters replaced), so a logged value cannot
//! move the cursor, recolour or reorder what the terminal shows.

use serde_json::Value;

/// The most characters of a request's summary shown.
const SUMMARY_CHARS: usize = 160;

/// The lines of `text` (an audit log) for people; only the last `last` when given.
pub fn show(text: &str, last: Option<usize>) -> Vec<String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let skip = last.map_or(0, |n| lines.len().saturating_sub(n));
    lines
        .iter()
        .skip(skip)
        .enumerate()
        .map(|(i, line)| match serde_json::from_str::<Value>(line) {
            Ok(entry @ Value::Object(_)) => entry_line(&entry),
            _ => format!("line {}: not an audit entry", skip + i + 1),
        })
        .collect()
}

/// One entry on one line, made printable.
fn entry_line(entry: &Value) -> String {
    printable(&raw_line(entry))
}

/// `text` with control characters and invisible formatting characters (bidirectional
/// overrides, zero-width characters) replaced by `?`, and line breaks by spaces.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() || is_format_character(c) => '?',
            c => c,
        })
        .collect()
}

/// Unicode's invisible formatting characters (category Cf) that can reorder or hide text.
fn is_format_character(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// One entry on one line, as recorded.
fn raw_line(entry: &Value) -> String {
    let text = |key: &str| entry.get(key).and_then(Value::as_str);
    let whom = match (text("user"), text("host")) {
        (Some(user), Some(host)) => format!("{user}@{host}"),
        (None, Some(host)) => host.to_string(),
        _ => "-".to_string(),
    };
    let mut line = format!(
        "{}  {}  {}  {}  {} ms",
        text("time").unwrap_or("?"),
        text("tool").unwrap_or("?"),
        whom,
        outcome(entry),
        entry
            .get("duration_ms")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    );
    if let Some(decisions) = policy(entry) {
        line.push_str(&format!("  [policy: {decisions}]"));
    }
    let asked = summary(entry.get("arguments").unwrap_or(&Value::Null));
    if !asked.is_empty() {
        line.push_str("  ");
        line.push_str(&asked);
    }
    line
}

/// `exit 0`, `ok`, `error (denied)`, with `timed out` when it was.
fn outcome(entry: &Value) -> String {
    let mut outcome = match entry.get("outcome").and_then(Value::as_str) {
        Some("error") => match entry.get("error_kind").and_then(Value::as_str) {
            Some(kind) => format!("error ({kind})"),
            None => "error".to_string(),
        },
        _ => match entry.get("exit_code").and_then(Value::as_i64) {
            Some(code) => format!("exit {code}"),
            None => "ok".to_string(),
        },
    };
    if entry.get("timed_out").and_then(Value::as_bool) == Some(true) {
        outcome.push_str(", timed out");
    }
    if let Some(bytes) = entry.get("bytes").and_then(Value::as_u64) {
        outcome.push_str(&format!(", {bytes} bytes"));
    }
    if entry.get("new_host_key_recorded").and_then(Value::as_bool) == Some(true) {
        let key = entry.get("host_key_fingerprint").and_then(Value::as_str);
        outcome.push_str(&format!(", new host key {} recorded", key.unwrap_or("?")));
    }
    outcome
}

/// The decisions that were more than a plain allow: `exec ask accepted (rule)`.
fn policy(entry: &Value) -> Option<String> {
    let decisions: Vec<String> = entry
        .get("policy")?
        .as_array()?
        .iter()
        .filter(|d| d.get("decision").and_then(Value::as_str) != Some("allow"))
        .map(|d| {
            let field = |key: &str| d.get(key).and_then(Value::as_str);
            let mut shown = format!(
                "{} {}",
                field("action").unwrap_or("?"),
                field("decision").unwrap_or("?")
            );
            if let Some(approval) = field("approval") {
                shown.push_str(&format!(" {approval}"));
            }
            if let Some(rule) = field("rule") {
                shown.push_str(&format!(" ({rule})"));
            }
            shown
        })
        .collect();
    (!decisions.is_empty()).then(|| decisions.join("; "))
}

/// What was asked, in a few words: the command, the paths, the URI, else the arguments.
fn summary(arguments: &Value) -> String {
    let field = |key: &str| arguments.get(key).and_then(Value::as_str);
    let shown = if let Some(command) = field("command") {
        format!("$ {command}")
    } else if let (Some(local), Some(remote)) = (field("local_path"), field("remote_path")) {
        format!("{local} <-> {remote}")
    } else if let Some(uri) = field("uri") {
        uri.to_string()
    } else {
        match arguments {
            Value::Object(map) if map.is_empty() => String::new(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    };
    match shown.char_indices().nth(SUMMARY_CHARS) {
        Some((cut, _)) => format!("{}…", &shown[..cut]),
        None => shown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_entry_is_one_readable_line() {
        let log = [
            r#"{"time":"2026-11-30T15:11:23.251Z","client":"c","tool":"ssh_execute","session":"web","host":"10.0.0.5","user":"deploy","arguments":{"command":"systemctl restart app\nand more"},"policy":[{"action":"exec","decision":"ask","rule":"commands.ask","approval":"accepted"}],"outcome":"success","exit_code":0,"duration_ms":812}"#,
            r#"{"time":"2026-11-30T15:12:00Z","tool":"resources/read","host":"10.0.0.5","arguments":{"uri":"sftp://web/etc/hosts"},"policy":[{"action":"download","decision":"deny","rule":"refuse_tools"}],"outcome":"error","error_kind":"denied","duration_ms":0}"#,
            "not json",
            r#"{"time":"t","tool":"scp_upload","arguments":{"local_path":"a","remote_path":"/b"},"policy":[{"action":"upload","decision":"allow"}],"outcome":"success","bytes":42,"duration_ms":3}"#,
        ]
        .join("\n");
        let lines = show(&log, None);
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[0],
            "2026-11-30T15:11:23.251Z  ssh_execute  deploy@10.0.0.5  exit 0  812 ms  \
             [policy: exec ask accepted (commands.ask)]  $ systemctl restart app and more"
        );
        assert!(
            lines[1].contains("error (denied)")
                && lines[1].contains("download deny (refuse_tools)")
                && lines[1].ends_with("sftp://web/etc/hosts"),
            "{}",
            lines[1]
        );
        assert_eq!(lines[2], "line 3: not an audit entry");
        assert!(
            lines[3].contains("ok, 42 bytes")
                && !lines[3].contains("policy")
                && lines[3].ends_with("a <-> /b"),
            "{}",
            lines[3]
        );
        assert_eq!(show(&log, Some(1)), vec![lines[3].clone()]);
        let connect = r#"{"tool":"ssh_connect","outcome":"success","host_key_fingerprint":"SHA256:abc","new_host_key_recorded":true,"arguments":{"host":"web"}}"#;
        assert!(show(connect, None)[0].contains("ok, new host key SHA256:abc recorded"));
        assert_eq!(show(&log, Some(2))[0], "line 3: not an audit entry");
    }

    #[test]
    fn no_logged_value_reaches_the_terminal_raw() {
        let entry = serde_json::json!({
            "time": "t\u{1b}[2J",
            "tool": "evil\u{202E}txt.exe",
            "host": "h\u{1b}]0;title\u{7}",
            "user": "u\r",
            "outcome": "error",
            "error_kind": "x\u{1b}[31m",
            "arguments": {"command": "ls\u{200B}\u{1b}[1A"}
        });
        let line = entry_line(&entry);
        assert!(
            !line
                .chars()
                .any(|c| c.is_control() || is_format_character(c)),
            "{line:?}"
        );
        assert!(line.contains("evil?txt.exe"), "{line}");
    }

    #[test]
    fn a_long_request_is_cut() {
        let entry = serde_json::json!({"arguments": {"command": "x".repeat(1000)}});
        let line = entry_line(&entry);
        assert!(line.ends_with('…') && line.len() < 300, "{line}");
    }
}
