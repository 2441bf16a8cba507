//! Robustness: thousands of generated malformed arguments thrown at every built-in tool
//! through a real MCP client, raw garbage written straight to the server's stdin, and a
//! string of every kind of failure in a row.
//! Every call must get an answer (a result or a JSON-RPC error), nothing may panic, the
//! server must keep serving, and its memory must come back down afterwards.
//!
//! Values that name a host are drawn from a fixed list of hostile but local strings: a
//! generated host name would send DNS queries or connections off this machine.

use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use mcpssh_testbed::{CallToolResultExt, Sshd};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRng, TestRunner};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::{Harness, assert_invalid_argument, assert_invalid_params, bin, rss_kib};

/// Generated calls per built-in tool.
const CASES_PER_TOOL: usize = 250;

/// Calls in flight at once.
const IN_FLIGHT: usize = 16;

/// Host strings the generator may use: each hostile in its own way, none leaving 127/8.
const LOCAL_HOSTS: &[&str] = &[
    "127.0.0.1",
    "localhost",
    "",
    "   ",
    "-oProxyCommand=touch /tmp/mcpssh-pwned",
    "evil,*",
    "a\u{0}b",
    "127.0.0.1\n",
    "[127.0.0.1]:22",
    "127.0.0.1:99999",
    "*",
    "!127.0.0.1",
    "|1|abc|def",
    "mcpssh-no-such-session",
];

/// Any JSON value: scalars of every kind (extreme numbers, control characters, NUL,
/// long strings), nested up to a few levels in arrays and objects.
fn any_json() -> impl Strategy<Value = Value> {
    let string = prop_oneof![
        ".{0,40}".prop_map(Value::String),
        "[\\x00-\\x1f\\x7f]{0,8}".prop_map(Value::String),
        (1usize..200_000).prop_map(|n| Value::String("x".repeat(n))),
        Just(Value::String("\u{0}".into())),
        Just(Value::String("~".into())),
        Just(Value::String("/".into())),
        Just(Value::String("..".into())),
        Just(Value::String("\u{202e}\u{feff}".into())),
    ];
    let number = prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(1e308)),
        Just(json!(-0.0)),
        Just(json!(u64::MAX)),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number,
        string,
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Arguments for a tool with the given property names: each property left out or given
/// any value, sometimes with unknown extra keys. Host-naming values come from
/// [`LOCAL_HOSTS`]; strings given as a command become shell comments.
fn arguments_for(properties: Vec<String>) -> impl Strategy<Value = Map<String, Value>> {
    let per_property: Vec<_> = properties
        .into_iter()
        .map(|name| {
            (
                Just(name),
                prop::option::weighted(0.7, any_json()),
                prop::sample::select(LOCAL_HOSTS),
            )
        })
        .collect();
    let extra = prop::collection::btree_map("[a-z_]{1,12}", any_json(), 0..2);
    (per_property, prop::bool::weighted(0.1), extra).prop_map(|(props, add_extra, extra)| {
        let mut args = Map::new();
        for (name, value, host) in props {
            let Some(value) = value else { continue };
            let value = match (name.as_str(), value) {
                ("host" | "hostname", Value::String(_)) => Value::String(host.to_string()),
                ("command", Value::String(s)) => Value::String(format!("# {s}")),
                (_, v) => v,
            };
            args.insert(name, value);
        }
        if add_extra {
            args.extend(extra);
        }
        args
    })
}

#[tokio::test]
async fn thousands_of_malformed_arguments_get_answers_and_the_server_stays_flat() {
    let h = Harness::start_with(
        Sshd::start().unwrap(),
        &[("MCP_SSH_CONNECT_TIMEOUT", "2"), ("MCP_SSH_LOG", "info")],
    )
    .await;
    // Warm up every tool once, so the baseline includes compiled code and a session.
    h.exec("true").await;
    let pid = h.server.pid().unwrap();
    let before = rss_kib(pid);

    // A fixed seed: a failure is reproducible; the cases still cover every tool.
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(proptest::test_runner::RngAlgorithm::ChaCha, &[7; 32]),
    );
    let mut calls: Vec<(String, Map<String, Value>)> = Vec::new();
    let mut names: Vec<_> = h.tools.keys().cloned().collect();
    names.sort();
    for name in &names {
        let schema = &h.tools[name].input_schema;
        let properties: Vec<String> = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let strategy = arguments_for(properties);
        for _ in 0..CASES_PER_TOOL {
            let args = strategy.new_tree(&mut runner).unwrap().current();
            calls.push((name.clone(), args));
        }
    }

    let total = calls.len();
    let answered = futures::stream::iter(calls)
        .map(|(name, args)| {
            let server = &h.server;
            async move {
                let shown = serde_json::to_string(&args).unwrap();
                let shown: String = shown.chars().take(300).collect();
                match server.call_tool_raw(&name, Value::Object(args)).await {
                    Ok(Ok(_result)) => 1,
                    Ok(Err(_json_rpc_error)) => 1,
                    Err(e) => panic!("{name} {shown}: no answer: {e:#}"),
                }
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .fold(0usize, |n, one| async move { n + one })
        .await;
    assert_eq!(answered, total);

    assert!(h.server.is_running(), "the server died");
    h.assert_still_serving().await;
    let log = h.server.stderr();
    assert!(!log.contains("panicked"), "a panic in the log:\n{log}");
    assert!(
        !std::path::Path::new("/tmp/mcpssh-pwned").exists(),
        "a host string reached a shell"
    );
    // Memory comes back down: allow for allocator slack, not for growth per call.
    let after = rss_kib(pid);
    println!("{total} calls; server RSS {before} KiB before, {after} KiB after");
    assert!(
        after < before + 48 * 1024,
        "the server grew from {before} KiB to {after} KiB over {total} malformed calls"
    );
}

/// A client that writes raw lines to the server's stdin.
struct RawClient {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    /// The server's log, read all along so a full pipe never blocks the server.
    stderr: tokio::task::JoinHandle<String>,
}

impl RawClient {
    async fn start(sshd: &Sshd) -> RawClient {
        let mut child = tokio::process::Command::new(bin())
            .envs(sshd.mcp_env())
            .env("MCP_SSH_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut pipe = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes).await;
            String::from_utf8_lossy(&bytes).into_owned()
        });
        let mut client = RawClient {
            child,
            stdin,
            stdout,
            stderr,
        };
        client
            .send(
                br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#,
            )
            .await;
        assert!(client.answer_to(0).await.get("result").is_some());
        client
            .send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
        client
    }

    async fn send(&mut self, line: &[u8]) {
        self.stdin.write_all(line).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The response with this id, skipping notifications and other responses.
    async fn answer_to(&mut self, id: i64) -> Value {
        let wait = async {
            while let Some(line) = self.stdout.next_line().await.unwrap() {
                let message: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout carried a non-JSON line ({e}): {line}"));
                if message.get("id") == Some(&json!(id)) {
                    return message;
                }
            }
            panic!("the server closed stdout before answering {id}");
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| panic!("no answer to request {id}"))
    }
}

#[tokio::test]
async fn raw_garbage_on_stdin_never_stops_the_server() {
    let sshd = Sshd::start().unwrap();
    let mut client = RawClient::start(&sshd).await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let huge_string = format!(
        r#"{{"jsonrpc":"2.0","id":90,"method":"tools/call","params":{{"name":"ssh_execute","arguments":{{"command":"{}"}}}}}}"#,
        "y".repeat(8 << 20)
    );
    let garbage: Vec<Vec<u8>> = vec![
        b"\xff\xfe\xfd not utf-8 \xc3\x28".to_vec(),
        b"{\"jsonrpc\":\"2.0\",\"id\":91,\"method\":\"tools/call\",\"params\":{\"name\":\"ssh_execute\",\"arguments\":{\"command\":\"echo \xff\"}}}".to_vec(),
        b"{not json".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"just a string\"".to_vec(),
        deep.into_bytes(),
        br#"{"jsonrpc":"2.0","id":92,"method":"tools/call","params":{"name":"ssh_execute","arguments":[1,2]}}"#.to_vec(),
        br#"{"jsonrpc":"2.0","id":93,"method":"tools/call","params":{"name":"ssh_execute","arguments":"echo hi"}}"#.to_vec(),
        br#"{"jsonrpc":"2.0","id":94,"method":"tools/call","params":{"name":7}}"#.to_vec(),
        br#"{"jsonrpc":"2.0","id":95,"method":"tools/call"}"#.to_vec(),
        br#"{"jsonrpc":"2.0","id":{"nested":true},"method":"tools/list"}"#.to_vec(),
        br#"{"jsonrpc":"1.0","id":96,"method":"tools/list"}"#.to_vec(),
        br#"{"jsonrpc":"2.0","id":97,"method":"no/such/method"}"#.to_vec(),
        br#"{"jsonrpc":"2.0","id":98,"method":"tools/call","params":{"name":"ssh_execute","arguments":{"command":"true","timeout_seconds":1e999}}}"#.to_vec(),
        huge_string.into_bytes(),
    ];
    for line in &garbage {
        client.send(line).await;
    }
    // Whatever it made of the garbage, a well-formed call after it is answered.
    client
        .send(br#"{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"ssh_execute","arguments":{"command":"echo alive"}}}"#)
        .await;
    let answer = client.answer_to(99).await;
    assert_eq!(
        answer["result"]["structuredContent"]["stdout"], "alive\n",
        "{answer}"
    );
    assert!(
        client.child.try_wait().unwrap().is_none(),
        "the server exited"
    );
    drop(client.stdin);
    let status = tokio::time::timeout(Duration::from_secs(20), client.child.wait())
        .await
        .expect("the server exits when stdin closes")
        .unwrap();
    assert!(status.success(), "{status}");
    let stderr = client.stderr.await.unwrap();
    assert!(
        !stderr.contains("panicked"),
        "a panic in the log:\n{stderr}"
    );
    assert!(
        stderr.len() < 1 << 20,
        "the log grew to {} bytes from a few bad lines",
        stderr.len()
    );
}

#[tokio::test]
async fn an_oversized_command_is_refused_before_it_can_drop_the_connection() {
    let h = Harness::start().await;
    // A command the SSH server would answer by dropping the connection, sent while
    // another command runs on the same connection.
    let long = format!("# {}", "z".repeat(300 * 1024));
    let (refused, running) = tokio::join!(
        h.tool_error("ssh_execute", json!({"command": long})),
        h.call(
            "ssh_execute",
            json!({"command": "sleep 0.5; echo survived"})
        ),
    );
    assert_eq!(refused["error_kind"], "invalid", "{refused}");
    let message = refused["error"].as_str().unwrap();
    assert!(
        message.contains("stdin"),
        "the error says what to do: {message}"
    );
    assert_eq!(running.structured()["stdout"], "survived\n");
    // The same through the environment.
    let env = json!({"command": "true", "env": {"BIG": "v".repeat(200 * 1024)}});
    let refused = h.tool_error("ssh_execute", env).await;
    assert_eq!(refused["error_kind"], "invalid", "{refused}");
    let after = h.exec("echo same").await;
    assert_eq!(after["reconnected"], false, "{after}");
    assert!(!h.sshd.log().contains("Bad packet length"));
}

#[tokio::test]
async fn the_server_survives_a_string_of_failures() {
    let h = Harness::start().await;
    let unknown = h.protocol_error("nope", json!({})).await;
    assert_invalid_params(&unknown);
    let missing = h.tool_error("ssh_execute", json!({})).await;
    assert_invalid_argument(&missing, "command");
    let refused = h.tool_error("ssh_connect", json!({"port": 1})).await;
    assert_eq!(refused["error_kind"], "connection", "{refused}");
    let timed_out = h
        .call_seen_running(
            "ssh_execute",
            json!({"command": "sleep 36.1", "timeout_seconds": 0.5}),
            "sleep 36.1",
        )
        .await;
    assert_eq!(
        timed_out.structured()["timed_out"],
        true,
        "{}",
        timed_out.summary()
    );
    let call = h
        .server
        .start_call(&h.name("ssh_execute"), json!({"command": "sleep 36.2"}))
        .await
        .unwrap();
    assert!(
        h.wait_present("sleep 36.2", Duration::from_secs(10)).await,
        "the command to cancel never started"
    );
    call.cancel(None).await.unwrap();
    let failed = h.exec("exit 255").await;
    assert_eq!(failed["exit_code"], 255, "{failed}");
    assert_eq!(failed["success"], false, "{failed}");
    let killed = h.exec("kill -KILL $$").await;
    assert_eq!(killed["exit_signal"], "KILL", "{killed}");
    assert_eq!(killed["exit_code"], json!(null), "{killed}");
    let big = h
        .ok(
            "ssh_execute",
            json!({"command": "head -c 3000000 /dev/zero", "max_output_bytes": 1024}),
        )
        .await;
    assert_eq!(big["stdout_total_bytes"], 3_000_000);
    h.ok("ssh_disconnect", json!({})).await;
    h.ok("ssh_disconnect", json!({})).await;
    h.assert_still_serving().await;
    assert!(h.wait_gone("sleep 36.", Duration::from_secs(5)).await);
    let r = h.call("ssh_execute", json!({"command": "echo fin"})).await;
    assert_eq!(r.structured()["stdout"], "fin\n");
}
