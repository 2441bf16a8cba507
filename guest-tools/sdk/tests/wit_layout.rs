//! The layout `wit/README.md` promises: each version folder holds one file per interface,
//! named after it, and the package (with its exact version) is declared once, in
//! `world.wit`, with a version inside the folder's compatible range.

use std::path::{Path, PathBuf};

fn wit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("wit")
}

/// The `.wit` files of a version folder, by file stem, with their text.
fn files(folder: &Path) -> Vec<(String, String)> {
    let mut files: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "wit"))
        .map(|path| {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            (stem, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// The names following `keyword ` at the start of a line (`interface`, `world`, `package`).
fn declared<'a>(text: &'a str, keyword: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|line| line.strip_prefix(keyword)?.strip_prefix(' '))
        .map(|rest| rest.trim_end_matches(['{', ';', ' ']))
        .collect()
}

#[test]
fn each_version_folder_declares_its_package_once_in_range() {
    let folders: Vec<_> = std::fs::read_dir(wit_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    assert!(!folders.is_empty(), "no version folder in {:?}", wit_dir());
    for folder in folders {
        let range = folder.file_name().unwrap().to_string_lossy().into_owned();
        let range = range
            .strip_prefix('v')
            .unwrap_or_else(|| panic!("{folder:?}: version folders are named v<range>"));
        let packages: Vec<_> = files(&folder)
            .iter()
            .flat_map(|(stem, text)| {
                declared(text, "package")
                    .into_iter()
                    .map(move |p| (stem.clone(), p.to_owned()))
            })
            .collect();
        assert_eq!(
            packages.len(),
            1,
            "{folder:?}: the package must be declared exactly once, in world.wit: {packages:?}"
        );
        let (file, package) = &packages[0];
        assert_eq!(file, "world", "{folder:?}");
        let version = package
            .strip_prefix("mcpssh:plugin@")
            .unwrap_or_else(|| panic!("{folder:?}: package {package}"));
        assert!(
            version.starts_with(&format!("{range}.")),
            "{folder:?}: version {version} is outside the folder's range {range}.x"
        );
    }
}

#[test]
fn each_interface_has_its_own_file() {
    for (stem, text) in files(&wit_dir().join("v0.1")) {
        let interfaces = declared(&text, "interface");
        if stem == "world" {
            assert!(interfaces.is_empty(), "world.wit declares {interfaces:?}");
            assert_eq!(declared(&text, "world"), ["tool-component"]);
        } else {
            assert_eq!(interfaces, [stem.as_str()], "{stem}.wit");
        }
    }
}
