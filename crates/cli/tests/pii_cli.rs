//! `learnpulse pii scan` as the GUIDE specifies it: JSON lines in and out, code-point offsets.

use std::io::Write;
use std::process::{Command, Stdio};

fn scan(args: &[&str], input: &str) -> Vec<serde_json::Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_learnpulse"))
        .args(["pii", "scan"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn scan_reports_code_point_spans_per_line() {
    let out = scan(
        &[],
        "{\"id\": \"a\", \"text\": \"Zoë wrote from zoe@example.org\"}\n{\"id\": 2, \"text\": \"nothing\"}\n",
    );
    assert_eq!(out.len(), 2);
    assert_eq!(out[0]["id"], "a");
    let email = out[0]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["type"] == "EMAIL_ADDRESS")
        .unwrap();
    assert_eq!(
        (email["start"].as_u64(), email["end"].as_u64()),
        (Some(15), Some(30))
    );
    assert!(email["score"].as_f64().unwrap() > 0.9);
    assert_eq!(out[1]["spans"], serde_json::json!([]));
}

#[test]
fn roster_names_and_redaction() {
    let dir = tempfile::tempdir().unwrap();
    let roster = dir.path().join("roster.txt");
    std::fs::write(&roster, "Gijsbrecht van Hecke\n").unwrap();
    let input = "{\"id\": 1, \"text\": \"gijsbrecht van hecke mailed ada@school.org, then gijsbrecht van hecke again\"}\n";
    let out = scan(&["--roster", roster.to_str().unwrap(), "--redact"], input);
    assert_eq!(
        out[0]["text"],
        "<PERSON_1> mailed <EMAIL_1>, then <PERSON_1> again"
    );
}
