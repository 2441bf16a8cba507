//! Which built-in tools are served (`MCP_SSH_TOOLS`): a list of tool names and groups,
//! so a user who needs only commands does not pay for every tool's definition in the
//! model's context. Custom tools from the tools folder are not affected.

use std::collections::BTreeSet;

/// The groups of built-in tools, by the name a user writes.
pub const GROUPS: &[(&str, &[&str])] = &[
    ("sessions", &["ssh_connect", "ssh_disconnect"]),
    ("exec", &["ssh_execute"]),
    (
        "files",
        &[
            "scp_upload",
            "scp_download",
            "scp_listdir",
            "scp_remove",
            "scp_disk_usage",
        ],
    ),
    (
        "jobs",
        &["ssh_job_output", "ssh_job_cancel", "ssh_job_list"],
    ),
];

/// The built-in tools to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinSelection {
    /// None: every built-in.
    chosen: Option<BTreeSet<String>>,
}

impl BuiltinSelection {
    /// Every built-in tool.
    pub fn all() -> BuiltinSelection {
        BuiltinSelection { chosen: None }
    }

    /// Parses a comma- or space-separated list of built-in tool names (without the
    /// prefix) and group names (`sessions`, `exec`, `files`, `jobs`, `all`); blank means all.
    /// `known` lists the built-in tools.
    pub fn parse(setting: Option<&str>, known: &[&str]) -> Result<BuiltinSelection, String> {
        let entries: Vec<&str> = setting
            .unwrap_or_default()
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty())
            .collect();
        if entries.is_empty() || entries.contains(&"all") {
            return Ok(BuiltinSelection::all());
        }
        let mut chosen = BTreeSet::new();
        for entry in entries {
            if let Some((_, tools)) = GROUPS.iter().find(|(group, _)| *group == entry) {
                chosen.extend(tools.iter().map(|t| t.to_string()));
            } else if known.contains(&entry) {
                chosen.insert(entry.to_string());
            } else {
                let groups: Vec<&str> = GROUPS.iter().map(|(g, _)| *g).collect();
                return Err(format!(
                    "MCP_SSH_TOOLS: unknown tool or group {entry:?}; the built-in tools are {} \
                     and the groups {}, all",
                    known.join(", "),
                    groups.join(", ")
                ));
            }
        }
        Ok(BuiltinSelection {
            chosen: Some(chosen),
        })
    }

    /// The embedded built-ins that `setting` (`MCP_SSH_TOOLS`) chooses.
    pub fn of_embedded(setting: Option<&str>) -> Result<BuiltinSelection, String> {
        let known: Vec<&str> = super::builtin::COMPONENTS
            .iter()
            .map(|(name, _)| *name)
            .collect();
        BuiltinSelection::parse(setting, &known)
    }

    /// Whether the built-in tool `name` (without the prefix) is served.
    pub fn serves(&self, name: &str) -> bool {
        self.chosen.as_ref().is_none_or(|c| c.contains(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded built-ins' names.
    fn known() -> Vec<&'static str> {
        crate::plugin::builtin::COMPONENTS
            .iter()
            .map(|(name, _)| *name)
            .collect()
    }

    #[test]
    fn names_and_groups_choose_tools() {
        let s = BuiltinSelection::parse(Some("exec, scp_listdir"), &known()).unwrap();
        assert!(s.serves("ssh_execute") && s.serves("scp_listdir"));
        assert!(!s.serves("ssh_connect") && !s.serves("scp_remove"));
        let s = BuiltinSelection::parse(Some("files"), &known()).unwrap();
        assert!(s.serves("scp_disk_usage") && !s.serves("ssh_execute"));
        for everything in [None, Some(""), Some(" , "), Some("all"), Some("exec all")] {
            let s = BuiltinSelection::parse(everything, &known()).unwrap();
            assert!(known().iter().all(|t| s.serves(t)), "{everything:?}");
        }
    }

    #[test]
    fn every_group_names_embedded_tools_and_every_tool_has_a_group() {
        let known = known();
        for (group, tools) in GROUPS {
            assert!(tools.iter().all(|t| known.contains(t)), "{group}");
        }
        for tool in &known {
            assert!(
                GROUPS.iter().any(|(_, tools)| tools.contains(tool)),
                "{tool}"
            );
        }
    }

    #[test]
    fn an_unknown_entry_is_refused_naming_what_exists() {
        let e = BuiltinSelection::parse(Some("ssh_exec"), &known()).unwrap_err();
        assert!(e.contains("\"ssh_exec\"") && e.contains("ssh_execute") && e.contains("files"));
    }
}
