//! `learnpulse bench cache`: Zipf reads through the learner layers report each layer's share
//! and latency; with Redis as L2, learners read again after leaving memory come from Redis.

use std::process::Command;

use serde_json::Value;

fn bench(extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_learnpulse"))
        .args(["bench", "cache", "--learners", "3000", "--reads", "4000"])
        .args(["--in-memory", "300", "--zipf", "1.0"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn share(report: &Value, layer: &str) -> f64 {
    report["measured"]["layers"][layer]["share"]
        .as_f64()
        .unwrap()
}

#[test]
fn zipf_reads_are_served_by_every_layer_and_counted() {
    // L1 and L3 only (no Redis).
    let report = bench(&[]);
    assert_eq!(report["learners"], 3000);
    assert_eq!(report["l2"], "none");
    let total: f64 = ["l1", "l2", "l3"].iter().map(|l| share(&report, l)).sum();
    assert!((total - 1.0).abs() < 1e-9, "{report}");
    assert_eq!(share(&report, "l2"), 0.0);
    assert!(
        share(&report, "l1") > 0.5,
        "the popular learners stay: {report}"
    );
    assert!(share(&report, "l3") > 0.0, "the rest is loaded: {report}");
    assert!(report["held_after"].as_u64().unwrap() <= 300, "{report}");

    // With Redis: what left memory after the warm-up is read back from L2.
    let report = bench(&["--cache", "redis://127.0.0.1:6379"]);
    assert_eq!(report["l2"], "redis");
    assert!(share(&report, "l2") > 0.0, "{report}");
    assert!(
        report["measured"]["l1_l2_hit"].as_f64().unwrap() > share(&report, "l1"),
        "{report}"
    );
}
