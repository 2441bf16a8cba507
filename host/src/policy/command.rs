//! Command patterns of a policy: a glob (`*` any text, `?` one character) or, with the
//! prefix `re:`, a regular expression; either must match the whole command (trimmed).
//! Also the shell metacharacters refused when an allow-list decides what may run.
//!
//! Matching a shell string is best-effort: the shell, not this module, decides what a
//! string runs. Deny patterns are defence in depth; an allow-list with metacharacters
//! refused is the real control.

use regex_automata::meta::Regex;

/// One command pattern, as written in the policy file.
#[derive(Debug, Clone)]
pub struct CommandPattern {
    /// The text as the user wrote it, to name it in refusals.
    pub text: String,
    regex: Regex,
}

impl CommandPattern {
    /// Parses `text`: `re:<regex>` or a glob.
    pub fn parse(text: &str) -> Result<CommandPattern, String> {
        let source = match text.strip_prefix("re:") {
            Some(re) => format!("^(?:{re})$"),
            None => glob_to_regex(text.trim()),
        };
        let regex = Regex::new(&source).map_err(|e| {
            format!("command pattern {text:?} is not a valid regular expression: {e}")
        })?;
        Ok(CommandPattern {
            text: text.to_string(),
            regex,
        })
    }

    /// Whether the whole (trimmed) command matches.
    pub fn matches(&self, command: &str) -> bool {
        self.regex.is_match(command.trim())
    }
}

/// A glob as an anchored regular expression (`(?s)`: `*` also spans newlines).
fn glob_to_regex(glob: &str) -> String {
    let mut out = String::from("(?s)^");
    for c in glob.chars() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            c => out.push_str(&regex_syntax::escape(&c.to_string())),
        }
    }
    out.push('$');
    out
}

/// The characters that let one command string run others, redirect, substitute or
/// continue a line: refused when an allow-list is in force.
pub const SHELL_METACHARACTERS: &[char] = &[
    ';', '&', '|', '<', '>', '$', '`', '\\', '(', ')', '{', '}', '\n', '\r', '\0',
];

/// The first shell metacharacter in `command`, if any.
pub fn metacharacter(command: &str) -> Option<char> {
    command.chars().find(|c| SHELL_METACHARACTERS.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_regexes_match_the_whole_command() {
        let p = CommandPattern::parse("systemctl status *").unwrap();
        assert!(p.matches("systemctl status nginx"));
        assert!(p.matches("  systemctl status nginx  "));
        assert!(!p.matches("sudo systemctl status nginx"));
        assert!(!p.matches("systemctl stop nginx"));
        let p = CommandPattern::parse("uname").unwrap();
        assert!(p.matches("uname") && !p.matches("uname -a"));
        let p = CommandPattern::parse("df -?").unwrap();
        assert!(p.matches("df -h") && !p.matches("df -hT"));
        let p = CommandPattern::parse("re:git (status|log)( .*)?").unwrap();
        assert!(p.matches("git status") && p.matches("git log -1"));
        assert!(!p.matches("git push") && !p.matches("xgit status"));
        // Regex characters in a glob are literal.
        let p = CommandPattern::parse("ls a.b").unwrap();
        assert!(p.matches("ls a.b") && !p.matches("ls axb"));
        assert!(CommandPattern::parse("re:(").is_err());
    }

    #[test]
    fn metacharacters_are_found() {
        for bad in [
            "ls; rm -rf /",
            "cat x | sh",
            "ls && reboot",
            "echo $(id)",
            "echo `id`",
            "cat > f",
            "ls\nrm x",
            "ls \\\nx",
        ] {
            assert!(metacharacter(bad).is_some(), "{bad:?}");
        }
        for good in [
            "ls -la /var/log",
            "cat '/etc/os-release'",
            "df -h",
            "ls *.log",
        ] {
            assert_eq!(metacharacter(good), None, "{good:?}");
        }
    }
}
