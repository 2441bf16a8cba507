//! Resources served natively: the open sessions (`mcpssh://sessions/…`, no secret in
//! them) and remote files (`sftp://{session}/{path}`: text, base64 for binary content, an
//! error for a missing file). (The jobs' output resources are in jobs.rs.)

use mcpssh_testbed::rmcp::model::{ReadResourceRequestParams, ResourceContents};
use serde_json::json;

use crate::common::Harness;

#[tokio::test]
async fn resources_list_the_open_sessions() {
    let h = Harness::start().await;
    let none = h.server.peer().list_all_resources().await.unwrap();
    assert!(none.is_empty(), "no session yet: {none:?}");
    let connected = h.ok("ssh_connect", json!({})).await;
    let resources = h.server.peer().list_all_resources().await.unwrap();
    assert_eq!(resources.len(), 1, "{resources:?}");
    let uri = resources[0].uri.clone();
    let read = h
        .server
        .peer()
        .read_resource(ReadResourceRequestParams::new(uri.clone()))
        .await
        .unwrap();
    let ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
        panic!("text contents expected: {read:?}");
    };
    let session: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        session["host_key_fingerprint"],
        connected["host_key_fingerprint"]
    );
    assert_eq!(session["state"], "open");
    assert!(!text.contains("BEGIN OPENSSH PRIVATE KEY"));
}

#[tokio::test]
async fn remote_files_are_readable_as_resources() {
    let h = Harness::start().await;
    let templates = h.server.peer().list_all_resource_templates().await.unwrap();
    assert!(
        templates
            .iter()
            .any(|t| t.uri_template.starts_with("sftp://")),
        "{templates:?}"
    );
    let dir = h.sshd.scratch_dir();
    std::fs::write(dir.join("hello.txt"), "hello resource\n").unwrap();
    std::fs::write(dir.join("bin.dat"), [0u8, 159, 146, 150, 255]).unwrap();
    let read = |path: String| {
        let peer = h.server.peer().clone();
        async move {
            peer.read_resource(ReadResourceRequestParams::new(format!("sftp://_{path}")))
                .await
        }
    };
    let text = read(dir.join("hello.txt").display().to_string())
        .await
        .unwrap();
    match &text.contents[0] {
        ResourceContents::TextResourceContents { text, .. } => assert_eq!(text, "hello resource\n"),
        other => panic!("text expected: {other:?}"),
    }
    let blob = read(dir.join("bin.dat").display().to_string())
        .await
        .unwrap();
    match &blob.contents[0] {
        ResourceContents::BlobResourceContents { blob, .. } => assert_eq!(blob, "AJ+Slv8="),
        other => panic!("blob expected: {other:?}"),
    }
    assert!(
        read(dir.join("missing").display().to_string())
            .await
            .is_err()
    );
    h.assert_still_serving().await;
}

/// Reading a remote file acts on a host as a tool call does: it takes one of the call
/// slots, so a burst of reads cannot open more SFTP work than the cap allows.
#[tokio::test]
async fn a_remote_file_read_takes_a_call_slot() {
    let sshd = mcpssh_testbed::Sshd::start().unwrap();
    let h = Harness::start_with(
        sshd,
        &[
            ("MCP_SSH_MAX_CONCURRENT_CALLS", "1"),
            ("MCP_SSH_MAX_QUEUED_CALLS", "0"),
        ],
    )
    .await;
    let file = h.sshd.scratch_dir().join("slot.txt");
    std::fs::write(&file, "read\n").unwrap();
    let uri = format!("sftp://_{}", file.display());
    let read = || {
        h.server
            .peer()
            .read_resource(ReadResourceRequestParams::new(uri.clone()))
    };
    read().await.unwrap();

    let exec = h.name("ssh_execute");
    let running = h
        .server
        .start_call(&exec, json!({"command": "sleep 43.1"}))
        .await
        .unwrap();
    assert!(
        h.wait_present("sleep 43.1", std::time::Duration::from_secs(20))
            .await
    );
    let busy = read().await.unwrap_err().to_string();
    assert!(
        busy.contains("busy") && busy.contains("MCP_SSH_MAX_CONCURRENT_CALLS"),
        "{busy}"
    );
    running.cancel(None).await.unwrap();
    assert!(
        h.wait_gone("sleep 43.1", std::time::Duration::from_secs(10))
            .await
    );
    // The cancelled call gives its slot back once its clean-up is done (soon after its
    // remote process is gone); then reads are served again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while let Err(busy) = read().await {
        assert!(
            std::time::Instant::now() < deadline,
            "the slot never came back: {busy}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
