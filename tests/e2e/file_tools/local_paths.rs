//! The local paths of transfers: relative paths refused, `~` expanded, and the local root
//! confining every path, symlinks included.

use std::path::Path;

use mcpssh_testbed::Sshd;
use serde_json::json;

use super::{Files, check_transfer, names, random_file, s, same_bytes, transfer_args};

#[tokio::test]
async fn relative_local_paths_are_refused_and_tilde_is_expanded() {
    let home = tempfile::Builder::new()
        .prefix("mcpssh-e2e-home-")
        .tempdir()
        .unwrap();
    let home_path = home.path().canonicalize().unwrap();
    let f = Files::start_with(Sshd::start().unwrap(), &[("HOME", &s(&home_path))]).await;
    let remote = f.remote_random("r.bin", 3000);
    let unique = format!("mcpssh-e2e-relative-{}", std::process::id());

    for local in [unique.as_str(), "./x.bin", "sub/x.bin", "../x.bin"] {
        for tool in ["scp_upload", "scp_download"] {
            let err =
                f.h.tool_error(
                    tool,
                    json!({"local_path": local, "remote_path": s(&f.remote("up.bin"))}),
                )
                .await;
            let msg = err["error"].as_str().unwrap();
            assert!(
                msg.contains("relative") && msg.contains("absolute"),
                "{tool} {local}: the message should say why: {err}"
            );
        }
    }
    assert!(!f.remote("up.bin").exists());
    // The server's working directory is this test's: nothing was written there.
    assert!(!Path::new(&unique).exists());

    // `~/` is the home directory of the server's user.
    let out = f
        .download(Path::new("~/down.bin"), &remote, json!({}))
        .await;
    let expanded = home_path.join("down.bin");
    check_transfer(&out, 3000, &expanded, &remote, "none");
    assert!(same_bytes(&remote, &expanded));
    let out = f
        .upload(Path::new("~/down.bin"), &f.remote("up.bin"), json!({}))
        .await;
    check_transfer(&out, 3000, &expanded, &f.remote("up.bin"), "none");
    assert!(same_bytes(&expanded, &f.remote("up.bin")));
}

#[tokio::test]
async fn local_root_confines_local_paths_symlinks_included() {
    let root = tempfile::Builder::new()
        .prefix("mcpssh-e2e-root-")
        .tempdir()
        .unwrap();
    let root_path = root.path().canonicalize().unwrap();
    let f = Files::start_with(
        Sshd::start().unwrap(),
        &[("MCP_SSH_LOCAL_ROOT", &s(&root_path))],
    )
    .await;
    let remote = f.remote_random("r.bin", 2000);
    // `f.local` is outside the root; a symlink inside the root points to it.
    let outside = f.local("outside.bin");
    random_file(&outside, 10);
    std::os::unix::fs::symlink(f.local.path(), root_path.join("escape")).unwrap();
    std::os::unix::fs::symlink(&outside, root_path.join("file-link")).unwrap();

    for local in [
        f.local("down.bin"),
        root_path.join("escape/down.bin"),
        root_path.join("../down.bin"),
    ] {
        let err =
            f.h.tool_error("scp_download", transfer_args(&local, &remote, json!({})))
                .await;
        assert_eq!(err["error_kind"], "denied", "{}: {err}", local.display());
        assert!(
            err["error"]
                .as_str()
                .unwrap()
                .contains("MCP_SSH_LOCAL_ROOT"),
            "{err}"
        );
    }
    for local in [outside.clone(), root_path.join("file-link")] {
        let err =
            f.h.tool_error(
                "scp_upload",
                transfer_args(&local, &f.remote("up.bin"), json!({})),
            )
            .await;
        assert_eq!(err["error_kind"], "denied", "{}: {err}", local.display());
    }
    assert_eq!(
        names(f.local.path()),
        ["outside.bin"],
        "nothing written outside"
    );
    assert!(!f.remote("up.bin").exists());

    // Inside the root, both ways work.
    let inside = root_path.join("in.bin");
    let out = f.download(&inside, &remote, json!({})).await;
    check_transfer(&out, 2000, &inside, &remote, "none");
    let out = f.upload(&inside, &f.remote("up.bin"), json!({})).await;
    check_transfer(&out, 2000, &inside, &f.remote("up.bin"), "none");
    assert!(same_bytes(&remote, &f.remote("up.bin")));
}
