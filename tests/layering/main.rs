//! The layering rules of ARCHITECTURE.md, checked on the source: each outside crate that
//! defines a layer is used only inside that layer, and the lower layers never reach up.
//! A rule broken on purpose (say, `use rmcp::model::Tool;` in `host/src/ssh/exec.rs`)
//! fails this test with the file and the rule. Also: every WIT interface the host
//! provides has its own host file, `host/src/plugin/host/<interface>.rs`.

use std::path::{Path, PathBuf};

/// (crate path prefix, the files or folders of `host/src` allowed to use it, the layer).
const CRATE_LAYERS: &[(&[&str], &[&str], &str)] = &[
    (&["rmcp::"], &["mcp/"], "the MCP layer (rmcp)"),
    (
        &["russh::", "russh_sftp::"],
        &["ssh/", "sftp/"],
        "the SSH layer (russh, russh-sftp)",
    ),
    (
        &["wasmtime::", "wasmtime_wasi::"],
        &["plugin/"],
        "the component layer (wasmtime)",
    ),
];

/// (folder or file, upper modules it must not use): lower layers never reach up.
const NO_REACHING_UP: &[(&str, &[&str])] = &[
    // Putting the host together serves `mcpssh call` too: MCP is layered on top of it.
    ("app.rs", &["crate::mcp"]),
    (
        "ssh/",
        &[
            "crate::mcp",
            "crate::plugin",
            "crate::policy",
            "crate::app",
            "crate::sftp",
            "crate::sessions",
        ],
    ),
    (
        "sftp/",
        &[
            "crate::mcp",
            "crate::plugin",
            "crate::policy",
            "crate::app",
            "crate::sessions",
        ],
    ),
    (
        "sessions/",
        &[
            "crate::mcp",
            "crate::plugin",
            "crate::policy",
            "crate::app",
            "crate::jobs",
        ],
    ),
    (
        "local/",
        &[
            "crate::mcp",
            "crate::plugin",
            "crate::ssh",
            "crate::sftp",
            "crate::sessions",
        ],
    ),
    ("plugin/", &["crate::mcp", "crate::app", "rmcp"]),
    (
        "plugin/host/",
        &[
            "crate::plugin::runtime",
            "crate::plugin::registry",
            "crate::plugin::capability",
            "crate::plugin::grants",
            "crate::plugin::annotations",
        ],
    ),
    ("policy/", &["crate::mcp", "crate::app", "crate::plugin"]),
    (
        "jobs/",
        &["crate::mcp", "crate::app", "crate::plugin", "crate::policy"],
    ),
];

fn host_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code without comments (`//` to the end of the line), so prose may name
/// any crate.
fn code_of(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `code` mentions `name` as a path (not as part of a longer identifier, before
/// or, for a module name, after: `crate::ssh` is not `crate::ssh_config`, while the crate
/// prefix `rmcp::` is mentioned by `rmcp::model`).
fn mentions(code: &str, name: &str) -> bool {
    let identifier = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(name).any(|(i, _)| {
        let after = code[i + name.len()..].chars().next();
        !code[..i].chars().next_back().is_some_and(identifier)
            && (name.ends_with("::") || !after.is_some_and(identifier))
    })
}

#[test]
fn a_module_is_not_mistaken_for_a_longer_one() {
    assert!(mentions("use crate::ssh::Target;", "crate::ssh"));
    assert!(mentions("crate::ssh;", "crate::ssh"));
    assert!(!mentions("use crate::ssh_config::SshConfig;", "crate::ssh"));
    assert!(!mentions("use mycrate::ssh::X;", "crate::ssh"));
    assert!(mentions("use rmcp::model::Tool;", "rmcp::"));
}

#[test]
fn outside_crates_stay_in_their_layers_and_lower_layers_never_reach_up() {
    let root = host_src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(
        files.len() > 20,
        "host/src was not found at {}",
        root.display()
    );
    let mut broken = Vec::new();
    for file in &files {
        let relative = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .to_string();
        let code = code_of(file);
        for (prefixes, allowed, layer) in CRATE_LAYERS {
            let inside = allowed.iter().any(|a| relative.starts_with(a));
            for prefix in *prefixes {
                if !inside && mentions(&code, prefix) {
                    broken.push(format!(
                        "{relative} uses `{prefix}`, which belongs to {layer}"
                    ));
                }
            }
        }
        for (folder, upper) in NO_REACHING_UP {
            if relative.starts_with(folder) {
                for name in *upper {
                    if mentions(&code, name) {
                        broken.push(format!("{relative} (in {folder}) reaches up to `{name}`"));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

/// The `.wit` files of the contract, wherever under `guest-tools/sdk/wit/` they are.
fn wit_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            wit_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "wit") {
            out.push(path);
        }
    }
}

/// The word after `keyword` on each line of `text` that starts with it (`interface x {`,
/// `export x;`).
fn declared<'a>(text: &'a str, keyword: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix(keyword)?.strip_prefix(' '))
        .filter_map(|rest| rest.split([' ', '{', ';']).next())
        .filter(|name| !name.is_empty())
        .collect()
}

#[test]
fn every_interface_the_host_provides_has_its_own_host_file() {
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-tools/sdk/wit");
    let mut files = Vec::new();
    wit_files(&wit, &mut files);
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let exported: Vec<&str> = texts.iter().flat_map(|t| declared(t, "export")).collect();
    let mut provided: Vec<&str> = texts
        .iter()
        .flat_map(|t| declared(t, "interface"))
        .filter(|i| !exported.contains(i))
        .collect();
    provided.sort();
    provided.dedup();
    assert!(
        provided.contains(&"exec"),
        "no WIT interfaces found under {}",
        wit.display()
    );
    let host_dir = host_src().join("plugin/host");
    let missing: Vec<String> = provided
        .iter()
        .map(|i| format!("{}.rs", i.replace('-', "_")))
        .filter(|file| !host_dir.join(file).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "each WIT interface the host provides has its host side in host/src/plugin/host/<interface>.rs; missing: {}",
        missing.join(", ")
    );
}
