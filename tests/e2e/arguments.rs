//! Argument validation: protocol errors for unknown tools, tool errors naming the field
//! for bad arguments (docs/tool-contract.md, "Errors").

use serde_json::json;

use crate::common::{Harness, assert_invalid_argument, assert_invalid_params};

#[tokio::test]
async fn an_unknown_tool_is_a_json_rpc_error() {
    let h = Harness::start().await;
    let err = h.protocol_error("no_such_tool", json!({})).await;
    assert_invalid_params(&err);
    let err = h
        .protocol_error("ssh_executе", json!({"command": "true"}))
        .await; // Cyrillic е
    assert_invalid_params(&err);
    h.assert_still_serving().await;
}

#[tokio::test]
async fn execute_argument_errors_name_the_field() {
    let h = Harness::start().await;
    let cases = [
        (json!({}), "command"),
        (json!({"command": ""}), "command"),
        (json!({"command": 5}), "command"),
        (json!({"command": null}), "command"),
        (
            json!({"command": "true", "timeout_seconds": 0}),
            "timeout_seconds",
        ),
        (
            json!({"command": "true", "timeout_seconds": -1}),
            "timeout_seconds",
        ),
        (
            json!({"command": "true", "timeout_seconds": 86401}),
            "timeout_seconds",
        ),
        (
            json!({"command": "true", "timeout_seconds": "10"}),
            "timeout_seconds",
        ),
        (
            json!({"command": "true", "max_output_bytes": 10}),
            "max_output_bytes",
        ),
        (
            json!({"command": "true", "max_output_bytes": 2048.5}),
            "max_output_bytes",
        ),
        (json!({"command": "true", "stdin": 7}), "stdin"),
        (json!({"command": "true", "env": "A=b"}), "env"),
        (json!({"command": "true", "env": {"1BAD": "x"}}), "env"),
        (json!({"command": "true", "env": {"A-B": "x"}}), "env"),
        (json!({"command": "true", "env": {"GOOD": 1}}), "env"),
        (
            json!({"command": "true", "working_directory": false}),
            "working_directory",
        ),
        (json!({"command": "true", "pty": "yes"}), "pty"),
        (json!({"command": "true", "bogus": 1}), "bogus"),
    ];
    for (args, field) in cases {
        let err = h.tool_error("ssh_execute", args.clone()).await;
        assert_invalid_argument(&err, field);
        assert!(
            err["error"].as_str().unwrap().contains(field),
            "the message for {args} should name `{field}`: {err}"
        );
    }
    // Nothing reached the server for any of them.
    assert_eq!(h.sshd.count_sessions(), 0, "invalid calls must not connect");
    h.assert_still_serving().await;
}

#[tokio::test]
async fn connect_and_disconnect_argument_errors_name_the_field() {
    let h = Harness::start().await;
    let cases = [
        ("ssh_connect", json!({"port": 0}), "port"),
        ("ssh_connect", json!({"port": 70000}), "port"),
        ("ssh_connect", json!({"port": "22"}), "port"),
        ("ssh_connect", json!({"hostname": 1}), "hostname"),
        ("ssh_connect", json!({"username": ["a"]}), "username"),
        ("ssh_connect", json!({"key_filename": {}}), "key_filename"),
        ("ssh_connect", json!({"password": "hunter2"}), "password"),
        ("ssh_disconnect", json!({"session": "x"}), "session"),
    ];
    for (tool, args, field) in cases {
        let err = h.tool_error(tool, args.clone()).await;
        assert_invalid_argument(&err, field);
        assert!(
            !err.to_string().contains("hunter2"),
            "an error must not echo a would-be secret: {err}"
        );
    }
    h.assert_still_serving().await;
}

#[tokio::test]
async fn arguments_may_be_left_out_entirely() {
    let h = Harness::start().await;
    // No `arguments` member at all in tools/call.
    let r = h.call("ssh_connect", serde_json::Value::Null).await;
    h.check_result_shape("ssh_connect", &r);
    let r = h.call("ssh_disconnect", serde_json::Value::Null).await;
    h.check_result_shape("ssh_disconnect", &r);
    let r = h.call("ssh_execute", serde_json::Value::Null).await;
    let err = crate::common::check_error_shape(&r);
    assert_invalid_argument(&err, "command");
}
