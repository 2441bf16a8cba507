//! Jobs: commands that outlive the call that started them, their full output read back
//! in pages, cancel, idle timeout, many at once, and the server's memory while a job
//! prints a lot.

use std::time::Duration;

use mcpssh_testbed::rmcp::model::{ContentBlock, ReadResourceRequestParams, ResourceContents};
use mcpssh_testbed::{CallToolResultExt, Sshd};
use serde_json::{Value, json};

use crate::common::{Harness, rss_kib};

/// A server that returns commands still running after 2 s as jobs.
async fn harness(extra: &[(&str, &str)]) -> Harness {
    let mut env = vec![("MCP_SSH_FOREGROUND_SECONDS", "2")];
    env.extend_from_slice(extra);
    Harness::start_with(Sshd::start().unwrap(), &env).await
}

/// `seq 1 n` as the remote prints it.
fn seq(n: u32) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

/// Reads a job's whole stdout in pages of `page` bytes, waiting for the job to end;
/// returns the text and the number of pages that carried data.
async fn read_all(h: &Harness, job_id: &str, page: u64) -> (String, usize, Value) {
    let mut text = String::new();
    let mut offset = 0u64;
    let mut pages = 0;
    for _ in 0..2000 {
        let out = h
            .ok(
                "ssh_job_output",
                json!({"job_id": job_id, "offset": offset, "max_bytes": page, "wait_seconds": 3}),
            )
            .await;
        assert_eq!(
            out["offset"], offset,
            "pages follow each other: {}",
            out["job"]
        );
        let data = out["data"].as_str().unwrap();
        if !data.is_empty() {
            pages += 1;
        }
        text.push_str(data);
        offset = out["next_offset"].as_u64().unwrap();
        if out["complete"] == true {
            return (text, pages, out["job"].clone());
        }
    }
    panic!("job {job_id} never completed");
}

/// A command that becomes a job without `timeout_seconds` still ends at the server's
/// default timeout, and the result says so (and how to give it longer) when it returns.
#[tokio::test]
async fn a_job_without_timeout_seconds_says_the_default_timeout_will_stop_it() {
    let h = harness(&[("MCP_SSH_COMMAND_TIMEOUT", "4")]).await;
    let sleep = format!("sleep 60.{}", h.sshd.port());
    let started = h.ok("ssh_execute", json!({ "command": sleep })).await;
    assert_eq!(started["running"], true, "{started}");
    let next = started["next"].as_str().unwrap();
    assert!(
        next.contains("MCP_SSH_COMMAND_TIMEOUT") && next.contains("timeout_seconds"),
        "{next}"
    );
    let job_id = started["job_id"].as_str().unwrap();
    let ended = h
        .ok(
            "ssh_job_output",
            json!({"job_id": job_id, "wait_seconds": 30}),
        )
        .await;
    assert_eq!(ended["job"]["running"], false, "{ended}");
    assert_eq!(ended["job"]["timed_out"], true, "{ended}");
    assert!(h.wait_gone(&sleep, Duration::from_secs(10)).await);
}

#[tokio::test]
async fn a_command_outliving_the_call_becomes_a_job_whose_full_output_reads_back_exactly() {
    let mut h = harness(&[]).await;
    // The client gives up on any single call after 10 s; the command takes about 8 s.
    h.server.set_call_timeout(Duration::from_secs(10));
    let started = h
        .ok(
            "ssh_execute",
            json!({"command": "sleep 8; seq 1 700000", "timeout_seconds": 120}),
        )
        .await;
    assert_eq!(started["running"], true, "{started}");
    assert_eq!(started["success"], false, "not a success while running");
    let job_id = started["job_id"].as_str().unwrap().to_string();
    assert!(
        started["next"].as_str().unwrap().contains("ssh_job_output"),
        "{started}"
    );
    let expected = seq(700_000);
    assert!(expected.len() > 4_000_000);
    let (text, pages, job) = read_all(&h, &job_id, 1024 * 1024).await;
    assert_eq!(job["exit_code"], 0, "{job}");
    assert_eq!(job["stdout_bytes"], expected.len());
    assert!(pages >= 4, "read in {pages} pages");
    assert!(text == expected, "the output read back differs from seq's");

    // The last bytes, by tail.
    let tail = h
        .ok("ssh_job_output", json!({"job_id": job_id, "tail_bytes": 7}))
        .await;
    assert_eq!(tail["data"], "700000\n");
    let listed = h.ok("ssh_job_list", json!({})).await;
    assert!(
        listed["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["job_id"] == job_id.as_str() && j["running"] == false),
        "{listed}"
    );
}

#[tokio::test]
async fn ten_concurrent_jobs_each_keep_their_own_output() {
    let h = harness(&[]).await;
    let starts = (1..=10u32).map(|i| {
        h.ok(
            "ssh_execute",
            json!({"command": format!("sleep 1; seq {i} {}", 20_000 * i), "background": true}),
        )
    });
    let started = futures::future::join_all(starts).await;
    let ids: Vec<String> = started
        .iter()
        .map(|s| {
            assert_eq!(s["running"], true, "{s}");
            s["job_id"].as_str().unwrap().to_string()
        })
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10, "{ids:?}");
    let reads = ids.iter().map(|id| read_all(&h, id, 256 * 1024));
    for (i, (text, _, job)) in (1..=10u32).zip(futures::future::join_all(reads).await) {
        let expected: String = (i..=20_000 * i).map(|n| format!("{n}\n")).collect();
        assert_eq!(job["exit_code"], 0, "{job}");
        assert!(text == expected, "job {i}'s output is not its own");
    }
}

#[tokio::test]
async fn cancel_kills_the_remote_process_tree() {
    let h = harness(&[]).await;
    // Sleeps named after this test's sshd port, so no other run's processes match.
    let (child, parent) = (
        format!("sleep 1{}", h.sshd.port()),
        format!("sleep 2{}", h.sshd.port()),
    );
    let started = h
        .ok(
            "ssh_execute",
            json!({"command": format!("({child} &); {parent}"), "background": true, "timeout_seconds": 600}),
        )
        .await;
    let job_id = started["job_id"].as_str().unwrap();
    for pattern in [&child, &parent] {
        assert!(
            h.wait_present(pattern, Duration::from_secs(10)).await,
            "{pattern} never ran"
        );
    }
    let cancelled = h.ok("ssh_job_cancel", json!({"job_id": job_id})).await;
    assert_eq!(cancelled["job"]["cancelled"], true, "{cancelled}");
    assert_eq!(cancelled["job"]["running"], false, "{cancelled}");
    for pattern in [&child, &parent] {
        assert!(
            h.wait_gone(pattern, Duration::from_secs(10)).await,
            "{pattern} survived the cancel"
        );
    }
}

#[tokio::test]
async fn a_silent_command_stops_at_its_idle_timeout_and_a_chatty_one_runs_on() {
    let h = harness(&[("MCP_SSH_FOREGROUND_SECONDS", "60")]).await;
    let sleep = format!("sleep 3{}", h.sshd.port());
    let silent = h
        .ok(
            "ssh_execute",
            json!({"command": format!("echo start; {sleep}"), "idle_timeout_seconds": 1, "timeout_seconds": 600}),
        )
        .await;
    assert_eq!(silent["timed_out"], true, "{silent}");
    assert_eq!(silent["idle_timed_out"], true, "{silent}");
    assert_eq!(silent["stdout"], "start\n");
    assert!(h.wait_gone(&sleep, Duration::from_secs(10)).await);

    // Prints every 0.2 s for 3 s: never silent for the 2 s allowed.
    let chatty = h
        .ok(
            "ssh_execute",
            json!({"command": "i=0; while [ $i -lt 15 ]; do echo $i; sleep 0.2; i=$((i+1)); done",
                   "idle_timeout_seconds": 2}),
        )
        .await;
    assert_eq!(chatty["exit_code"], 0, "{chatty}");
    assert_eq!(chatty["idle_timed_out"], false, "{chatty}");
}

#[tokio::test]
async fn a_cut_output_stays_retrievable_in_full() {
    let h = harness(&[]).await;
    let args = json!({"command": "seq 1 300000", "max_output_bytes": 1024});
    let result = h.call("ssh_execute", args.clone()).await;
    h.check_result_shape("ssh_execute", &result);
    let out = result.structured();
    assert_eq!(out["exit_code"], 0, "{out}");
    assert!(out["stdout_cut_bytes"].as_u64().unwrap() > 0, "{out}");
    let job_id = out["job_id"].as_str().expect("a cut output names its job");
    let (text, _, _) = read_all(&h, job_id, 100_000).await;
    assert!(text == seq(300_000));

    // The result links the full output as a resource, read in pages.
    let link = result
        .content
        .iter()
        .find_map(|c| match c {
            ContentBlock::ResourceLink(link) => Some(link.uri.clone()),
            _ => None,
        })
        .expect("a resource link to the full output");
    assert_eq!(link, format!("mcpssh://jobs/{job_id}/stdout"));
    let mut from_resource = String::new();
    let mut uri = link;
    let mut pages = 0;
    loop {
        let read = h
            .server
            .peer()
            .read_resource(ReadResourceRequestParams::new(uri.clone()))
            .await
            .unwrap();
        let ResourceContents::TextResourceContents { text, meta, .. } = &read.contents[0] else {
            panic!("not text: {read:?}");
        };
        pages += 1;
        from_resource.push_str(text);
        let meta = meta.as_ref().unwrap();
        if meta["complete"] == true {
            break;
        }
        uri = meta["next_page"].as_str().unwrap().to_string();
    }
    assert!(pages >= 2, "{pages} pages");
    assert!(from_resource == seq(300_000));

    // A command whose output was not cut leaves nothing behind.
    let small = h.exec("echo small").await;
    assert_eq!(small["job_id"], Value::Null, "{small}");
}

#[tokio::test]
async fn an_unknown_job_is_refused_naming_the_list() {
    let h = harness(&[]).await;
    let e = h
        .tool_error("ssh_job_output", json!({"job_id": "job-999"}))
        .await;
    assert_eq!(e["error_kind"], "not-found", "{e}");
    assert!(e["error"].as_str().unwrap().contains("ssh_job_list"), "{e}");
    let e = h
        .tool_error("ssh_job_cancel", json!({"job_id": "999"}))
        .await;
    crate::common::assert_invalid_argument(&e, "job_id");
}

#[tokio::test]
async fn progress_continues_while_a_client_waits_for_a_job() {
    let h = harness(&[]).await;
    let started = h
        .ok(
            "ssh_execute",
            json!({"command": "for i in 1 2 3 4 5 6 7 8; do echo tick$i; sleep 1; done", "background": true}),
        )
        .await;
    let job_id = started["job_id"].as_str().unwrap();
    // Wait for output past everything the job will print: the call lasts until the end.
    let call = h
        .server
        .start_call(
            &h.name("ssh_job_output"),
            json!({"job_id": job_id, "offset": 1000, "wait_seconds": 30}),
        )
        .await
        .unwrap();
    let token = call.progress_token().clone();
    let result = call.wait().await.unwrap();
    assert!(!result.is_error(), "{}", result.summary());
    h.server
        .progress_until(&token, Duration::from_secs(10), |progress| {
            progress
                .iter()
                .any(|p| p.message.as_deref().is_some_and(|m| m.contains(job_id)))
        })
        .await
        .expect("progress naming the job while the client waits");
}

#[tokio::test]
async fn server_memory_stays_flat_while_a_job_prints_200_mb() {
    let h = harness(&[]).await;
    let pid = h.server.pid().unwrap();
    h.exec("true").await;
    let baseline = rss_kib(pid);
    let started = h
        .ok(
            "ssh_execute",
            json!({"command": "yes 0123456789abcdef | head -c 200000000; echo; echo end",
                   "background": true, "timeout_seconds": 600}),
        )
        .await;
    let job_id = started["job_id"].as_str().unwrap();
    let mut peak = baseline;
    let job = loop {
        let out = h
            .ok(
                "ssh_job_output",
                json!({"job_id": job_id, "tail_bytes": 4, "wait_seconds": 1}),
            )
            .await;
        peak = peak.max(rss_kib(pid));
        if out["job"]["running"] == false {
            break out;
        }
    };
    assert_eq!(job["job"]["stdout_bytes"], 200_000_000u64 + 5, "{job}");
    assert_eq!(job["data"], "end\n");
    let growth_mib = (peak - baseline) / 1024;
    println!("RSS baseline {baseline} KiB, peak {peak} KiB");
    assert!(
        growth_mib < 100,
        "the server grew by {growth_mib} MiB while a job printed 200 MB"
    );
}

/// A component built against the WIT before the job functions were added to `exec`
/// (the `ssh_execute` of that time, kept in tests/e2e/fixtures) still loads and runs.
#[tokio::test]
async fn a_component_built_before_the_job_functions_still_loads_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/e2e/fixtures/ssh_execute_without_jobs.wasm");
    std::fs::copy(&fixture, dir.path().join("old_execute.wasm")).unwrap();
    std::fs::write(dir.path().join("old_execute.toml"), "grants = [\"exec\"]\n").unwrap();
    let dir_setting = dir.path().display().to_string();
    // Only the file tools are built in, so the old `ssh_execute` is the one served.
    let h = Harness::start_with(
        Sshd::start().unwrap(),
        &[
            ("MCP_SSH_TOOLS_DIR", dir_setting.as_str()),
            ("MCP_SSH_TOOLS", "files"),
        ],
    )
    .await;
    assert!(h.tools.contains_key("ssh_execute"), "{:?}", h.tools.keys());
    assert!(
        h.tools["ssh_execute"].input_schema["properties"]
            .get("background")
            .is_none(),
        "the old component is served, not the built-in"
    );
    let out = h.exec("echo old").await;
    assert_eq!(out["stdout"], "old\n", "{out}");
}

#[tokio::test]
async fn jobs_are_bounded_in_number_and_forgotten_after_the_keep_time() {
    let h = harness(&[("MCP_SSH_MAX_JOBS", "2"), ("MCP_SSH_JOB_KEEP_SECONDS", "1")]).await;
    let start =
        |command: &str| json!({"command": command, "background": true, "timeout_seconds": 600});
    let sleep = |n: u32| format!("sleep {n}{}", h.sshd.port());
    let first = h.ok("ssh_execute", start(&sleep(4))).await;
    h.ok("ssh_execute", start(&sleep(5))).await;
    let refused = h.tool_error("ssh_execute", start(&sleep(6))).await;
    assert_eq!(refused["error_kind"], "invalid", "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("MCP_SSH_MAX_JOBS"),
        "{refused}"
    );
    assert!(h.sshd.processes_matching(&sleep(6)).is_empty());

    // A finished job makes room, and is forgotten once the keep time has passed.
    let first_id = first["job_id"].as_str().unwrap();
    h.ok("ssh_job_cancel", json!({"job_id": first_id})).await;
    let done = h.ok("ssh_execute", start("echo kept")).await;
    let done_id = done["job_id"].as_str().unwrap();
    let (text, _, _) = read_all(&h, done_id, 1024).await;
    assert_eq!(text, "kept\n");
    let mut tries = 0;
    let forgotten = loop {
        tries += 1;
        assert!(tries < 40, "{done_id} was never forgotten");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let listed = h.ok("ssh_job_list", json!({})).await;
        if !listed["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["job_id"] == done_id)
        {
            break listed;
        }
    };
    assert!(
        forgotten["jobs"].as_array().unwrap().len() == 1,
        "only the running job is left: {forgotten}"
    );
    let e = h
        .tool_error("ssh_job_output", json!({"job_id": done_id}))
        .await;
    assert_eq!(e["error_kind"], "not-found", "{e}");
    for job in forgotten["jobs"].as_array().unwrap() {
        h.ok("ssh_job_cancel", json!({"job_id": job["job_id"]}))
            .await;
    }
}

#[tokio::test]
async fn a_job_does_not_outlive_the_server() {
    let h = harness(&[]).await;
    let sleep = format!("sleep 7{}", h.sshd.port());
    h.ok(
        "ssh_execute",
        json!({"command": sleep, "background": true, "timeout_seconds": 600}),
    )
    .await;
    assert!(h.wait_present(&sleep, Duration::from_secs(10)).await);
    let Harness { sshd, server, .. } = h;
    server.shutdown().await.unwrap();
    assert!(
        crate::common::wait_gone(&sshd, &sleep, Duration::from_secs(10)).await,
        "{sleep} survived the server"
    );
}

#[tokio::test]
async fn commands_a_call_waits_for_do_not_count_against_the_job_bound() {
    let h = harness(&[
        ("MCP_SSH_MAX_JOBS", "1"),
        ("MCP_SSH_FOREGROUND_SECONDS", "60"),
    ])
    .await;
    let commands: Vec<String> = (0..4).map(|i| format!("sleep 1; echo {i}")).collect();
    let calls = commands.iter().map(|c| h.exec(c));
    for (i, out) in futures::future::join_all(calls).await.iter().enumerate() {
        assert_eq!(out["stdout"], format!("{i}\n"), "{out}");
    }
}

/// Kills every per-connection process of `sshd`: the connections drop as in a network
/// failure, without the client closing them.
fn drop_connections(sshd: &Sshd) {
    let daemon = sshd.pid().unwrap();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The parent is the second field after the command in parentheses.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if parent == Some(daemon) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

#[tokio::test]
async fn a_detached_job_survives_the_connection_dropping_and_a_server_restart() {
    let h = harness(&[]).await;
    let sleep = format!("sleep 5.{}", h.sshd.port());
    let started = h
        .ok(
            "ssh_execute",
            json!({"command": format!("echo begin; {sleep}; seq 1 20000"), "detached": true}),
        )
        .await;
    let job_id = started["job_id"].as_str().unwrap().to_string();
    assert!(job_id.starts_with("d-"), "{started}");
    assert!(h.wait_present(&sleep, Duration::from_secs(10)).await);

    drop_connections(&h.sshd);
    let Harness { sshd, server, .. } = h;
    server.shutdown().await.unwrap();
    assert!(
        !sshd.processes_matching(&sleep).is_empty(),
        "the detached command died with its connection and server"
    );

    let h = Harness::start_with(sshd, &[("MCP_SSH_FOREGROUND_SECONDS", "2")]).await;
    let (text, _, job) = read_all(&h, &job_id, 64 * 1024).await;
    assert_eq!(job["exit_code"], 0, "{job}");
    assert!(
        text == format!("begin\n{}", seq(20_000)),
        "{}",
        &text[..text.len().min(200)]
    );
}

#[tokio::test]
async fn cancelling_a_detached_job_kills_it() {
    let h = harness(&[]).await;
    let sleep = format!("sleep 8{}", h.sshd.port());
    let started = h
        .ok(
            "ssh_execute",
            json!({"command": format!("({sleep} &); {sleep}"), "detached": true}),
        )
        .await;
    let job_id = started["job_id"].as_str().unwrap();
    assert!(h.wait_present(&sleep, Duration::from_secs(10)).await);
    let cancelled = h.ok("ssh_job_cancel", json!({"job_id": job_id})).await;
    assert_eq!(cancelled["job"]["running"], false, "{cancelled}");
    assert!(
        h.wait_gone(&sleep, Duration::from_secs(10)).await,
        "the detached command survived the cancel"
    );
}

/// Starting a detached job removes the files of earlier ones that ended long ago (process
/// gone, output unchanged for over a week); a job still running, however quiet, and one
/// that ended recently keep theirs.
#[tokio::test]
async fn starting_a_detached_job_removes_the_files_of_long_ended_ones() {
    let h = harness(&[]).await;
    let sleep = format!("sleep 9.{}", h.sshd.port());
    let live = h
        .ok("ssh_execute", json!({"command": sleep, "detached": true}))
        .await;
    let live_id = live["job_id"].as_str().unwrap().to_string();
    assert!(h.wait_present(&sleep, Duration::from_secs(10)).await);
    // Two ended jobs' folders, as the launcher leaves them, with a pid that is gone.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    let port = u64::from(h.sshd.port());
    let (old, recent) = (
        format!("d-{:016x}", port * 2),
        format!("d-{:016x}", port * 2 + 1),
    );
    // A third, as another machine sharing this home would leave it: never this one's to
    // remove.
    let other_machine = format!("d-{:016x}", port * 2 + 2);
    let setup = format!(
        "j=$HOME/.mcpssh/jobs; for id in {old} {recent} {other_machine}; do mkdir -p $j/$id \
         && echo x > $j/$id/out && echo 0 > $j/$id/exit && echo {gone_pid} > $j/$id/pid \
         && uname -n > $j/$id/host; done; echo elsewhere > $j/{other_machine}/host; \
         touch -d '10 days ago' $j/{old}/out $j/{live_id}/out $j/{other_machine}/out"
    );
    assert_eq!(h.exec(&setup).await["exit_code"], 0);

    h.ok("ssh_execute", json!({"command": "true", "detached": true}))
        .await;
    let listed = h.exec("ls $HOME/.mcpssh/jobs").await;
    let names = listed["stdout"].as_str().unwrap();
    assert!(
        !names.contains(&old),
        "a long-ended job's files are kept: {names}"
    );
    assert!(
        names.contains(&recent),
        "a recently ended job's files are gone: {names}"
    );
    assert!(
        names.contains(&live_id),
        "a running job's files are gone: {names}"
    );
    assert!(
        names.contains(&other_machine),
        "another machine's job files are gone: {names}"
    );

    h.ok("ssh_job_cancel", json!({"job_id": live_id})).await;
    h.exec(&format!(
        "rm -rf $HOME/.mcpssh/jobs/{recent} $HOME/.mcpssh/jobs/{other_machine}"
    ))
    .await;
}
