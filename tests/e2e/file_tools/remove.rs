//! `scp_remove`: files and links, never directories.

use std::fs;

use serde_json::json;

use super::{Files, names, s};
use crate::common::assert_invalid_argument;

#[tokio::test]
async fn remove_takes_files_and_links_never_directories() {
    let f = Files::start().await;
    let file = f.put_remote("gone.txt", b"bye");
    let out = f.h.ok("scp_remove", json!({"path": s(&file)})).await;
    assert_eq!(out["success"], true);
    assert_eq!(out["path"], s(&file));
    assert!(out["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(fs::symlink_metadata(&file).is_err());

    // A symlink goes, its target stays: to a file, to a directory, dangling.
    let target = f.put_remote("target.txt", b"keep me");
    let dir = f.remote("dir");
    f.h.exec(&format!(
        "cd {} && ln -s target.txt flink && mkdir dir && echo inside > dir/inner && ln -s dir dlink \
         && ln -s /nowhere broken && mkdir emptydir",
        s(&f.scratch())
    ))
    .await;
    for link in ["flink", "dlink", "broken"] {
        f.h.ok("scp_remove", json!({"path": s(&f.remote(link))}))
            .await;
        assert!(
            fs::symlink_metadata(f.remote(link)).is_err(),
            "{link} is still there"
        );
    }
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep me");
    assert_eq!(fs::read_to_string(dir.join("inner")).unwrap(), "inside\n");

    // Directories, full or empty, are refused and stay.
    for d in ["dir", "emptydir"] {
        let err =
            f.h.tool_error("scp_remove", json!({"path": s(&f.remote(d))}))
                .await;
        assert!(
            err["error"].as_str().unwrap().contains("directory"),
            "{err}"
        );
        assert!(f.remote(d).is_dir(), "{d} was removed");
    }
    assert_eq!(fs::read_to_string(dir.join("inner")).unwrap(), "inside\n");

    // Missing: not-found, twice.
    for _ in 0..2 {
        let err =
            f.h.tool_error("scp_remove", json!({"path": s(&file)}))
                .await;
        assert_eq!(err["error_kind"], "not-found", "{err}");
    }

    // Not the test user's to remove.
    let locked = f.remote("locked");
    fs::create_dir(&locked).unwrap(); // root's, 0755
    fs::write(locked.join("f"), "root's").unwrap();
    let err =
        f.h.tool_error("scp_remove", json!({"path": s(&locked.join("f"))}))
            .await;
    assert_eq!(err["error_kind"], "permission-denied", "{err}");
    assert_eq!(fs::read_to_string(locked.join("f")).unwrap(), "root's");

    // Paths that name no single entry, or none at all, are invalid arguments.
    for bad in ["", ".", "..", "/tmp/x/", "/tmp/.."] {
        let err = f.h.tool_error("scp_remove", json!({"path": bad})).await;
        assert_invalid_argument(&err, "path");
    }
    let err = f.h.tool_error("scp_remove", json!({})).await;
    assert_invalid_argument(&err, "path");

    assert_eq!(
        names(&f.scratch()),
        ["dir", "emptydir", "locked", "target.txt"]
    );
}
