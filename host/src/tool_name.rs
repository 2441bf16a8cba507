//! MCP's rules for tool names, shared by the registry and the policy file.

use anyhow::{Result, bail};

/// Checks a tool name against MCP's rules: 1 to 128 characters of `A-Za-z0-9_.-`.
pub fn check_tool_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 128 {
        bail!("tool name {name:?} must be 1 to 128 characters long");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        bail!(
            "tool name {name:?} contains {c:?}; only A-Z, a-z, 0-9, '_', '-' and '.' are allowed"
        );
    }
    Ok(())
}
