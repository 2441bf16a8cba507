//! Transfers refused before anything is written: over `max_size`, a missing source or
//! destination directory, a full remote or local file system.

use std::fs;

use serde_json::json;

use super::{
    Files, MIB, Tmpfs, check_transfer, names, nested, random_file, same_bytes, statfs,
    transfer_args,
};

#[tokio::test]
async fn max_size_is_refused_before_writing() {
    let f = Files::start().await;
    let src = f.local("data.bin");
    random_file(&src, 100_000);
    let dst = f.remote("data.bin");

    for a in [
        transfer_args(&src, &dst, json!({"max_size": 99_999})),
        nested(transfer_args(
            &src,
            &dst,
            json!({"max_size": 1, "on_conflict": "RENAME"}),
        )),
    ] {
        let err = f.h.tool_error("scp_upload", a).await;
        assert_eq!(err["error_kind"], "too-large", "{err}");
        assert!(names(&f.scratch()).is_empty(), "{:?}", names(&f.scratch()));
    }
    // Over the limit with OVERWRITE: the existing file stays as it was.
    let existing = f.put_remote("existing.bin", b"keep");
    let err =
        f.h.tool_error(
            "scp_upload",
            transfer_args(
                &src,
                &existing,
                json!({"max_size": 50_000, "on_conflict": "OVERWRITE"}),
            ),
        )
        .await;
    assert_eq!(err["error_kind"], "too-large", "{err}");
    assert_eq!(fs::read(&existing).unwrap(), b"keep");
    assert_eq!(names(&f.scratch()), ["existing.bin"]);

    // Exactly the limit is allowed; so is an empty file with max_size 0.
    let out = f.upload(&src, &dst, json!({"max_size": 100_000})).await;
    check_transfer(&out, 100_000, &src, &dst, "none");
    let empty = f.local("empty");
    random_file(&empty, 0);
    let out = f
        .upload(&empty, &f.remote("empty"), json!({"max_size": 0}))
        .await;
    check_transfer(&out, 0, &empty, &f.remote("empty"), "none");

    // Downloads: the local directory stays empty.
    let down = tempfile::tempdir_in(f.local.path()).unwrap();
    let err =
        f.h.tool_error(
            "scp_download",
            transfer_args(
                &down.path().join("data.bin"),
                &dst,
                json!({"max_size": 99_999}),
            ),
        )
        .await;
    assert_eq!(err["error_kind"], "too-large", "{err}");
    assert!(names(down.path()).is_empty(), "{:?}", names(down.path()));
    let out =
        f.h.ok(
            "scp_download",
            nested(transfer_args(
                &down.path().join("data.bin"),
                &dst,
                json!({"max_size": 100_000}),
            )),
        )
        .await;
    check_transfer(&out, 100_000, &down.path().join("data.bin"), &dst, "none");
}

#[tokio::test]
async fn missing_sources_and_destination_directories_are_not_found() {
    let f = Files::start().await;
    let src = f.local("data.bin");
    random_file(&src, 100_000);
    for (what, tool, local, remote) in [
        (
            "a missing local source",
            "scp_upload",
            f.local("missing.bin"),
            f.remote("data.bin"),
        ),
        (
            "a missing remote directory",
            "scp_upload",
            src.clone(),
            f.remote("no/such/dir/data.bin"),
        ),
        (
            "a missing remote source",
            "scp_download",
            f.local("down.bin"),
            f.remote("missing.bin"),
        ),
    ] {
        let err =
            f.h.tool_error(tool, transfer_args(&local, &remote, json!({})))
                .await;
        assert_eq!(err["error_kind"], "not-found", "{what}: {err}");
    }
    assert!(names(&f.scratch()).is_empty(), "{:?}", names(&f.scratch()));
    assert_eq!(
        names(f.local.path()),
        ["data.bin"],
        "nothing written locally"
    );
    f.h.assert_still_serving().await;
}

#[tokio::test]
async fn a_full_remote_file_system_is_refused_before_writing() {
    let f = Files::start().await;
    let small = f.remote("small");
    let _mount = Tmpfs::mount(&small, "1m");
    let before = statfs(&small);
    let src = f.local("two.bin");
    random_file(&src, 2 * MIB);
    let dst = small.join("two.bin");
    let err =
        f.h.tool_error("scp_upload", transfer_args(&src, &dst, json!({})))
            .await;
    assert_eq!(err["error_kind"], "no-space", "{err}");
    assert!(names(&small).is_empty(), "left behind: {:?}", names(&small));
    assert_eq!(statfs(&small), before, "the tmpfs is as it was");

    // An existing file there is not touched by a refused OVERWRITE.
    let keep = small.join("keep.txt");
    fs::write(&keep, "keep").unwrap();
    let err =
        f.h.tool_error(
            "scp_upload",
            transfer_args(&src, &keep, json!({"on_conflict": "OVERWRITE"})),
        )
        .await;
    assert_eq!(err["error_kind"], "no-space", "{err}");
    assert_eq!(fs::read_to_string(&keep).unwrap(), "keep");
    assert_eq!(names(&small), ["keep.txt"]);

    // A file that fits goes through (the file system itself is writable).
    let fits = f.local("fits.bin");
    random_file(&fits, 256 * 1024);
    let out = f.upload(&fits, &small.join("fits.bin"), json!({})).await;
    check_transfer(&out, 256 * 1024, &fits, &small.join("fits.bin"), "none");
    assert!(same_bytes(&fits, &small.join("fits.bin")));
}

#[tokio::test]
async fn a_full_local_file_system_is_refused_before_writing() {
    let f = Files::start().await;
    let remote = f.remote_random("two.bin", 2 * MIB);
    let small = f.local("small");
    let _mount = Tmpfs::mount(&small, "1m");
    let before = statfs(&small);
    let err =
        f.h.tool_error(
            "scp_download",
            transfer_args(&small.join("two.bin"), &remote, json!({})),
        )
        .await;
    assert_eq!(err["error_kind"], "no-space", "{err}");
    assert!(names(&small).is_empty(), "left behind: {:?}", names(&small));
    assert_eq!(statfs(&small), before);
}
