//! The tool registry: which components are loaded and which tools they provide, under
//! their public (prefixed) names. Built-in components are embedded in the binary.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;

use super::annotations::advertised;
use super::bindings::exports::mcpssh::plugin::tool;
use super::builtin;
use super::grants::{GrantFile, component_files};
use super::runtime::{CompiledComponent, Runtime};
use super::selection::BuiltinSelection;
use super::tool_spec::ToolSpec;
use crate::trusted_file;

/// The largest component file loaded from the tools folder.
const MAX_COMPONENT_BYTES: u64 = 256 * 1024 * 1024;

/// Components of the tools folder prepared and described at the same time.
const LOADING_AT_ONCE: usize = 8;

/// One tool, and the component that serves it.
pub struct ToolEntry {
    /// The name clients see (with the configured prefix).
    pub public_name: String,
    /// The name the component knows it by.
    pub name: String,
    pub spec: ToolSpec,
    pub component: Arc<CompiledComponent>,
    /// Where the component came from (`builtin:<name>` or a file path).
    pub source: String,
}

/// Every tool served, in a stable order.
pub struct Registry {
    entries: Vec<ToolEntry>,
    /// Components of the tools folder that were refused, with the reason.
    load_errors: Vec<String>,
}

pub use crate::tool_name::check_tool_name;

impl Registry {
    /// Loads the built-in components and gathers their tools under `prefix`.
    pub async fn load_builtins(
        runtime: Arc<Runtime>,
        prefix: &str,
        selection: &BuiltinSelection,
    ) -> Result<Registry> {
        // A built-in may import every capability the host provides.
        let every_capability = |_| true;
        let served: Vec<&(&str, &[u8])> = builtin::COMPONENTS
            .iter()
            .filter(|(label, _)| selection.serves(label))
            .collect();
        // Compile (or load from cache) in parallel: a cold start compiles every component.
        let compiled = std::thread::scope(|scope| {
            let handles: Vec<_> = served
                .iter()
                .map(|(label, bytes)| {
                    let runtime = &runtime;
                    scope.spawn(move || {
                        runtime.prepare_builtin(
                            &format!("builtin:{label}"),
                            bytes,
                            builtin::precompiled(label),
                            &every_capability,
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| anyhow!("a compile thread panicked"))?)
                .collect::<Result<Vec<_>>>()
        })?;
        let mut registry = Registry {
            entries: Vec::new(),
            load_errors: Vec::new(),
        };
        for ((label, _), component) in served.into_iter().zip(compiled) {
            registry
                .add_component(&runtime, prefix, format!("builtin:{label}"), component)
                .await?;
        }
        Ok(registry)
    }

    /// Asks a component for its tools and adds them, refusing invalid or clashing names.
    pub async fn add_component(
        &mut self,
        runtime: &Runtime,
        prefix: &str,
        source: String,
        component: CompiledComponent,
    ) -> Result<()> {
        let described = describe(runtime, &source, component).await?;
        self.add_described(prefix, source, described)
    }

    /// Adds the tools a component described, refusing invalid or clashing names.
    fn add_described(&mut self, prefix: &str, source: String, described: Described) -> Result<()> {
        let Described {
            component,
            descriptors,
        } = described;
        let taken: BTreeSet<&str> = self
            .entries
            .iter()
            .map(|e| e.public_name.as_str())
            .collect();
        let mut new_entries = Vec::new();
        for d in descriptors {
            check_tool_name(&d.name)?;
            let public_name = format!("{prefix}{}", d.name);
            check_tool_name(&public_name)?;
            if taken.contains(public_name.as_str())
                || new_entries
                    .iter()
                    .any(|e: &ToolEntry| e.public_name == public_name)
            {
                bail!("{source}: the tool name {public_name} is already taken");
            }
            let name = d.name.clone();
            let spec = ToolSpec::from_descriptor(d)?;
            let spec = advertised(spec, &component.capabilities, &component.scope);
            new_entries.push(ToolEntry {
                public_name,
                name,
                spec,
                component: component.clone(),
                source: source.clone(),
            });
        }
        self.entries.extend(new_entries);
        Ok(())
    }

    /// Loads the user's components from `dir`. A component that cannot be loaded (not a
    /// component, an ungranted import, a clashing name, a file another user could
    /// change, not the component its grant file pins) is reported and skipped; a folder
    /// another user could change is refused as a whole.
    pub async fn load_folder(
        &mut self,
        runtime: &Arc<Runtime>,
        prefix: &str,
        dir: &Path,
    ) -> Result<()> {
        let files = component_files(dir)?;
        if let Err(e) = trusted_file::check_folder(dir) {
            self.refuse(&dir.display().to_string(), format!("{e:#}"));
            return Ok(());
        }
        // Components are prepared and described several at once (a slow one costs the
        // load-time limit once, not once per component), then added in file order, so
        // which of two clashing names wins does not depend on timing.
        let described: Vec<(String, Result<Described>)> = futures::stream::iter(files)
            .map(|path| async move {
                let source = path.display().to_string();
                let described = prepare_and_describe(runtime, &path, &source).await;
                (source, described)
            })
            .buffered(LOADING_AT_ONCE)
            .collect()
            .await;
        for (source, described) in described {
            match described.and_then(|d| self.add_described(prefix, source.clone(), d)) {
                Err(e) => self.refuse(&source, format!("{e:#}")),
                Ok(()) => tracing::info!(component = %source, "custom tool loaded"),
            }
        }
        Ok(())
    }

    /// Records why `source` was not loaded, and logs it.
    fn refuse(&mut self, source: &str, message: String) {
        tracing::warn!(component = %source, "custom tool not loaded: {message}");
        self.load_errors.push(message);
    }

    /// A registry with this one's built-in tools only (shared, not recompiled), ready for
    /// the tools folder to be loaded again.
    pub fn builtins_only(&self) -> Registry {
        Registry {
            entries: self
                .entries
                .iter()
                .filter(|e| e.source.starts_with("builtin:"))
                .map(|e| ToolEntry {
                    public_name: e.public_name.clone(),
                    name: e.name.clone(),
                    spec: e.spec.clone(),
                    component: e.component.clone(),
                    source: e.source.clone(),
                })
                .collect(),
            load_errors: Vec::new(),
        }
    }

    /// Why components of the tools folder were refused.
    pub fn load_errors(&self) -> &[String] {
        &self.load_errors
    }

    /// Applies the user's policy to the built-ins: drops the tools it refuses on every
    /// host, and serves `ssh_execute` a second time as the read-only variant when the
    /// policy enables it (the gate then lets it run only read-only commands, so its
    /// read-only hint is honest).
    pub fn apply_policy(&mut self, policy: &crate::policy::Policy, prefix: &str) {
        self.entries.retain(|e| {
            let name = e.public_name.strip_prefix(prefix).unwrap_or(&e.public_name);
            !policy.refuses_everywhere(name)
        });
        if !policy.readonly_tool {
            return;
        }
        let Some(exec) = self
            .entries
            .iter()
            .find(|e| e.source == "builtin:ssh_execute" && e.name == "ssh_execute")
        else {
            return;
        };
        let mut spec = exec.spec.clone();
        spec.title = Some("Run a read-only command".into());
        spec.description =
            "Like ssh_execute, for read-only commands only (the policy's allow-list: \
                            uname, df, ls, cat, systemctl status, ...; no shell operators)."
                .into();
        spec.read_only = true;
        spec.destructive = false;
        spec.idempotent = true;
        let entry = ToolEntry {
            public_name: format!("{prefix}{}", crate::policy::READONLY_EXEC_TOOL),
            name: exec.name.clone(),
            spec,
            component: exec.component.clone(),
            source: exec.source.clone(),
        };
        self.entries.push(entry);
    }

    pub fn get(&self, public_name: &str) -> Option<&ToolEntry> {
        self.entries.iter().find(|e| e.public_name == public_name)
    }

    pub fn tools(&self) -> &[ToolEntry] {
        &self.entries
    }
}

/// A component and the tools it says it provides.
struct Described {
    component: Arc<CompiledComponent>,
    descriptors: Vec<tool::Descriptor>,
}

/// Asks `component` (named `source`) for its tools, within the load-time limit.
async fn describe(
    runtime: &Runtime,
    source: &str,
    component: CompiledComponent,
) -> Result<Described> {
    let component = Arc::new(component);
    tracing::debug!(component = %source, "describing the component");
    let descriptors = runtime.describe(&component).await;
    tracing::debug!(component = %source, ok = descriptors.is_ok(), "describe() ended");
    let descriptors = descriptors.with_context(|| source.to_string())?;
    if descriptors.is_empty() {
        bail!("{source} describes no tool");
    }
    Ok(Described {
        component,
        descriptors,
    })
}

/// Prepares the tools folder's component at `path` (named `source`) and describes it.
async fn prepare_and_describe(
    runtime: &Arc<Runtime>,
    path: &Path,
    source: &str,
) -> Result<Described> {
    // Reading, checking and compiling block: on a thread of their own, so the server's
    // worker goes on serving calls while a reload compiles.
    let (runtime_for, path_for, source_for) =
        (runtime.clone(), path.to_path_buf(), source.to_string());
    let component =
        tokio::task::spawn_blocking(move || prepare_file(&runtime_for, &path_for, &source_for))
            .await
            .map_err(|_| anyhow!("{source}: loading it panicked"))??;
    describe(runtime, source, component).await
}

/// Reads the component at `path` (named `source`) with its grant file, checks both, and
/// compiles it under its grants.
fn prepare_file(runtime: &Runtime, path: &Path, source: &str) -> Result<CompiledComponent> {
    let grants = GrantFile::for_component(path)?;
    let bytes = trusted_file::read_trusted(path, "the component", MAX_COMPONENT_BYTES)?
        .ok_or_else(|| anyhow!("{source} was removed while loading"))?;
    grants.check_pin(path, &bytes)?;
    runtime.prepare(
        source,
        &bytes,
        &|capability| grants.allows(capability),
        grants.scope.clone(),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::plugin::state::HostServices;

    #[test]
    fn tool_names_follow_mcp_rules() {
        assert!(check_tool_name("ssh_execute").is_ok());
        assert!(check_tool_name("a.b-c_D9").is_ok());
        assert!(check_tool_name("").is_err());
        assert!(check_tool_name("has space").is_err());
        assert!(check_tool_name("slash/no").is_err());
        assert!(check_tool_name(&"x".repeat(129)).is_err());
        assert!(check_tool_name(&"x".repeat(128)).is_ok());
    }

    /// Compiling a tools folder's component leaves the async thread free: a ticker task on a
    /// one-thread runtime keeps ticking while the component compiles (no code cache).
    #[tokio::test(flavor = "current_thread")]
    async fn compiling_a_folder_component_does_not_hold_up_the_async_thread() {
        use std::sync::atomic::{AtomicU32, Ordering};

        let runtime = Arc::new(Runtime::new(HostServices::for_tests()).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let wasm = builtin::COMPONENTS
            .iter()
            .find(|(name, _)| *name == "ssh_execute")
            .map(|(_, bytes)| *bytes)
            .unwrap();
        std::fs::write(dir.path().join("my_exec.wasm"), wasm).unwrap();
        std::fs::write(dir.path().join("my_exec.toml"), "grants = [\"exec\"]\n").unwrap();

        let ticks = Arc::new(AtomicU32::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let mut registry = Registry {
            entries: Vec::new(),
            load_errors: Vec::new(),
        };
        let started = std::time::Instant::now();
        registry
            .load_folder(&runtime, "custom_", dir.path())
            .await
            .unwrap();
        let took = started.elapsed();
        ticker.abort();
        assert!(
            registry.load_errors().is_empty(),
            "{:?}",
            registry.load_errors()
        );
        assert!(
            registry.get("custom_ssh_execute").is_some(),
            "the component was loaded"
        );
        // A tick needs at least 1 ms; a blocked thread gives none while it compiles.
        let expected = (took.as_millis() as u32) / 4;
        let seen = ticks.load(Ordering::Relaxed);
        assert!(
            seen >= expected,
            "{seen} ticks in {took:?} of loading: the async thread was held up"
        );
    }
}
