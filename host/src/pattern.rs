//! OpenSSH host patterns: `*` and `?` wildcards, matched case-insensitively, and pattern
//! lists with `!` negations. Shared by the ssh_config reader, the known_hosts reader and
//! host-list settings.

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

/// [`glob`] one dot-separated label at a time, for allow-lists: `*` and `?` never match a
/// dot, so `10.0.0.*` does not admit `10.0.0.5.attacker.example` nor `web-*` admit
/// `web-1.evil.example`. Pattern and name must have as many labels.
pub fn glob_labels(pattern: &str, name: &str) -> bool {
    let (pattern, name): (Vec<&str>, Vec<&str>) =
        (pattern.split('.').collect(), name.split('.').collect());
    pattern.len() == name.len() && pattern.iter().zip(&name).all(|(p, n)| glob(p, n))
}

/// An OpenSSH pattern list: true when some pattern matches and no negated one (`!p`)
/// does. `matches` says whether one pattern, without its `!`, matches.
pub fn list_matches<'a>(
    patterns: impl IntoIterator<Item = &'a str>,
    matches: impl Fn(&str) -> bool,
) -> bool {
    let mut matched = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) if matches(negated) => return false,
            Some(_) => {}
            None => matched |= matches(pattern),
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_list_needs_a_match_and_no_negated_match() {
        let list =
            |patterns: &str, name: &str| list_matches(patterns.split(','), |p| glob(p, name));
        assert!(list("*.example.com,db", "web.example.com"));
        assert!(list("db", "DB"));
        assert!(!list("*.example.com,!web.example.com", "web.example.com"));
        assert!(!list("!web.example.com,*.example.com", "web.example.com"));
        assert!(!list("!other", "web"), "a negation alone matches nothing");
        assert!(!list("", "web"));
    }
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
