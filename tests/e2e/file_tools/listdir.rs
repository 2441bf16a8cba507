//! `scp_listdir`, compared with what `ls` and `stat` say.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use super::{Files, run, s};
use crate::common::assert_invalid_argument;

/// `date -u -d @SECS +%Y-%m-%dT%H:%M:%SZ`.
fn iso_utc(secs: i64) -> String {
    run(Command::new("date")
        .arg("-u")
        .arg("-d")
        .arg(format!("@{secs}"))
        .arg("+%Y-%m-%dT%H:%M:%SZ"))
    .trim()
    .to_owned()
}

/// What `stat` says about one entry, in the tool's terms.
fn stat_entry(path: &Path) -> Value {
    let text = run(Command::new("stat")
        .args(["-c", "%s|%a|%A|%Y|%F"])
        .arg(path));
    let parts: Vec<&str> = text.trim_end_matches('\n').split('|').collect();
    let kind = match parts[4] {
        "regular file" | "regular empty file" => "file",
        "directory" => "directory",
        "symbolic link" => "symlink",
        _ => "other",
    };
    let mut mode = parts[2].to_owned();
    if !matches!(&mode[..1], "-" | "d" | "l") {
        mode.replace_range(..1, "?");
    }
    let octal = u32::from_str_radix(parts[1], 8).unwrap();
    json!({
        "name": path.file_name().unwrap().to_string_lossy(),
        "type": kind,
        "size": parts[0].parse::<u64>().unwrap(),
        "permissions": format!("{octal:04o}"),
        "mode": mode,
        "modified": iso_utc(parts[3].parse().unwrap()),
    })
}

#[tokio::test]
async fn listdir_matches_ls_and_stat() {
    let f = Files::start().await;
    let dir = f.remote("tree");
    // Made by the test user, as a real remote directory would be.
    f.h.exec(&format!(
        "mkdir {d} && cd {d} && printf abc > b.txt && touch -d '2021-02-03 04:05:06 UTC' b.txt \
         && printf secret > .hidden && chmod 600 .hidden \
         && mkdir adir && chmod 750 adir && mkdir sticky && chmod 1777 sticky \
         && ln -s b.txt link && ln -s /nonexistent dangling && ln -s adir dirlink \
         && head -c 1048577 /dev/urandom > big.bin && chmod 755 big.bin \
         && printf x > suid && chmod 4755 suid \
         && : > empty && chmod 2755 empty && printf z > Zcaps && printf s > 'with space.txt' \
         && printf u > 'ünï.txt' && mkfifo fifo && touch -h -d '1999-12-31 23:59:59 UTC' link",
        d = s(&dir)
    ))
    .await;
    // `ls -A` in the C locale: every name but . and .., in byte order.
    let ls = run(Command::new("ls").env("LC_ALL", "C").arg("-A1").arg(&dir));
    let expected_names: Vec<&str> = ls.lines().collect();
    let n = expected_names.len();
    assert_eq!(n, 14, "{ls}");

    let out = f.h.ok("scp_listdir", json!({"path": s(&dir)})).await;
    assert_eq!(out["success"], true);
    assert_eq!(out["path"], s(&dir));
    assert_eq!(out["count"], n, "{out}");
    assert_eq!(out["truncated"], false);
    assert!(out.get("note").is_none_or(Value::is_null), "{out}");
    let entries = out["entries"].as_array().unwrap();
    let got_names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(got_names, expected_names, "names, hidden included, sorted");
    for entry in entries {
        let expected = stat_entry(&dir.join(entry["name"].as_str().unwrap()));
        assert_eq!(entry, &expected, "the entry differs from stat");
    }
    let by_name = |n: &str| entries.iter().find(|e| e["name"] == n).unwrap();
    assert_eq!(by_name("b.txt")["modified"], "2021-02-03T04:05:06Z");
    assert_eq!(by_name("link")["modified"], "1999-12-31T23:59:59Z", "lstat");
    assert_eq!(by_name("link")["type"], "symlink");
    assert_eq!(by_name("dirlink")["type"], "symlink");
    assert_eq!(by_name("dangling")["type"], "symlink");
    assert_eq!(by_name("sticky")["mode"], "drwxrwxrwt");
    assert_eq!(by_name("sticky")["permissions"], "1777");
    assert_eq!(by_name("empty")["mode"], "-rwxr-sr-x");
    assert_eq!(by_name("suid")["mode"], "-rwsr-xr-x");
    assert_eq!(by_name("suid")["permissions"], "4755");
    assert_eq!(by_name("big.bin")["size"], 1048577);

    // `limit` equal to the count: all of it, not truncated; one less: cut, with a note.
    let out =
        f.h.ok("scp_listdir", json!({"path": s(&dir), "limit": n}))
            .await;
    assert_eq!(out["count"], n);
    assert_eq!(out["truncated"], false, "{out}");
    let out =
        f.h.ok("scp_listdir", json!({"path": s(&dir), "limit": 3}))
            .await;
    assert_eq!(out["truncated"], true, "{out}");
    assert_eq!(out["count"], 3, "{out}");
    let cut = out["entries"].as_array().unwrap();
    assert_eq!(cut.len(), 3);
    let cut_names: Vec<&str> = cut.iter().map(|e| e["name"].as_str().unwrap()).collect();
    let mut sorted = cut_names.clone();
    sorted.sort();
    assert_eq!(cut_names, sorted, "a cut listing is sorted too");
    for entry in cut {
        assert_eq!(
            entry,
            &stat_entry(&dir.join(entry["name"].as_str().unwrap()))
        );
    }
    assert!(
        out["note"].as_str().is_some_and(|n| n.len() > 10),
        "a cut listing says so: {out}"
    );
    for bad in [0, 10_001] {
        let err =
            f.h.tool_error("scp_listdir", json!({"path": s(&dir), "limit": bad}))
                .await;
        assert_invalid_argument(&err, "limit");
    }

    // Paths are canonicalised; the default is the home directory.
    let out =
        f.h.ok(
            "scp_listdir",
            json!({"path": format!("{}/adir/..", s(&dir))}),
        )
        .await;
    assert_eq!(out["path"], s(&dir), "canonical path");
    assert_eq!(out["count"], n, "{out}");
    let home = f.h.ok("scp_listdir", json!({})).await;
    assert_eq!(home["path"], "/home/mcpssh-test", "{home}");

    // An empty directory, a file, a missing path.
    let out =
        f.h.ok("scp_listdir", json!({"path": s(&dir.join("adir"))}))
            .await;
    assert_eq!(out["entries"], json!([]));
    assert_eq!(out["count"], 0);
    let err =
        f.h.tool_error("scp_listdir", json!({"path": s(&dir.join("b.txt"))}))
            .await;
    assert!(
        err["error"].as_str().unwrap().contains("not a directory"),
        "{err}"
    );
    let err =
        f.h.tool_error("scp_listdir", json!({"path": s(&dir.join("missing"))}))
            .await;
    assert_eq!(err["error_kind"], "not-found", "{err}");
}
