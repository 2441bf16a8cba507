//! `ssh_connect`: open (or reuse) an SSH session. Imports only `mcpssh:plugin/session`.

use mcpssh_sdk::bindings::mcpssh::plugin::session::{
    self, ConnectOutcome, SessionInfo, ShellInfo, Target,
};
use mcpssh_sdk::{JsonSchema, Tool, ToolError, ToolInfo, validate};
use serde::{Deserialize, Serialize};

const DESCRIPTION: &str = "\
Open (or reuse) an SSH session. Every argument is optional: what is left out comes from the \
server's configuration and ~/.ssh/config, and the other tools connect on demand, so this call \
is needed only to reach another host or check one. Returns `session` (pass it as `host` to \
other tools when several are open) and the host key fingerprint. Credentials never pass \
through this tool.";

/// Where to connect; anything left out comes from the configuration.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectArgs {
    /// ~/.ssh/config alias, host name or IP.
    pub host: Option<String>,
    /// Synonym of `host`.
    pub hostname: Option<String>,
    // Default (for both): the configured one, so left out of the schema's prose.
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i64>,
    pub username: Option<String>,
    /// Private key on the machine running mcpssh.
    pub key_filename: Option<String>,
}

/// The open session.
#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ConnectOutput {
    /// Always true.
    pub success: bool,
    /// The session's name.
    pub session: String,
    /// The host connected to.
    pub host: String,
    /// The port connected to.
    pub port: u16,
    /// The remote user name.
    pub username: String,
    /// The server's SSH identification string, e.g. `SSH-2.0-OpenSSH_9.2p1`.
    pub server_version: String,
    /// The host key algorithm, e.g. `ssh-ed25519`.
    pub host_key_algorithm: String,
    /// The host key fingerprint: `SHA256:` followed by unpadded base64.
    pub host_key_fingerprint: String,
    /// True when an open session to the same target was reused.
    pub reused: bool,
    /// True when the host key was not known before and has now been recorded.
    pub new_host_key_recorded: bool,
    /// The names of all open sessions, this one included (pass one as `host` to the other
    /// tools).
    pub open_sessions: Vec<String>,
    /// The remote user's login shell (`family`: `posix`, `csh`, `fish`, `other`, `cmd`,
    /// `powershell` or `unknown`; `path`): commands are written in its syntax.
    pub shell: Option<Shell>,
    /// A one-line summary.
    pub message: String,
}

/// A login shell.
#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Shell {
    /// The shell's family.
    pub family: String,
    /// The shell as the server reported it.
    pub path: String,
}

/// The `ssh_connect` tool.
pub struct ConnectTool;

impl Tool for ConnectTool {
    type Args = ConnectArgs;
    type Output = ConnectOutput;

    fn descriptor() -> ToolInfo {
        ToolInfo::new("ssh_connect", DESCRIPTION)
            .title("Connect to an SSH server")
            .read_only(false)
            .destructive(false)
            .idempotent(true)
            .open_world(true)
    }

    fn run(args: ConnectArgs) -> Result<ConnectOutput, ToolError> {
        let target = target(args)?;
        let outcome = session::connect(&target)?;
        let open = session::open_sessions();
        // Best effort: the session is open whatever this says.
        let shell = session::login_shell(Some(&outcome.info.name)).ok();
        Ok(shape(outcome, &open, shell))
    }
}

/// Checks the arguments and turns them into the host's `target`.
fn target(args: ConnectArgs) -> Result<Target, ToolError> {
    for (field, value) in [("host", &args.host), ("hostname", &args.hostname)] {
        if let Some(value) = value {
            validate::session_name(field, value)?;
            if value.starts_with('-') {
                return Err(ToolError::invalid_argument(
                    field,
                    format!("`{field}` must not start with `-`"),
                ));
            }
        }
    }
    let host = match (args.host, args.hostname) {
        (Some(host), Some(hostname)) if host != hostname => {
            return Err(ToolError::invalid_argument(
                "host",
                format!(
                    "`host` ({host:?}) and `hostname` ({hostname:?}) name different hosts; \
                     give only one of them"
                ),
            ));
        }
        (host, hostname) => host.or(hostname),
    };
    let port = args.port.map(|p| validate::port("port", p)).transpose()?;
    if let Some(user) = &args.username {
        validate::non_empty("username", user)?;
        validate::single_word("username", user)?;
    }
    if let Some(key) = &args.key_filename {
        validate::non_empty("key_filename", key)?;
        validate::no_control_chars("key_filename", key)?;
    }
    Ok(Target {
        host,
        port,
        username: args.username,
        key_filename: args.key_filename,
    })
}

/// Shapes the host's answer and the open sessions after it into the tool result.
fn shape(outcome: ConnectOutcome, open: &[SessionInfo], shell: Option<ShellInfo>) -> ConnectOutput {
    let info = outcome.info;
    let open_sessions: Vec<String> = open.iter().map(|s| s.name.clone()).collect();
    let mut message = if outcome.reused {
        format!(
            "Reusing the open SSH session `{}` to {}@{}:{} ({}).",
            info.name, info.username, info.host, info.port, info.server_version
        )
    } else {
        format!(
            "Connected to {}@{}:{} ({}) as session `{}`.",
            info.username, info.host, info.port, info.server_version, info.name
        )
    };
    message.push_str(&format!(
        " Host key: {} {}.",
        info.host_key_algorithm, info.host_key_fingerprint
    ));
    if outcome.new_host_key_recorded {
        message.push_str(" This host key was not known before and has been recorded.");
    }
    if let Some(shell) = shell.as_ref().filter(|s| s.family != "posix") {
        message.push_str(&format!(
            " The login shell is {} ({}): write commands in its syntax.",
            shell.path, shell.family
        ));
    }
    if open_sessions.len() > 1 {
        message.push_str(&format!(
            " {} sessions are open ({}): pass host \"{}\" to the other tools to use this one.",
            open_sessions.len(),
            open_sessions.join(", "),
            info.name
        ));
    }
    ConnectOutput {
        success: true,
        session: info.name,
        host: info.host,
        port: info.port,
        username: info.username,
        server_version: info.server_version,
        host_key_algorithm: info.host_key_algorithm,
        host_key_fingerprint: info.host_key_fingerprint,
        reused: outcome.reused,
        new_host_key_recorded: outcome.new_host_key_recorded,
        open_sessions,
        shell: shell.map(|s| Shell {
            family: s.family,
            path: s.path,
        }),
        message,
    }
}

mcpssh_sdk::export_tools!(ConnectTool);

#[cfg(test)]
mod tests {
    use super::*;
    use mcpssh_sdk::testing::session_info;
    use mcpssh_sdk::{check_tool, input_schema};
    use serde_json::{Value, json};

    fn error_of(args: &str) -> Value {
        mcpssh_sdk::testing::refusal::<ConnectTool>(args)
    }

    #[test]
    fn descriptor_is_valid() {
        check_tool::<ConnectTool>().unwrap();
        let d = mcpssh_sdk::descriptor::<ConnectTool>();
        assert_eq!(d.name, "ssh_connect");
        assert!(!d.read_only && !d.destructive && d.idempotent && d.open_world);
    }

    #[test]
    fn schema_lists_the_contract_arguments() {
        let s = input_schema::<ConnectArgs>();
        let props: Vec<&String> = s["properties"].as_object().unwrap().keys().collect();
        assert_eq!(
            props,
            ["host", "hostname", "key_filename", "port", "username"]
        );
        assert_eq!(s["properties"]["host"]["type"], "string");
        assert_eq!(s["additionalProperties"], false);
        assert!(s.get("required").is_none());
        assert_eq!(s["properties"]["port"]["minimum"], 1);
        assert_eq!(s["properties"]["port"]["maximum"], 65535);
    }

    #[test]
    fn all_arguments_optional() {
        let t = target(ConnectArgs::default()).unwrap();
        assert_eq!(t.host, None);
        assert_eq!(t.port, None);
    }

    fn target_of(json: &str) -> Result<Target, ToolError> {
        target(mcpssh_sdk::parse_args(json)?)
    }

    #[test]
    fn host_and_hostname_are_synonyms() {
        for args in [
            r#"{"host": "web1"}"#,
            r#"{"hostname": "web1"}"#,
            r#"{"host": "web1", "hostname": "web1"}"#,
        ] {
            assert_eq!(
                target_of(args).unwrap().host.as_deref(),
                Some("web1"),
                "{args}"
            );
        }
        let e = error_of(r#"{"host": "web1", "hostname": "db1"}"#);
        assert_eq!(e["error_kind"], "invalid-argument");
        assert_eq!(e["field"], "host");
        assert_eq!(
            e["error"],
            "`host` (\"web1\") and `hostname` (\"db1\") name different hosts; give only one of them"
        );
    }

    #[test]
    fn target_from_arguments() {
        let t = target(ConnectArgs {
            host: None,
            hostname: Some("example.org".into()),
            port: Some(2222),
            username: Some("deploy".into()),
            key_filename: Some("~/.ssh/id_ed25519".into()),
        })
        .unwrap();
        assert_eq!(t.host.as_deref(), Some("example.org"));
        assert_eq!(t.port, Some(2222));
        assert_eq!(t.username.as_deref(), Some("deploy"));
        assert_eq!(t.key_filename.as_deref(), Some("~/.ssh/id_ed25519"));
    }

    #[test]
    fn bad_arguments_name_the_field() {
        for (args, field) in [
            (r#"{"port": 0}"#, "port"),
            (r#"{"port": 65536}"#, "port"),
            (r#"{"port": "22"}"#, "port"),
            (r#"{"hostname": ""}"#, "hostname"),
            (r#"{"hostname": "a b"}"#, "hostname"),
            (r#"{"hostname": "-oProxyCommand=x"}"#, "hostname"),
            (r#"{"host": ""}"#, "host"),
            (r#"{"host": "a b"}"#, "host"),
            (r#"{"host": "a\nb"}"#, "host"),
            (r#"{"host": "-oProxyCommand=x"}"#, "host"),
            (r#"{"host": 1}"#, "host"),
            (r#"{"host": "ok", "hostname": "a b"}"#, "hostname"),
            (r#"{"username": " "}"#, "username"),
            (r#"{"key_filename": ""}"#, "key_filename"),
            (r#"{"session": "x"}"#, "session"),
        ] {
            let e = error_of(args);
            assert_eq!(e["error_kind"], "invalid-argument", "{args}");
            assert_eq!(e["field"], field, "{args}: {e}");
        }
        assert_eq!(
            error_of(r#"{"port": 0}"#)["error"],
            "`port` must be between 1 and 65535, got 0"
        );
    }

    fn outcome(reused: bool, new_key: bool) -> ConnectOutcome {
        ConnectOutcome {
            info: session_info("default"),
            reused,
            new_host_key_recorded: new_key,
        }
    }

    #[test]
    fn shapes_a_new_connection() {
        let out = serde_json::to_value(shape(
            outcome(false, true),
            &[session_info("default")],
            None,
        ))
        .unwrap();
        assert_eq!(
            out,
            json!({
                "success": true, "session": "default", "host": "example.org", "port": 22,
                "username": "deploy", "server_version": "SSH-2.0-OpenSSH_9.2p1",
                "host_key_algorithm": "ssh-ed25519", "host_key_fingerprint": "SHA256:abc",
                "shell": null,
                "reused": false, "new_host_key_recorded": true, "open_sessions": ["default"],
                "message": "Connected to deploy@example.org:22 (SSH-2.0-OpenSSH_9.2p1) as session `default`. Host key: ssh-ed25519 SHA256:abc. This host key was not known before and has been recorded."
            })
        );
    }

    #[test]
    fn a_login_shell_of_another_family_is_named_in_the_message() {
        let fish = ShellInfo {
            family: "fish".into(),
            path: "/usr/bin/fish".into(),
        };
        let out = shape(
            outcome(false, false),
            &[session_info("default")],
            Some(fish),
        );
        assert_eq!(out.shell.as_ref().unwrap().family, "fish");
        assert!(
            out.message.ends_with(
                " The login shell is /usr/bin/fish (fish): write commands in its syntax."
            ),
            "{}",
            out.message
        );
        let bash = ShellInfo {
            family: "posix".into(),
            path: "/bin/bash".into(),
        };
        let out = shape(
            outcome(false, false),
            &[session_info("default")],
            Some(bash),
        );
        assert!(!out.message.contains("login shell"), "{}", out.message);
    }

    #[test]
    fn shapes_a_reused_connection() {
        let out = shape(outcome(true, false), &[session_info("default")], None);
        assert!(out.reused);
        assert!(
            out.message
                .starts_with("Reusing the open SSH session `default`")
        );
        assert!(!out.message.contains("sessions are open"));
    }

    #[test]
    fn lists_the_open_sessions() {
        let out = shape(
            outcome(false, false),
            &[session_info("db1"), session_info("default")],
            None,
        );
        assert_eq!(out.open_sessions, ["db1", "default"]);
        assert!(
            out.message.ends_with(
                " 2 sessions are open (db1, default): pass host \"default\" to the other tools to use this one."
            ),
            "{}",
            out.message
        );
        let schema = mcpssh_sdk::output_schema::<ConnectOutput>();
        assert_eq!(schema["properties"]["open_sessions"]["type"], "array");
        assert_eq!(
            schema["properties"]["open_sessions"]["items"]["type"],
            "string"
        );
        assert!(
            schema["required"]
                .as_array()
                .unwrap()
                .contains(&json!("open_sessions"))
        );
    }
}
