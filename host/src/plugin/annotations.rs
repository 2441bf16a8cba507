//! What the host advertises about a tool's behaviour (MCP's `readOnlyHint`,
//! `destructiveHint`, `idempotentHint`, `openWorldHint`). A component declares its own
//! hints, but clients may act on them (e.g. run a "read-only" tool without asking), so
//! the host never advertises a tool as more harmless than its imports and grant scope
//! allow: a tool may declare itself more careful than that, never less.

use super::capability::Capability;
use super::scope::Scope;
use super::tool_spec::ToolSpec;

/// The hints to advertise for a tool that declared `spec`'s, imports `capabilities` and
/// is limited by `scope`.
pub fn advertised(mut spec: ToolSpec, capabilities: &[Capability], scope: &Scope) -> ToolSpec {
    let imports = |what: fn(Capability) -> bool| capabilities.iter().any(|&c| what(c));
    // A read-only scope refuses every change, whatever the imports.
    if imports(Capability::can_change) && !scope.read_only {
        spec.read_only = false;
        spec.destructive = true;
        spec.idempotent = false;
    }
    if imports(Capability::reaches_remote) {
        spec.open_world = true;
    }
    spec
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;

    fn claims_harmless() -> ToolSpec {
        ToolSpec {
            title: None,
            description: "d".into(),
            input_schema: Map::new(),
            output_schema: None,
            read_only: true,
            destructive: false,
            idempotent: true,
            open_world: false,
        }
    }

    fn caps(list: &[&str]) -> Vec<Capability> {
        list.iter()
            .map(|c| Capability::from_name(c).unwrap())
            .collect()
    }

    #[test]
    fn a_tool_that_can_change_things_is_not_advertised_as_harmless() {
        for cap in ["exec", "remote-write", "transfer"] {
            let spec = advertised(claims_harmless(), &caps(&[cap]), &Scope::default());
            assert!(
                !spec.read_only && spec.destructive && !spec.idempotent && spec.open_world,
                "{cap}: {spec:?}"
            );
        }
    }

    #[test]
    fn read_only_scopes_and_reading_imports_keep_the_declared_hints() {
        let read_only = Scope {
            read_only: true,
            ..Scope::default()
        };
        let spec = advertised(claims_harmless(), &caps(&["exec", "transfer"]), &read_only);
        assert!(spec.read_only && !spec.destructive && spec.idempotent);
        let spec = advertised(
            claims_harmless(),
            &caps(&["remote-read", "local-read"]),
            &Scope::default(),
        );
        assert!(spec.read_only && !spec.destructive && spec.idempotent && spec.open_world);
        let spec = advertised(claims_harmless(), &caps(&["local-read"]), &Scope::default());
        assert!(!spec.open_world, "nothing remote: as declared");
    }

    #[test]
    fn a_tool_may_declare_itself_more_careful() {
        let careful = ToolSpec {
            read_only: false,
            destructive: true,
            idempotent: false,
            open_world: true,
            ..claims_harmless()
        };
        let spec = advertised(careful, &caps(&["remote-read"]), &Scope::default());
        assert!(!spec.read_only && spec.destructive && !spec.idempotent && spec.open_world);
    }
}
