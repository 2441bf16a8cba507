//! OpenSSH host patterns: `*` and `?` wildcards, matched case-insensitively. Shared by
//! the ssh_config reader, the known_hosts reader and host-list settings.

/// `*` and `?` wildcard matching, case-insensitive like OpenSSH host patterns.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn glob_matching() {
        assert!(glob("*.example.com", "a.example.com"));
        assert!(glob("h?st", "HOST"));
        assert!(!glob("h?st", "hoost"));
        assert!(glob("*", ""));
    }

    proptest! {
        /// Glob matching never panics, and a pattern without wildcards matches itself.
        #[test]
        fn glob_is_total(pattern in "[*?a-c!]{0,12}", text in "[a-c]{0,12}") {
            let _ = glob(&pattern, &text);
            prop_assert!(glob(&text, &text));
        }
    }
}
