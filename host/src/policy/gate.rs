//! The policy at work in one call: every host function that acts on a host asks its
//! call's [`Gate`] first (built-in and custom tools alike), which decides with the
//! [`Policy`], asks the user through an [`Approver`] when a rule says so, caps the
//! request's limits, and records what it decided for the audit log.
//!
//! This module does not speak MCP: the approver is a callback the MCP layer supplies.

use std::path::Path;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::rules::{NoElicitation, Policy, Request, Verdict};
use crate::error::{HostError, HostResult};
use crate::sessions::SessionPool;
use crate::ssh::TargetRequest;

/// The user's answer to a request for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    Accepted,
    Declined,
    /// The client cannot ask the user (no elicitation), or asking failed.
    Unavailable(String),
}

/// Asks the user to approve an action, showing `message`. Implemented by the MCP layer
/// (form-mode elicitation with no fields: accept or decline, never a secret).
pub trait Approver: Send + Sync {
    fn approve(&self, message: String) -> BoxFuture<'static, Approval>;
}

/// What the gate decided during a call, for the audit log.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CallRecord {
    /// The session, host and user the call acted on (the last one, if several).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// One entry per decision that was not a plain allow under no policy.
    pub decisions: Vec<Decision>,
}

/// One decision of the gate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Decision {
    /// What was asked: `exec`, `connect`, `write`, `upload`, ...
    pub action: String,
    /// `allow`, `deny` or `ask`.
    pub decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// For `ask`: `accepted`, `declined`, `unavailable` or `allowed-without-asking`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<&'static str>,
}

struct Inner {
    policy: Arc<Policy>,
    /// The tool's name without the configured prefix.
    tool: String,
    /// The call came through `ssh_execute_readonly`: only read-only commands run.
    readonly: bool,
    approver: Option<Arc<dyn Approver>>,
    cancel: CancellationToken,
    /// Whether host identities are looked up for the record even without a policy.
    record_identity: bool,
    record: Mutex<CallRecord>,
}

/// One call's view of the policy. Cheap to clone; clones share the record.
#[derive(Clone)]
pub struct Gate {
    inner: Arc<Inner>,
}

/// The tool name of the read-only exec variant.
pub const READONLY_EXEC_TOOL: &str = "ssh_execute_readonly";

impl Gate {
    /// A gate for a call of `tool` (its name without the prefix).
    pub fn new(
        policy: Arc<Policy>,
        tool: &str,
        approver: Option<Arc<dyn Approver>>,
        cancel: CancellationToken,
        record_identity: bool,
    ) -> Gate {
        Gate {
            inner: Arc::new(Inner {
                readonly: tool == READONLY_EXEC_TOOL && policy.readonly_tool,
                policy,
                tool: tool.to_string(),
                approver,
                cancel,
                record_identity,
                record: Mutex::new(CallRecord::default()),
            }),
        }
    }

    /// A gate that allows everything and records nothing (no policy file).
    pub fn open() -> Gate {
        Gate::new(
            Arc::new(Policy::open()),
            "",
            None,
            CancellationToken::new(),
            false,
        )
    }

    /// What was decided so far.
    pub fn record(&self) -> CallRecord {
        self.inner.record.lock().unwrap().clone()
    }

    fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// Before any work: a tool the policy refuses everywhere does not run at all.
    pub async fn check_served(&self) -> HostResult<()> {
        if self.policy().refuses_everywhere(&self.inner.tool) {
            let verdict = Verdict::Deny {
                rule: "refuse_tools".into(),
                reason: format!("the tool {} is refused on every host", self.inner.tool),
            };
            return self.enforce("call", verdict, String::new()).await;
        }
        Ok(())
    }

    /// Opening a session to `requested` (the host or alias the request names; none: the
    /// configured host, `configured`). A host other than the configured one must be among
    /// the policy's `allowed_hosts`, by the name given or the host name it resolves to
    /// through the user's `~/.ssh/config`.
    pub async fn check_connect(
        &self,
        pool: &SessionPool,
        requested: Option<&str>,
        configured: Option<&str>,
    ) -> HostResult<()> {
        let Some(host) = requested.or(configured) else {
            // Nothing to connect to: the connect itself says so.
            return Ok(());
        };
        self.inner.record.lock().unwrap().host = Some(host.to_string());
        // Only a policy that lists hosts needs the name resolved (a read of ~/.ssh/config).
        if let Some(name) = requested.filter(|name| Some(*name) != configured)
            && self.policy().limits_hosts()
        {
            let resolved = pool
                .resolve(&TargetRequest {
                    host: Some(name.to_string()),
                    ..TargetRequest::default()
                })
                .map(|target| target.host)
                .unwrap_or_default();
            if let Some(verdict) = self.policy().refuses_host(&[name, &resolved]) {
                return self.enforce("connect", verdict, String::new()).await;
            }
        }
        let verdict = self
            .policy()
            .decide(&self.inner.tool, &[host], Request::Read);
        self.enforce("connect", verdict, String::new()).await
    }

    /// A request on the open session `session` (`write` names a change). Resolves the
    /// session to its host first, for host rules and the record.
    pub async fn check_remote(
        &self,
        pool: &SessionPool,
        session: Option<&str>,
        action: &str,
        write: Option<&str>,
    ) -> HostResult<()> {
        let Some(names) = self.identify(pool, session).await? else {
            return Ok(());
        };
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let request = match write {
            Some(what) => Request::Write(what),
            None => Request::Read,
        };
        let verdict = self.policy().decide(&self.inner.tool, &names, request);
        let shown = write
            .map(|w| format!("{w} on {}", names.join(" / ")))
            .unwrap_or_default();
        self.enforce(action, verdict, shown).await
    }

    /// Running `command` on `session` (`has_env`: the request sets environment
    /// variables). Also caps `timeout` and `output_limit` at the policy's limits.
    pub async fn check_exec(
        &self,
        pool: &SessionPool,
        session: Option<&str>,
        command: &str,
        has_env: bool,
        timeout: &mut std::time::Duration,
        output_limit: &mut u64,
    ) -> HostResult<()> {
        let limits = &self.policy().limits;
        if let Some(max) = limits.max_timeout_secs {
            *timeout = (*timeout).min(std::time::Duration::from_secs_f64(max));
        }
        if let Some(max) = limits.max_output_bytes {
            *output_limit = (*output_limit).min(max);
        }
        if self.policy().is_open() && !self.inner.readonly {
            self.identify(pool, session).await?;
            return Ok(());
        }
        let names = self.identify(pool, session).await?.unwrap_or_default();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let verdict = self.policy().decide_exec(
            &self.inner.tool,
            &names,
            command,
            has_env,
            self.inner.readonly,
        );
        let shown = format!("run on {}:\n\n{command}", names.join(" / "));
        self.enforce("exec", verdict, shown).await
    }

    /// A transfer on `session` (`upload`: it writes the remote file). Caps `max_size`
    /// at the policy's limit.
    pub async fn check_transfer(
        &self,
        pool: &SessionPool,
        session: Option<&str>,
        upload: bool,
        remote_path: &str,
        max_size: &mut Option<u64>,
    ) -> HostResult<()> {
        if let Some(max) = self.policy().limits.max_transfer_bytes {
            *max_size = Some(max_size.map_or(max, |m| m.min(max)));
        }
        let (action, write) = if upload {
            ("upload", Some(format!("uploading to {remote_path}")))
        } else {
            ("download", None)
        };
        self.check_remote(pool, session, action, write.as_deref())
            .await
    }

    /// A local path of a transfer (resolved): must be under the policy's local roots.
    pub fn check_local(&self, path: &Path) -> HostResult<()> {
        if self.policy().allows_local(path) {
            return Ok(());
        }
        let roots: Vec<String> = self
            .policy()
            .local_roots
            .iter()
            .map(|r| r.display().to_string())
            .collect();
        Err(HostError::Denied(format!(
            "denied by the policy {} (local_roots): {} is outside its local roots {}",
            self.policy().file_name(),
            path.display(),
            roots.join(", ")
        )))
    }

    /// The names host rules match for `session` (session name and host name), once
    /// looked up; none when nothing needs them.
    async fn identify(
        &self,
        pool: &SessionPool,
        session: Option<&str>,
    ) -> HostResult<Option<Vec<String>>> {
        let needed = !self.policy().is_open() || self.inner.readonly;
        if !needed && !self.inner.record_identity {
            return Ok(None);
        }
        let connection = tokio::select! {
            c = pool.get(session) => c,
            _ = self.inner.cancel.cancelled() => Err(HostError::Cancelled),
        };
        let connection = match connection {
            Ok(c) => c,
            Err(e) if needed => return Err(e),
            // Only for the record: the request itself reports the failure.
            Err(_) => return Ok(None),
        };
        let info = &connection.info;
        let mut record = self.inner.record.lock().unwrap();
        record.session = Some(info.name.clone());
        record.host = Some(info.host.clone());
        record.user = Some(info.username.clone());
        Ok(Some(vec![info.name.clone(), info.host.clone()]))
    }

    /// Acts on `verdict`: records it, refuses with the rule named, or asks the user
    /// (showing `shown`).
    async fn enforce(&self, action: &str, verdict: Verdict, shown: String) -> HostResult<()> {
        let file = self.policy().file_name();
        let (decision, rule, approval, result) = match verdict {
            Verdict::Allow => ("allow", None, None, Ok(())),
            Verdict::Deny { rule, reason } => {
                let err = HostError::Denied(format!(
                    "denied by the policy {file} ({rule}): {reason}; the policy is read from that file at start-up and no request can change it"
                ));
                ("deny", Some(rule), None, Err(err))
            }
            Verdict::Ask { rule } => {
                let (approval, result) = self.ask(&rule, &shown).await;
                ("ask", Some(rule), Some(approval), result)
            }
        };
        if !self.policy().is_open() || decision != "allow" {
            self.inner.record.lock().unwrap().decisions.push(Decision {
                action: action.to_string(),
                decision,
                rule,
                approval,
            });
        }
        result
    }

    /// Asks the user to approve what `rule` asks about.
    async fn ask(&self, rule: &str, shown: &str) -> (&'static str, HostResult<()>) {
        let file = self.policy().file_name();
        let message = format!(
            "{tool} asks to {shown}\n\nThe policy {file} ({rule}) asks you to approve this. Accept to run it, decline to refuse it.",
            tool = self.inner.tool
        );
        let approval = match &self.inner.approver {
            Some(approver) => {
                tokio::select! {
                    a = approver.approve(message) => a,
                    _ = self.inner.cancel.cancelled() => return ("cancelled", Err(HostError::Cancelled)),
                }
            }
            None => Approval::Unavailable("this client cannot ask the user".into()),
        };
        match approval {
            Approval::Accepted => ("accepted", Ok(())),
            Approval::Declined => (
                "declined",
                Err(HostError::Denied(format!(
                    "denied: the user declined the request ({rule} in the policy {file} asks for approval)"
                ))),
            ),
            Approval::Unavailable(_)
                if self.policy().when_no_elicitation == NoElicitation::Allow =>
            {
                ("allowed-without-asking", Ok(()))
            }
            Approval::Unavailable(why) => (
                "unavailable",
                Err(HostError::Denied(format!(
                    "denied by the policy {file} ({rule}): this needs the user's approval, and {why} (the client does not support MCP elicitation); \
                     approve it in a client that does, or set when_no_elicitation = \"allow\" in the policy"
                ))),
            ),
        }
    }
}
