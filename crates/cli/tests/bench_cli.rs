//! `learnpulse bench`, run as CI's smoke run does: every suite, quick (it checks that the
//! framework works, not how fast: nothing here is timed), then the report and comparisons.

use std::process::Command;

fn learnpulse(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_learnpulse"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("the binary runs")
}

#[test]
fn every_suite_runs_stores_its_results_and_draws_them() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.jsonl");
    let results = results.to_str().unwrap();
    let out = learnpulse(&[
        "bench",
        "run",
        "--quick",
        "--runs",
        "2",
        "--results",
        results,
        "--postgres",
        "postgres://postgres@127.0.0.1:5432",
        "--redis",
        "redis://127.0.0.1:6379",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<serde_json::Value> = std::fs::read_to_string(results)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Every suite measured something, with the run's commit and machine.
    for suite in [
        "ingest",
        "sustained",
        "queries",
        "live",
        "webhooks",
        "privacy",
        "model",
        "cluster",
    ] {
        assert!(
            records.iter().any(|r| r["suite"] == suite),
            "{suite} measured nothing"
        );
    }
    for r in &records {
        // Repeated runs give two samples; the sustained suite samples each stretch of one run.
        if r["suite"] != "sustained" {
            assert_eq!(r["samples"].as_array().unwrap().len(), 2, "{r}");
        }
        assert!(r["median"].as_f64().unwrap().is_finite(), "{r}");
        assert!(r["machine"]["cores"].as_u64().unwrap() >= 1);
    }
    assert!(
        stdout.contains("ingest/xapi_statements_per_second"),
        "{stdout}"
    );
    // The live suite's crowd (100 subscribers when quick, in a child process) received every
    // intervention the probe saw.
    let share = records
        .iter()
        .find(|r| r["suite"] == "live" && r["metric"] == "crowd_delivered_share")
        .expect("the crowd's share");
    assert_eq!(share["median"].as_f64(), Some(1.0), "{share}");

    // The report: one chart per metric, nothing fetched.
    let page = dir.path().join("report.html");
    let out = learnpulse(&[
        "bench",
        "report",
        "--results",
        results,
        "--output",
        page.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    let curves = records.iter().filter(|r| r["curve"].is_array()).count();
    assert_eq!(curves, 1, "the sustained-ingest curve");
    assert_eq!(html.matches("<svg").count(), records.len() + curves);
    assert!(!html.contains("<script"));

    // A run against itself is no regression; against a baseline twice as fast, ingest is one.
    let out = learnpulse(&[
        "bench",
        "compare",
        "--baseline",
        results,
        "--results",
        results,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let faster: String = std::fs::read_to_string(results)
        .unwrap()
        .lines()
        .map(|l| {
            let mut r: serde_json::Value = serde_json::from_str(l).unwrap();
            if r["metric"] == "xapi_statements_per_second" {
                r["median"] = serde_json::json!(r["median"].as_f64().unwrap() * 2.0);
            }
            format!("{r}\n")
        })
        .collect();
    let baseline = dir.path().join("baseline.jsonl");
    std::fs::write(&baseline, faster).unwrap();
    let out = learnpulse(&[
        "bench",
        "compare",
        "--baseline",
        baseline.to_str().unwrap(),
        "--results",
        results,
    ]);
    assert!(
        !out.status.success(),
        "a halved ingest rate is a regression"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("REGRESSED"));
}

#[test]
fn an_unknown_suite_is_a_clear_error() {
    let out = learnpulse(&["bench", "run", "--suite", "nope", "--no-save"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no suite \"nope\""), "{stderr}");
}
