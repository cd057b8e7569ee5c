//! The ADL LRS conformance suite (`scripts/xapi-conformance.sh`): both xAPI versions, on a tenant
//! whose policy echoes statements exactly, against a freshly started server on SQLite and then
//! on PostgreSQL. Every test of the suite must pass.
//!
//! The suite comes with the product brief (`shared/xapi-conformance-suite`); the script copies
//! it under `target/` and installs its npm packages there once.

mod common;

use std::path::Path;
use std::process::Command;

/// What the script printed for one version: `{version, total, passed, failed, log}`.
fn summaries(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("version").is_some())
        .collect()
}

fn run_suite(root: &Path, backend: &str, storage: Option<String>) {
    let mut command = Command::new("bash");
    command
        .arg("scripts/xapi-conformance.sh")
        .current_dir(root)
        .env("LEARNPULSE_BIN", env!("CARGO_BIN_EXE_learnpulse"));
    if let Some(url) = storage {
        command.env("STORAGE", url);
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let runs = summaries(&stdout);
    let versions: Vec<&str> = runs.iter().filter_map(|r| r["version"].as_str()).collect();
    assert_eq!(
        versions,
        ["2.0.0", "1.0.3"],
        "{backend}: the suite did not report both versions\n{stdout}\n{stderr}"
    );
    for run in &runs {
        let version = run["version"].as_str().unwrap();
        let failures = std::fs::read_to_string(
            root.join(format!("target/xapi-conformance/failures-{version}.txt")),
        )
        .unwrap_or_default();
        assert!(
            run["failed"] == 0
                && run["passed"] == run["total"]
                && run["total"].as_u64() > Some(1_000),
            "{backend}, xAPI {version}: {run}\n{failures}"
        );
    }
    assert!(out.status.success(), "{backend}: {stdout}\n{stderr}");
}

#[test]
fn the_adl_conformance_suite_passes_on_every_backend() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    run_suite(&root, "sqlite", None);
    let dir = tempfile::tempdir().unwrap();
    run_suite(&root, "postgres", Some(common::postgres_url(dir.path())));
}
