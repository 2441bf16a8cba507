//! The user's policy file and audit log: the read-only preset refuses every write path
//! (exec, upload, remove, a custom tool's remote writes) for built-in and custom tools
//! alike, the read-only exec tool runs only read-only commands, a bad policy stops
//! start-up, and the audit log records every call with no secret in it and a hash chain
//! `mcpssh audit verify` checks. A remote file read as a resource is decided and recorded
//! as the download it is. Approval through elicitation is in `python_sdk`.

use std::path::Path;

use mcpssh_testbed::Sshd;
use serde_json::{Value, json};

use crate::common::{Harness, bin};
use crate::custom_tools::component;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A policy file in a fresh directory under the temp dir (the testbed's local root).
fn policy_file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, text).unwrap();
    (dir, s(&path))
}

fn assert_denied_by_policy(error: &Value, policy: &str) {
    assert_eq!(error["error_kind"], "denied", "{error}");
    let message = error["error"].as_str().unwrap();
    assert!(message.contains(policy), "names the policy file: {error}");
}

#[tokio::test]
async fn the_read_only_preset_refuses_every_write_path() {
    let sshd = Sshd::start().unwrap();
    let scratch = sshd.scratch_dir().to_path_buf();
    let existing = scratch.join("keep.txt");
    std::fs::write(&existing, "kept").unwrap();
    let marker = scratch.join("written-by-a-command");
    let (_pdir, policy) = policy_file("preset = \"read-only\"\n");
    let tools = tempfile::tempdir().unwrap();
    std::fs::copy(
        component("remote_ops_tool.wasm"),
        tools.path().join("remote_ops_tool.wasm"),
    )
    .unwrap();
    std::fs::write(
        tools.path().join("remote_ops_tool.toml"),
        "grants = [\"remote-read\", \"remote-write\"]\n",
    )
    .unwrap();
    let tools_dir = s(tools.path());
    let h = Harness::start_with(
        sshd,
        &[
            ("MCP_SSH_POLICY", policy.as_str()),
            ("MCP_SSH_TOOLS_DIR", tools_dir.as_str()),
        ],
    )
    .await;

    // Commands that write, chain or redirect are refused before they run.
    for command in [
        format!("touch {}", s(&marker)),
        format!("ls; touch {}", s(&marker)),
        format!("cat {} > {}", s(&existing), s(&marker)),
        format!("echo $(touch {})", s(&marker)),
    ] {
        let error = h
            .tool_error("ssh_execute", json!({ "command": command }))
            .await;
        assert_denied_by_policy(&error, &policy);
    }
    assert!(!marker.exists(), "no refused command ran");
    // A read-only command runs.
    let out = h.ok("ssh_execute", json!({"command": "uname -s"})).await;
    assert_eq!(out["exit_code"], 0, "{out}");

    // Upload, remove and a custom tool's rename are refused; nothing changed.
    let local = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(local.path(), "new").unwrap();
    let error = h
        .tool_error(
            "scp_upload",
            json!({"local_path": s(local.path()), "remote_path": s(&scratch.join("up.txt"))}),
        )
        .await;
    assert_denied_by_policy(&error, &policy);
    assert!(!scratch.join("up.txt").exists());
    let error = h
        .tool_error("scp_remove", json!({"path": s(&existing)}))
        .await;
    assert_denied_by_policy(&error, &policy);
    let error = h
        .tool_error(
            "remote_op",
            json!({"op": "rename", "path": s(&existing), "to": s(&scratch.join("moved"))}),
        )
        .await;
    assert_denied_by_policy(&error, &policy);
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "kept");
    // Reading is allowed.
    let listed = h
        .ok("remote_op", json!({"op": "list", "path": s(&scratch)}))
        .await;
    assert!(listed["entries"].as_u64().unwrap() >= 1, "{listed}");

    // The read-only exec tool is served, honestly annotated, and runs only read-only
    // commands.
    let readonly = h
        .tools
        .get(&h.name("ssh_execute_readonly"))
        .expect("ssh_execute_readonly is served under a policy");
    let hints = readonly.annotations.as_ref().unwrap();
    assert_eq!(hints.read_only_hint, Some(true));
    assert_eq!(hints.destructive_hint, Some(false));
    let out = h
        .ok("ssh_execute_readonly", json!({"command": "df -k /"}))
        .await;
    assert_eq!(out["exit_code"], 0, "{out}");
    let error = h
        .tool_error(
            "ssh_execute_readonly",
            json!({"command": format!("touch {}", s(&marker))}),
        )
        .await;
    assert_denied_by_policy(&error, &policy);
    assert!(!marker.exists());
}

#[tokio::test]
async fn host_rules_refuse_a_tool_on_one_host_and_cap_limits() {
    let sshd = Sshd::start().unwrap();
    let scratch = sshd.scratch_dir().to_path_buf();
    let victim = scratch.join("victim.txt");
    std::fs::write(&victim, "still here").unwrap();
    let host = sshd.host().to_string();
    let (_pdir, policy) = policy_file(&format!(
        "preset = \"standard\"\nreadonly_tool = false\n[limits]\nmax_output_bytes = 2048\n\
         [[hosts]]\nmatch = [{host:?}]\nrefuse_tools = [\"scp_remove\"]\n[hosts.commands]\ndeny = [\"re:.*\\\\bshred\\\\b.*\"]\n"
    ));
    let h = Harness::start_with(sshd, &[("MCP_SSH_POLICY", policy.as_str())]).await;
    assert!(
        !h.tools.contains_key(&h.name("ssh_execute_readonly")),
        "readonly_tool = false"
    );
    let error = h
        .tool_error("scp_remove", json!({"path": s(&victim)}))
        .await;
    assert_denied_by_policy(&error, &policy);
    assert!(
        error["error"].as_str().unwrap().contains("refuse_tools"),
        "{error}"
    );
    assert!(victim.exists());
    let error = h
        .tool_error(
            "ssh_execute",
            json!({"command": format!("shred -u {}", s(&victim))}),
        )
        .await;
    assert_denied_by_policy(&error, &policy);
    assert!(victim.exists());
    // The preset's deny-list holds too.
    let error = h
        .tool_error("ssh_execute", json!({"command": "sudo reboot"}))
        .await;
    assert_denied_by_policy(&error, &policy);
    // Output is capped at the policy's limit whatever the call asks for.
    let out = h
        .ok(
            "ssh_execute",
            json!({"command": "head -c 100000 /dev/zero | tr '\\0' x", "max_output_bytes": 1000000}),
        )
        .await;
    assert!(out["stdout"].as_str().unwrap().len() < 4096, "capped");
    assert!(
        out["stdout_cut_bytes"].as_u64().unwrap() > 90_000,
        "{}",
        out["stdout_cut_bytes"]
    );
}

#[tokio::test]
async fn a_bad_policy_file_stops_start_up_with_one_line() {
    let sshd = Sshd::start().unwrap();
    for (text, expect) in [
        ("preset = \"lenient\"\n", "line 1"),
        ("[commands]\nallow = [\"re:(\"]\n", "commands.allow"),
        ("local_roots = [\"/proc\"]\n", "local_roots"),
    ] {
        let (_dir, policy) = policy_file(text);
        let stderr = crate::common::start_up_failure(&sshd, &[("MCP_SSH_POLICY", &policy)]).await;
        let line = stderr
            .lines()
            .find(|l| l.starts_with("mcpssh: cannot start"))
            .unwrap_or_else(|| panic!("{stderr}"));
        assert!(
            line.contains(&format!("policy file {policy}")) && line.contains(expect),
            "{text:?}: {line}"
        );
    }
}

#[tokio::test]
async fn the_audit_log_records_every_call_without_secrets_and_verify_detects_an_edit() {
    const SECRETS: &[&str] = &[
        "pw-audit-secret-1",
        "kp-audit-secret-2",
        "stdin-audit-secret-3",
        "env-audit-secret-4",
    ];
    let sshd = Sshd::start().unwrap();
    let scratch = sshd.scratch_dir().to_path_buf();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("audit.log");
    let log_s = s(&log);
    let h = Harness::start_with(
        sshd,
        &[
            ("MCP_SSH_AUDIT_LOG", log_s.as_str()),
            ("MCP_SSH_AUDIT_CHAIN", "true"),
            ("MCP_SSH_PASSWORD", SECRETS[0]),
            ("MCP_SSH_KEY_PASSPHRASE", SECRETS[1]),
        ],
    )
    .await;
    h.ok(
        "ssh_execute",
        json!({"command": "cat; echo \"$AUDITVAR\"", "stdin": SECRETS[2], "env": {"AUDITVAR": SECRETS[3]}}),
    )
    .await;
    h.ok("ssh_execute", json!({"command": "exit 3"})).await;
    let local = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(local.path(), "0123456789").unwrap();
    h.ok(
        "scp_upload",
        json!({"local_path": s(local.path()), "remote_path": s(&scratch.join("a.txt"))}),
    )
    .await;
    h.tool_error("scp_remove", json!({"path": s(&scratch.join("missing"))}))
        .await;
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "one line per call:\n{text}");
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "{secret} is in the audit log:\n{text}"
        );
    }
    let tools: Vec<&str> = lines.iter().map(|l| l["tool"].as_str().unwrap()).collect();
    assert_eq!(
        tools,
        [
            h.name("ssh_execute"),
            h.name("ssh_execute"),
            h.name("scp_upload"),
            h.name("scp_remove")
        ]
    );
    assert_eq!(lines[0]["arguments"]["command"], "cat; echo \"$AUDITVAR\"");
    assert_eq!(lines[0]["arguments"]["env"]["AUDITVAR"], "[redacted]");
    assert_eq!(lines[0]["user"], mcpssh_testbed::TEST_USER);
    assert!(lines[0]["client"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(lines[1]["exit_code"], 3);
    assert_eq!(lines[2]["bytes"], 10);
    assert_eq!(lines[3]["outcome"], "error");
    assert_eq!(lines[3]["error_kind"], "not-found");
    let h_exec = h.name("ssh_execute");
    drop(h);

    let verify = |path: &Path| {
        std::process::Command::new(bin())
            .args(["audit", "verify"])
            .arg(path)
            .output()
            .unwrap()
    };
    let out = verify(&log);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact: 4 lines"));
    // Read back for people: a line per call, in order, no secret.
    let shown = std::process::Command::new(bin())
        .args(["audit", "show"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(shown.status.success());
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    let shown_lines: Vec<&str> = shown.lines().collect();
    assert_eq!(shown_lines.len(), 4, "{shown}");
    assert!(
        shown_lines[0].contains(&h_exec)
            && shown_lines[0].contains("exit 0")
            && shown_lines[0].contains("$ cat; echo"),
        "{shown}"
    );
    assert!(shown_lines[1].contains("exit 3"), "{shown}");
    assert!(shown_lines[2].contains("10 bytes"), "{shown}");
    assert!(shown_lines[3].contains("error (not-found)"), "{shown}");
    for secret in SECRETS {
        assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
    }
    // An edited line is found.
    let edited = logs.path().join("edited.log");
    std::fs::write(&edited, text.replacen("exit 3", "exit 0", 1)).unwrap();
    let out = verify(&edited);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 2") && stderr.contains("edited"),
        "{stderr}"
    );
    // So is a removed one.
    let removed: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&edited, removed.join("\n") + "\n").unwrap();
    assert_eq!(verify(&edited).status.code(), Some(1));
}

/// Approval through MCP elicitation with the official Python SDK as the client
/// (`tests/python/policy_approval.py`): accept runs the command, decline does not (the
/// file it would create never appears), a client without elicitation is refused unless
/// the policy says `when_no_elicitation = "allow"`.
#[test]
fn approval_through_elicitation_with_the_python_sdk() {
    let sshd = Sshd::start().unwrap();
    let output = crate::python_sdk::run_python(&sshd, "policy_approval.py", &[], &[]);
    eprintln!("{output}");
}

/// A remote file read as a resource is the download of its start: the policy's transfer
/// cap bounds it, a host whose rules refuse `scp_download` refuses it, and the audit log
/// records both, so the user sees it like any call.
#[tokio::test]
async fn remote_file_resources_obey_the_policy_and_are_audited() {
    use mcpssh_testbed::rmcp::model::{ReadResourceRequestParams, ResourceContents};

    let sshd = Sshd::start().unwrap();
    let file = sshd.scratch_dir().join("resource.txt");
    std::fs::write(&file, "x".repeat(10_000)).unwrap();
    let uri = format!("sftp://_{}", file.display());
    let (pdir, policy) = policy_file(
        "preset = \"standard\"\n[limits]\nmax_transfer_bytes = 4096\n\
         [[hosts]]\nmatch = [\"refused-*\"]\nrefuse_tools = [\"scp_download\"]\n",
    );
    // An alias for the same server, whose session the policy's host rule names.
    let config = crate::client_setup::write_ssh_config(
        pdir.path(),
        &format!("Host refused-box\n    HostName {}\n", sshd.host()),
    );
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("audit.log");
    let h = Harness::start_with(
        sshd,
        &[
            ("MCP_SSH_POLICY", policy.as_str()),
            ("MCP_SSH_AUDIT_LOG", &s(&log)),
            ("MCP_SSH_CONFIG", &config),
        ],
    )
    .await;
    let read = |uri: String| {
        let peer = h.server.peer().clone();
        async move {
            peer.read_resource(ReadResourceRequestParams::new(uri))
                .await
        }
    };

    // Capped at the policy's transfer limit, not the resource's 1 MiB.
    let capped = read(uri.clone()).await.unwrap();
    let ResourceContents::TextResourceContents { text, .. } = &capped.contents[0] else {
        panic!("text expected: {capped:?}");
    };
    assert!(
        text.starts_with(&"x".repeat(4096))
            && !text.contains(&"x".repeat(4097))
            && text.contains("the file has 10000 bytes; only the first 4096"),
        "{}",
        &text[text.len().saturating_sub(200)..]
    );

    // A session on a host whose rules refuse downloads: the read is refused too.
    let connect = h.ok("ssh_connect", json!({"host": "refused-box"})).await;
    assert_eq!(connect["session"], "refused-box", "{connect}");
    let refused = read(format!("sftp://refused-box{}", file.display()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("refuse_tools") && refused.contains(&policy),
        "{refused}"
    );

    let record = std::fs::read_to_string(&log).unwrap();
    let reads: Vec<Value> = record
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["tool"] == "resources/read")
        .collect();
    assert_eq!(reads.len(), 2, "{record}");
    assert_eq!(reads[0]["arguments"]["uri"], uri.as_str(), "{record}");
    assert_eq!(reads[0]["outcome"], "success", "{record}");
    assert_eq!(reads[0]["bytes"], 4096, "{record}");
    assert_eq!(reads[1]["outcome"], "error", "{record}");
    assert_eq!(reads[1]["error_kind"], "denied", "{record}");
    assert_eq!(reads[1]["session"], "refused-box", "{record}");
    assert_eq!(reads[1]["policy"][0]["decision"], "deny", "{record}");
}

/// `allowed_hosts`: sessions open only to the hosts the user listed (by the name given, or
/// the host name it resolves to through `~/.ssh/config`); the configured host is always
/// allowed. A prompt-injected model cannot take the user's keys, agent and files to a host
/// of an attacker's choosing; a refused connect opens no connection at all.
#[tokio::test]
async fn allowed_hosts_keep_sessions_to_the_listed_hosts() {
    let sshd = Sshd::start().unwrap();
    let (pdir, policy) = policy_file(&format!(
        "preset = \"standard\"\nallowed_hosts = [\"web-*\", {:?}]\n",
        sshd.host()
    ));
    let config = crate::client_setup::write_ssh_config(
        pdir.path(),
        &format!(
            "Host web-1 data\n    HostName {}\nHost elsewhere\n    HostName localhost\n",
            sshd.host()
        ),
    );
    let h = Harness::start_with(
        sshd,
        &[
            ("MCP_SSH_POLICY", policy.as_str()),
            ("MCP_SSH_CONFIG", config.as_str()),
        ],
    )
    .await;
    let logins = |h: &Harness| h.sshd.log().matches("Accepted publickey").count();

    // The configured host (MCP_SSH_HOSTNAME) is allowed.
    assert_eq!(h.exec("echo configured").await["stdout"], "configured\n");
    assert_eq!(logins(&h), 1);

    for request in [
        // An alias whose host is not listed.
        json!({"host": "elsewhere"}),
        // The same machine under a name that is not listed.
        json!({"hostname": "localhost", "port": h.sshd.port()}),
        // A look-alike: `*` does not reach across a dot.
        json!({"host": "web-1.evil.example"}),
    ] {
        let error = h.tool_error("ssh_connect", request.clone()).await;
        assert_denied_by_policy(&error, &policy);
        assert!(
            error["error"].as_str().unwrap().contains("allowed_hosts"),
            "{request}: {error}"
        );
    }
    assert_eq!(logins(&h), 1, "a refused connect opened a connection");

    // Listed by name (any case), and listed by the host an alias resolves to.
    h.ok("ssh_connect", json!({"host": "WEB-1"})).await;
    h.ok("ssh_connect", json!({"host": "data"})).await;
    assert_eq!(logins(&h), 3);
}
