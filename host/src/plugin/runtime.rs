//! The wasmtime runtime: one engine with epoch interruption, the linker holding the
//! host's capability interfaces and a WASI that grants nothing, compiling components
//! (through the authenticated cache of `code_cache`), and the execution of one tool
//! call in a fresh instance: made ahead, in the background after the component's
//! previous call, so that a call starts its guest at once. Each instance serves exactly
//! one call and is thrown away after it: nothing passes from one call to the next. Guest
//! code run while an instance is made ahead (start functions) runs outside any call: no
//! host work (`CallContext::outside_a_call`), the usual limits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Precompiled, Store, UpdateDeadline};

use super::bindings::exports::mcpssh::plugin::tool;
use super::bindings::{ToolComponent, ToolComponentPre};
use super::capability::{self, Capability, PackageImport};
use super::code_cache::CodeCache;
use super::engine_config::engine_config;
use super::scope::Scope;
use super::state::{CallContext, CallState, HostServices};
use super::stop::{StopReason, guard_wasi_poll};
use super::yield_clock::Resumed;
use crate::kept_ahead::KeptAhead;

/// How often the engine's epoch advances: the granularity of CPU limits.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The outcome of one tool call.
#[derive(Debug)]
pub enum CallOutcome {
    /// The tool succeeded: its structured result.
    Success(serde_json::Value),
    /// The tool reported an error: its structured error (sent with `isError`).
    ToolError(serde_json::Value),
    /// The runtime failed the call (trap, limit, malformed output).
    Failed { kind: &'static str, message: String },
}

/// A compiled component, ready to instantiate.
pub struct CompiledComponent {
    pub pre: ToolComponentPre<CallState>,
    /// The narrower limits of its grant file (none for built-ins).
    pub scope: Arc<Scope>,
    /// The capability interfaces it imports.
    pub capabilities: Vec<Capability>,
    /// The instance made for its next call.
    next_instance: KeptAhead<MadeAhead>,
}

/// An instance made ahead of its call, with its store.
struct MadeAhead {
    store: Store<CallState>,
    instance: ToolComponent,
}

/// The engine, linker and compiled-code cache.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    cache: Option<CodeCache>,
    services: Arc<HostServices>,
    ticker_stop: Arc<AtomicBool>,
}

impl Runtime {
    pub fn new(services: Arc<HostServices>) -> Result<Self> {
        let engine = Engine::new(&engine_config())?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        guard_wasi_poll(&mut linker, CallState::guarded_io)?;
        capability::add_to_linker(&mut linker)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (weak_engine, stop) = (engine.weak(), ticker_stop.clone());
        std::thread::Builder::new()
            .name("mcpssh-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak_engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        Ok(Runtime {
            engine,
            linker,
            cache: services
                .settings
                .cache_dir()
                .and_then(|dir| CodeCache::open(&dir)),
            services,
            ticker_stop,
        })
    }

    /// The host's jobs (for the MCP side: job resources and links).
    pub fn jobs(&self) -> &Arc<crate::jobs::Jobs> {
        &self.services.jobs
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles (or loads from the cache) a component and checks that every
    /// `mcpssh:plugin` interface it imports is one the host provides and that `allowed`
    /// accepts; refuses it otherwise, naming what is missing.
    pub fn prepare(
        &self,
        label: &str,
        bytes: &[u8],
        allowed: &dyn Fn(Capability) -> bool,
        scope: Scope,
    ) -> Result<CompiledComponent> {
        let component = self
            .compile(bytes)
            .with_context(|| format!("{label}: not a valid component"))?;
        self.link(label, component, allowed, scope)
    }

    /// As [`Runtime::prepare`] for a built-in tool: its code precompiled by the build
    /// script and embedded in the binary is used when this engine accepts it (same
    /// wasmtime, same settings, a CPU with the features it needs); otherwise the
    /// component is compiled as a custom one is.
    pub fn prepare_builtin(
        &self,
        label: &str,
        bytes: &[u8],
        precompiled: Option<&[u8]>,
        allowed: &dyn Fn(Capability) -> bool,
    ) -> Result<CompiledComponent> {
        let embedded = precompiled
            .filter(|code| Engine::detect_precompiled(code) == Some(Precompiled::Component))
            .and_then(|code| {
                // SAFETY: the code is part of this binary (as trusted as the binary
                // itself): the build script wrote it with `Engine::precompile_component`
                // from the component embedded beside it. `deserialize` checks that it
                // was compiled by this wasmtime with compatible settings.
                match unsafe { Component::deserialize(&self.engine, code) } {
                    Ok(component) => Some(component),
                    Err(e) => {
                        tracing::debug!("{label}: embedded code not usable here, compiling: {e:#}");
                        None
                    }
                }
            });
        let component = match embedded {
            Some(component) => component,
            None => self
                .compile(bytes)
                .with_context(|| format!("{label}: not a valid component"))?,
        };
        self.link(label, component, allowed, Scope::default())
    }

    /// Checks a compiled component's imports against `allowed` and links it.
    fn link(
        &self,
        label: &str,
        component: Component,
        allowed: &dyn Fn(Capability) -> bool,
        scope: Scope,
    ) -> Result<CompiledComponent> {
        let mut capabilities = Vec::new();
        let mut refused = Vec::new();
        for (name, _) in component.component_type().imports(&self.engine) {
            match capability::package_import(name) {
                None | Some(PackageImport::SharedTypes) => {}
                Some(PackageImport::Capability(c)) if allowed(c) => capabilities.push(c),
                Some(PackageImport::Capability(c)) => refused.push(c.name().to_string()),
                Some(PackageImport::Unknown(interface)) => refused.push(interface),
            }
        }
        if !refused.is_empty() {
            return Err(anyhow!(
                "{label} imports {} which {} not granted to it",
                refused.join(", "),
                if refused.len() == 1 { "is" } else { "are" }
            ));
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{label}: imports something the host does not provide"))?;
        let pre = ToolComponentPre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!("{label}: does not export the mcpssh:plugin/tool interface")
            })?;
        Ok(CompiledComponent {
            pre,
            scope: Arc::new(scope),
            capabilities,
            next_instance: KeptAhead::default(),
        })
    }

    fn compile(&self, bytes: &[u8]) -> Result<Component> {
        let Some(cache) = &self.cache else {
            return Ok(Component::new(&self.engine, bytes)?);
        };
        let name = CodeCache::entry_name(&self.engine, bytes);
        if let Some(code) = cache.load(&name) {
            // SAFETY: the cache hands back only code whose tag verified under this
            // installation's secret, so mcpssh itself wrote it with `Component::serialize`,
            // and the entry's name covers this engine's settings and these very bytes.
            match unsafe { Component::deserialize(&self.engine, &code) } {
                Ok(component) => return Ok(component),
                Err(e) => tracing::warn!("ignoring unusable cached code {name}: {e:#}"),
            }
        }
        let component = Component::new(&self.engine, bytes)?;
        cache.store(&name, &component.serialize()?);
        Ok(component)
    }

    /// A fresh store for one call, with memory and CPU limits.
    fn new_store(
        &self,
        component: &CompiledComponent,
        call: CallContext,
        tool: &str,
    ) -> Store<CallState> {
        new_store(&self.engine, &self.services, component, call, tool)
    }

    /// Asks a component for its tool descriptors, within the load-time limit.
    pub async fn describe(&self, component: &CompiledComponent) -> Result<Vec<tool::Descriptor>> {
        let limit = self.services.settings.tool_load_timeout();
        let mut store = self.new_store(component, CallContext::outside_a_call(), "describe");
        let yields = store.data().yields.clone();
        let run = async {
            let instance: ToolComponent = component.pre.instantiate_async(&mut store).await?;
            instance
                .mcpssh_plugin_tool()
                .call_describe(&mut store)
                .await
        };
        let Ok(result) = tokio::time::timeout(limit, Resumed::new(run, yields)).await else {
            return Err(anyhow!(
                "describe() did not finish within the load-time limit of {} s (MCP_SSH_TOOL_LOAD_TIMEOUT); the component is skipped",
                limit.as_secs()
            ));
        };
        store.data().flush_guest_output();
        result.map_err(|e| match e.downcast_ref::<StopReason>() {
            Some(reason) => anyhow!("describe() was stopped: {reason}"),
            None => anyhow!("describe() failed: {e:#}"),
        })
    }

    /// Runs tool `name` of `component` with `arguments` (a JSON object, as text) in a
    /// fresh instance that is thrown away afterwards.
    pub async fn call(
        &self,
        component: &Arc<CompiledComponent>,
        name: &str,
        arguments: &str,
        call: CallContext,
    ) -> CallOutcome {
        let settings = &self.services.settings;
        let wall = Duration::from_secs(settings.tool_timeout);
        let (store, made_ahead) = match component.next_instance.take() {
            Some(MadeAhead {
                mut store,
                instance,
            }) => {
                store.data_mut().begin_call(call, name);
                store.set_epoch_deadline(1);
                (store, Some(instance))
            }
            None => (self.new_store(component, call, name), None),
        };
        let mut after = AfterTheCall {
            store: Some(store),
            next: Some(NextInstance {
                engine: self.engine.clone(),
                services: self.services.clone(),
                component: component.clone(),
            }),
        };
        let store = after.store.as_mut().expect("present until dropped");
        let yields = store.data().yields.clone();
        let run = async {
            let instance = match made_ahead {
                Some(instance) => instance,
                None => component.pre.instantiate_async(&mut *store).await?,
            };
            instance
                .mcpssh_plugin_tool()
                .call_call(&mut *store, name, arguments)
                .await
        };
        // Dropping the call at the deadline stops its host work too (remote commands are
        // killed, partial files removed).
        let Ok(result) = tokio::time::timeout(wall, Resumed::new(run, yields)).await else {
            return CallOutcome::Failed {
                kind: "limit-exceeded",
                message: format!(
                    "the tool {name} ran longer than its time limit of {} s (MCP_SSH_TOOL_TIMEOUT) and was stopped",
                    wall.as_secs()
                ),
            };
        };
        let max_result = usize::try_from(settings.tool_max_result_bytes).unwrap_or(usize::MAX);
        if let Ok(Ok(text) | Err(text)) = &result
            && text.len() > max_result
        {
            return CallOutcome::Failed {
                kind: "limit-exceeded",
                message: format!(
                    "the tool {name} returned {} bytes, more than the limit of {max_result} bytes (MCP_SSH_TOOL_MAX_RESULT_BYTES)",
                    text.len()
                ),
            };
        }
        store.data().flush_guest_output();
        match result {
            Ok(Ok(text)) => match parse_object(&text) {
                Ok(value) => CallOutcome::Success(value),
                Err(e) => CallOutcome::Failed {
                    kind: "internal",
                    message: format!("tool {name} returned a malformed result: {e}"),
                },
            },
            Ok(Err(text)) => match parse_object(&text) {
                Ok(value) => CallOutcome::ToolError(value),
                Err(_) => CallOutcome::ToolError(serde_json::json!({
                    "success": false, "error_kind": "other", "error": text,
                })),
            },
            Err(_) if store.data().limits.memory_refused => CallOutcome::Failed {
                kind: "limit-exceeded",
                message: format!(
                    "the tool {name} needed more than its memory limit of {} MiB (MCP_SSH_TOOL_MEMORY_MB, for all its memories and tables together) and was stopped",
                    store.data().limits.memory_limit / (1024 * 1024)
                ),
            },
            Err(e) => failure(name, &e),
        }
    }
}

/// A fresh store for one call of `component`, with memory and CPU limits.
fn new_store(
    engine: &Engine,
    services: &Arc<HostServices>,
    component: &CompiledComponent,
    call: CallContext,
    tool: &str,
) -> Store<CallState> {
    let state = CallState::new(services.clone(), call, tool, component.scope.clone());
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    let cpu_limit = Duration::from_millis(services.settings.tool_cpu_ms);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |ctx| {
        let state = ctx.data();
        if state.host.call.cancel.is_cancelled() {
            return Err(wasmtime::Error::new(StopReason::Cancelled));
        }
        if state.guest_time() > cpu_limit {
            return Err(wasmtime::Error::new(StopReason::CpuLimit(cpu_limit)));
        }
        state.yields.yielding();
        Ok(UpdateDeadline::Yield(1))
    });
    store
}

/// What making a component's next instance needs.
struct NextInstance {
    engine: Engine,
    services: Arc<HostServices>,
    component: Arc<CompiledComponent>,
}

impl NextInstance {
    /// Makes the component's next instance and keeps it, unless one is kept or being
    /// made. A failure is not reported: the next call makes its instance itself and
    /// reports what goes wrong.
    async fn make(self) {
        let slot = &self.component.next_instance;
        if !slot.claim_making() {
            return;
        }
        let outside = CallContext::outside_a_call();
        let mut store = new_store(
            &self.engine,
            &self.services,
            &self.component,
            outside,
            "made ahead",
        );
        let limit = self.services.settings.tool_load_timeout();
        let yields = store.data().yields.clone();
        let instantiate = self.component.pre.instantiate_async(&mut store);
        let made = tokio::time::timeout(limit, Resumed::new(instantiate, yields));
        match made.await {
            Ok(Ok(instance)) => drop(slot.keep(MadeAhead { store, instance })),
            _ => slot.give_up(),
        }
    }
}

/// What follows a call, off its path: its store is freed (unmapping its memory and stack,
/// about 25 µs of system calls and TLB flushes) and the component's next instance made,
/// in a task of their own that runs once the call's task has handed its answer on;
/// outside a runtime, the store is freed here.
struct AfterTheCall {
    store: Option<Store<CallState>>,
    next: Option<NextInstance>,
}

impl Drop for AfterTheCall {
    fn drop(&mut self) {
        let (store, next) = (self.store.take(), self.next.take());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            drop(runtime.spawn(async move {
                drop(store);
                if let Some(next) = next {
                    next.make().await;
                }
            }));
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// Turns a runtime error into a failed outcome with a clear kind.
fn failure(name: &str, e: &wasmtime::Error) -> CallOutcome {
    if let Some(reason) = e.downcast_ref::<StopReason>() {
        return CallOutcome::Failed {
            kind: reason.kind(),
            message: reason.to_string(),
        };
    }
    let detail = format!("{e:#}");
    tracing::warn!(tool = name, "guest failed: {detail}");
    CallOutcome::Failed {
        kind: "guest-trap",
        message: format!(
            "the tool {name} crashed (a WebAssembly trap): {detail}. The server is unaffected; the call was discarded."
        ),
    }
}

fn parse_object(text: &str) -> Result<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(text)?;
    if !value.is_object() {
        return Err(anyhow!("expected a JSON object"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::builtin;

    fn runtime() -> Runtime {
        Runtime::new(HostServices::for_tests()).unwrap()
    }

    fn wasm(label: &str) -> &'static [u8] {
        builtin::COMPONENTS
            .iter()
            .find(|(name, _)| *name == label)
            .map(|(_, bytes)| *bytes)
            .unwrap()
    }

    #[test]
    fn the_running_engine_accepts_every_embedded_precompiled_builtin() {
        let runtime = runtime();
        assert_eq!(
            builtin::PRECOMPILED.len(),
            builtin::COMPONENTS.len(),
            "the build precompiles every built-in"
        );
        for (label, code) in builtin::PRECOMPILED {
            // SAFETY: code the build script wrote for this binary.
            let loaded = unsafe { Component::deserialize(runtime.engine(), code) };
            assert!(loaded.is_ok(), "{label}: {:#}", loaded.err().unwrap());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_call_the_next_instance_is_made_ahead_and_used_once() {
        let runtime = runtime();
        let allow_all = |_: Capability| true;
        let component = Arc::new(
            runtime
                .prepare_builtin("builtin:ssh_execute", wasm("ssh_execute"), None, &allow_all)
                .unwrap(),
        );
        let refused = |outcome: &CallOutcome| matches!(outcome, CallOutcome::ToolError(_));
        let wait_for_next = || async {
            for _ in 0..200 {
                if component.next_instance.is_kept() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            false
        };
        assert!(!component.next_instance.is_kept(), "none before a call");
        // An argument error: the guest runs, the host is never reached.
        let first = runtime
            .call(&component, "ssh_execute", "{}", CallContext::detached())
            .await;
        assert!(refused(&first), "{first:?}");
        assert!(
            wait_for_next().await,
            "no instance made after the first call"
        );
        let made_at = |slot: &KeptAhead<MadeAhead>| {
            let made = slot.take().unwrap();
            let at = made.store.data().started;
            assert!(slot.keep(made).is_none());
            at
        };
        let first_made = made_at(&component.next_instance);
        let second = runtime
            .call(&component, "ssh_execute", "{}", CallContext::detached())
            .await;
        assert!(refused(&second), "{second:?}");
        assert!(
            wait_for_next().await,
            "no instance made after the second call"
        );
        assert!(
            made_at(&component.next_instance) > first_made,
            "the second call did not take the instance made for it"
        );
    }

    #[test]
    fn precompiled_code_this_engine_cannot_use_falls_back_to_compiling() {
        let runtime = runtime();
        let allow_all = |_: Capability| true;
        // Compiled under other settings (no epoch interruption): deserialize refuses it.
        let other = Engine::new(&wasmtime::Config::new()).unwrap();
        let foreign = other.precompile_component(wasm("ssh_execute")).unwrap();
        for (what, code) in [
            ("other settings", &foreign[..]),
            ("not code", &b"\x7fELF garbage"[..]),
        ] {
            let prepared = runtime.prepare_builtin(
                "builtin:ssh_execute",
                wasm("ssh_execute"),
                Some(code),
                &allow_all,
            );
            assert!(prepared.is_ok(), "{what}: {:#}", prepared.err().unwrap());
        }
    }
}
