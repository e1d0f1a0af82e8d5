//! Repository checks that run with the test suite: every Rust file opens with a `//!` module
//! doc, has no trailing whitespace, and keeps planning references out of the code.

use std::path::{Path, PathBuf};

use crate::workspace_root;

/// Folders whose Rust files are checked.
const CHECKED_FOLDERS: [&str; 4] = ["crates", "xtask", "benches", "fuzz"];

/// Text that must not appear in the code: references to planning material outside the
/// repository.
const FORBIDDEN: [&str; 2] = ["../shared", "issue #"];

fn rust_files(folder: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && path.file_name().is_some_and(|name| name != "target") {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

fn all_rust_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for folder in CHECKED_FOLDERS {
        rust_files(&workspace_root().join(folder), &mut files);
    }
    files.sort();
    files
}

#[test]
fn every_rust_file_opens_with_module_doc() {
    let files = all_rust_files();
    assert!(files.len() > 20, "found only {} Rust files", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a //! module doc: {missing:#?}"
    );
}

#[test]
fn no_trailing_whitespace() {
    let mut offenders = Vec::new();
    for path in all_rust_files() {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for (index, line) in text.lines().enumerate() {
            if line.ends_with(' ') || line.ends_with('\t') {
                offenders.push(format!("{}:{}", path.display(), index + 1));
            }
        }
    }
    assert!(offenders.is_empty(), "trailing whitespace: {offenders:#?}");
}

#[test]
fn no_planning_references_in_code() {
    let mut offenders = Vec::new();
    for path in all_rust_files() {
        if path.ends_with("tidy.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for (index, line) in text.lines().enumerate() {
            if FORBIDDEN.iter().any(|forbidden| line.contains(forbidden)) {
                offenders.push(format!("{}:{}: {line}", path.display(), index + 1));
            }
        }
    }
    assert!(offenders.is_empty(), "planning references: {offenders:#?}");
}
