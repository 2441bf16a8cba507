//! The conflict policies (`on_conflict`) of uploads and downloads, each applied twice in a
//! row, and the RENAME format for names without an extension.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::{Files, check_transfer, names, nested, random_file, run, same_bytes, transfer_args};

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Checks that `name` is `<stem>_<YYYYmmdd-HHMMSS>[-N]<ext>` (the documented RENAME
/// format) with a timestamp within a minute of now (UTC). Returns the stamp and N.
fn parse_renamed(name: &str, stem: &str, ext: &str) -> (String, Option<u32>) {
    let mid = name
        .strip_prefix(&format!("{stem}_"))
        .and_then(|r| r.strip_suffix(ext))
        .unwrap_or_else(|| panic!("renamed file {name:?} is not {stem}_<stamp>{ext}"));
    assert!(mid.len() >= 15, "renamed file {name:?}: no timestamp");
    let (stamp, rest) = mid.split_at(15);
    let b = stamp.as_bytes();
    assert!(
        b.iter().enumerate().all(|(i, c)| if i == 8 {
            *c == b'-'
        } else {
            c.is_ascii_digit()
        }),
        "renamed file {name:?}: {stamp:?} is not YYYYmmdd-HHMMSS"
    );
    let n = if rest.is_empty() {
        None
    } else {
        let n: u32 = rest
            .strip_prefix('-')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("renamed file {name:?}: {rest:?} is not -N"));
        assert!(n >= 2, "renamed file {name:?}: the counter starts at 2");
        Some(n)
    };
    let when: i64 = run(Command::new("date")
        .arg("-u")
        .arg("+%s")
        .arg("-d")
        .arg(format!(
            "{}-{}-{} {}:{}:{}",
            &stamp[0..4],
            &stamp[4..6],
            &stamp[6..8],
            &stamp[9..11],
            &stamp[11..13],
            &stamp[13..15]
        )))
    .trim()
    .parse()
    .unwrap();
    assert!(
        (when - unix_now()).abs() <= 60,
        "renamed file {name:?}: the stamp is not the current UTC time"
    );
    (stamp.to_owned(), n)
}

#[tokio::test]
async fn upload_conflict_modes_twice_in_a_row() {
    let f = Files::start().await;
    let src = f.local("notes.txt");
    random_file(&src, 4096);
    let dst = f.put_remote("notes.txt", b"old remote content\n");
    let args = |extra: Value| transfer_args(&src, &dst, extra);
    let old_mtime = fs::metadata(&dst).unwrap().mtime();

    // FAIL, the default, twice (flat and nested): refused, the old file untouched.
    for a in [
        args(json!({})),
        nested(args(json!({"on_conflict": "FAIL"}))),
    ] {
        let err = f.h.tool_error("scp_upload", a).await;
        assert_eq!(err["error_kind"], "already-exists", "{err}");
        assert!(
            err["error"].as_str().unwrap().contains("OVERWRITE"),
            "{err}"
        );
        assert_eq!(fs::read(&dst).unwrap(), b"old remote content\n");
        assert_eq!(fs::metadata(&dst).unwrap().mtime(), old_mtime);
    }

    // RENAME twice back to back (flat, then nested): two new names, neither the original.
    let r1 =
        f.h.ok("scp_upload", args(json!({"on_conflict": "RENAME"})))
            .await;
    let r2 =
        f.h.ok("scp_upload", nested(args(json!({"on_conflict": "RENAME"}))))
            .await;
    let p1 = PathBuf::from(r1["remote_path"].as_str().unwrap());
    let p2 = PathBuf::from(r2["remote_path"].as_str().unwrap());
    check_transfer(&r1, 4096, &src, &p1, "renamed");
    check_transfer(&r2, 4096, &src, &p2, "renamed");
    assert_ne!(p1, p2, "the second RENAME reused the first name");
    for p in [&p1, &p2] {
        assert_ne!(p, &dst);
        assert_eq!(p.parent(), dst.parent(), "renamed beside the original");
        assert!(
            same_bytes(&src, p),
            "{} differs from the source",
            p.display()
        );
    }
    let (stamp1, n1) = parse_renamed(&p1.file_name().unwrap().to_string_lossy(), "notes", ".txt");
    let (stamp2, n2) = parse_renamed(&p2.file_name().unwrap().to_string_lossy(), "notes", ".txt");
    if stamp1 == stamp2 {
        assert!(
            n2.unwrap_or(1) > n1.unwrap_or(1),
            "same second, the second name needs a higher counter: {p1:?} {p2:?}"
        );
    }
    assert_eq!(fs::read(&dst).unwrap(), b"old remote content\n");

    // OVERWRITE twice (flat, nested), with a different source each time: replaced.
    let out =
        f.h.ok("scp_upload", args(json!({"on_conflict": "OVERWRITE"})))
            .await;
    check_transfer(&out, 4096, &src, &dst, "overwritten");
    assert!(same_bytes(&src, &dst));
    random_file(&src, 5000);
    let out =
        f.h.ok(
            "scp_upload",
            nested(args(json!({"on_conflict": "OVERWRITE"}))),
        )
        .await;
    check_transfer(&out, 5000, &src, &dst, "overwritten");
    assert!(same_bytes(&src, &dst));

    // Without a conflict, OVERWRITE and RENAME just write the file.
    for (mode, name) in [("OVERWRITE", "fresh1.txt"), ("rename", "fresh2.txt")] {
        let fresh = f.remote(name);
        let out = f.upload(&src, &fresh, json!({"on_conflict": mode})).await;
        check_transfer(&out, 5000, &src, &fresh, "none");
        assert!(same_bytes(&src, &fresh));
    }

    let mut expected = vec![
        "fresh1.txt".to_owned(),
        "fresh2.txt".to_owned(),
        "notes.txt".to_owned(),
        p1.file_name().unwrap().to_string_lossy().into_owned(),
        p2.file_name().unwrap().to_string_lossy().into_owned(),
    ];
    expected.sort();
    assert_eq!(
        names(&f.scratch()),
        expected,
        "exactly these files, no temporaries"
    );
}

#[tokio::test]
async fn download_conflict_modes_twice_in_a_row() {
    let f = Files::start().await;
    let remote = f.remote_random("archive.tar.gz", 70_000);
    let dst = f.local("archive.tar.gz");
    fs::write(&dst, "local edits\n").unwrap();
    let args = |extra: Value| transfer_args(&dst, &remote, extra);

    for a in [
        args(json!({"on_conflict": "FAIL"})),
        nested(args(json!({}))),
    ] {
        let err = f.h.tool_error("scp_download", a).await;
        assert_eq!(err["error_kind"], "already-exists", "{err}");
        assert!(
            err["error"].as_str().unwrap().contains("OVERWRITE"),
            "{err}"
        );
        assert_eq!(fs::read_to_string(&dst).unwrap(), "local edits\n");
    }

    // RENAME twice: the timestamp goes before the last extension.
    let r1 =
        f.h.ok(
            "scp_download",
            nested(args(json!({"on_conflict": "RENAME"}))),
        )
        .await;
    let r2 =
        f.h.ok("scp_download", args(json!({"on_conflict": "RENAME"})))
            .await;
    let p1 = PathBuf::from(r1["local_path"].as_str().unwrap());
    let p2 = PathBuf::from(r2["local_path"].as_str().unwrap());
    check_transfer(&r1, 70_000, &p1, &remote, "renamed");
    check_transfer(&r2, 70_000, &p2, &remote, "renamed");
    assert_ne!(p1, p2, "the second RENAME reused the first name");
    for p in [&p1, &p2] {
        assert_ne!(p, &dst);
        assert_eq!(p.parent(), dst.parent());
        assert!(same_bytes(&remote, p));
    }
    let (stamp1, n1) = parse_renamed(
        &p1.file_name().unwrap().to_string_lossy(),
        "archive.tar",
        ".gz",
    );
    let (stamp2, n2) = parse_renamed(
        &p2.file_name().unwrap().to_string_lossy(),
        "archive.tar",
        ".gz",
    );
    if stamp1 == stamp2 {
        assert!(n2.unwrap_or(1) > n1.unwrap_or(1), "{p1:?} {p2:?}");
    }
    assert_eq!(fs::read_to_string(&dst).unwrap(), "local edits\n");

    // OVERWRITE twice, the remote file changing in between.
    let out =
        f.h.ok("scp_download", args(json!({"on_conflict": "overwrite"})))
            .await;
    check_transfer(&out, 70_000, &dst, &remote, "overwritten");
    assert!(same_bytes(&remote, &dst));
    random_file(&remote, 80_000);
    let out =
        f.h.ok(
            "scp_download",
            nested(args(json!({"on_conflict": "OVERWRITE"}))),
        )
        .await;
    check_transfer(&out, 80_000, &dst, &remote, "overwritten");
    assert!(same_bytes(&remote, &dst));

    let mut expected = vec![
        "archive.tar.gz".to_owned(),
        p1.file_name().unwrap().to_string_lossy().into_owned(),
        p2.file_name().unwrap().to_string_lossy().into_owned(),
    ];
    expected.sort();
    assert_eq!(names(f.local.path()), expected, "no temporaries left");
}

#[tokio::test]
async fn rename_of_names_without_extension() {
    let f = Files::start().await;
    let src = f.local("src");
    random_file(&src, 10);
    for (name, stem, ext) in [(".bashrc", ".bashrc", ""), ("Makefile", "Makefile", "")] {
        let dst = f.put_remote(name, b"old");
        let out = f.upload(&src, &dst, json!({"on_conflict": "RENAME"})).await;
        let renamed = PathBuf::from(out["remote_path"].as_str().unwrap());
        check_transfer(&out, 10, &src, &renamed, "renamed");
        parse_renamed(&renamed.file_name().unwrap().to_string_lossy(), stem, ext);
        assert_eq!(fs::read(&dst).unwrap(), b"old");
    }
}
