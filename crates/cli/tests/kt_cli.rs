//! The knowledge-tracing commands, run as a user would: `kt eval`, `kt fit`, `replay`.

use std::process::Command;

fn learnpulse(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_learnpulse"))
        .args(args)
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A small log: 40 learners, two skills, learners improve with practice.
fn write_log(path: &std::path::Path, offset: u32, extra_columns: bool) {
    let mut text = String::from(if extra_columns {
        "user_id,seq,skill_name,correct,ms_first_response,hint_count,attempt_count\n"
    } else {
        "user_id,seq,skill_name,correct\n"
    });
    for u in 0..40u32 {
        for seq in 0..20u32 {
            let skill = if seq % 3 == 0 {
                "Area, rectangles"
            } else {
                "fractions"
            };
            let correct = (u * 7 + seq * 13 + offset) % 10 < 3 + seq / 3;
            let line = if extra_columns {
                format!(
                    "u{u},{seq},\"{skill}\",{},{},{},1\n",
                    u8::from(correct),
                    4_000 + seq * 300,
                    u8::from(!correct)
                )
            } else {
                format!("u{u},{seq},\"{skill}\",{}\n", u8::from(correct))
            };
            text.push_str(&line);
        }
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn kt_eval_writes_a_prediction_for_every_test_row_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test, predictions) = (
        dir.path().join("train.csv"),
        dir.path().join("test.csv"),
        dir.path().join("p.csv"),
    );
    write_log(&train, 0, false);
    write_log(&test, 5, true);
    for model in ["bkt", "bkt-forget", "logistic"] {
        let out = learnpulse(&[
            "kt",
            "eval",
            "--train",
            train.to_str().unwrap(),
            "--test",
            test.to_str().unwrap(),
            "--predictions",
            predictions.to_str().unwrap(),
            "--model",
            model,
        ]);
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["test_rows"], 800);
        assert!(summary["auc"].as_f64().unwrap() > 0.5, "{model}: {summary}");
        let written = std::fs::read_to_string(&predictions).unwrap();
        let mut lines = written.lines();
        assert_eq!(
            lines.next(),
            Some("user_id,seq,skill_name,correct,p_correct")
        );
        let test_text = std::fs::read_to_string(&test).unwrap();
        for (p, t) in lines.zip(test_text.lines().skip(1)) {
            // Same learner, seq and skill as the test row, in the same order.
            assert!(p.starts_with(&t[..t.find(",\"").unwrap()]), "{p} vs {t}");
            let value: f64 = p.rsplit(',').next().unwrap().parse().unwrap();
            assert!((0.0..=1.0).contains(&value));
        }
    }
}

#[test]
fn a_fitted_model_drives_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (log, model, states) = (
        dir.path().join("log.csv"),
        dir.path().join("model.json"),
        dir.path().join("s.csv"),
    );
    write_log(&log, 0, true);
    learnpulse(&[
        "kt",
        "fit",
        "--train",
        log.to_str().unwrap(),
        "--output",
        model.to_str().unwrap(),
    ]);
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    assert_eq!(file["format"], "learnpulse-skill-model");
    assert!(file["skill_model"]["skills"]["fractions"]["learn"].is_number());
    assert_eq!(
        file["skill_model"]["wheel_spin"]["weights"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    // The log has response times: the load index's weights are fitted into the file.
    let load = &file["skill_model"]["load"];
    assert!(load["error_streak"].as_f64().unwrap() >= 0.0, "{load}");

    let out = learnpulse(&[
        "replay",
        "--input",
        log.to_str().unwrap(),
        "--output",
        states.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--evidence",
    ]);
    let text = std::fs::read_to_string(&states).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "user_id,seq,skill_name,p_correct,mastery,load_index,load_level,rapid_guess,wheel_spinning,risk"
        )
    );
    assert_eq!(lines.count(), 800);
    let evidence: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(evidence["all_rows"]["rows"], 800);
    assert!(evidence["signals"]["wheel_spinning"]["on"]["rows"].is_number());
}

#[test]
fn the_load_index_weights_are_fitted_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (dir.path().join("train.csv"), dir.path().join("test.csv"));
    write_log(&train, 0, true);
    write_log(&test, 5, true);
    let out = learnpulse(&[
        "kt",
        "load-fit",
        "--train",
        train.to_str().unwrap(),
        "--test",
        test.to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rows"], 800);
    assert_eq!(report["learners"], 40);
    let (hand, fitted) = (&report["weights"]["hand_set"], &report["weights"]["fitted"]);
    let observed = &report["observed"];
    let (mut hand_total, mut fitted_total) = (0.0, 0.0);
    for (signal, w) in fitted.as_object().unwrap() {
        let w = w.as_f64().unwrap();
        assert!(w >= 0.0, "{signal}: {w}");
        if observed[signal] == 1.0 {
            hand_total += hand[signal].as_f64().unwrap();
            fitted_total += w;
        } else {
            assert_eq!(hand[signal], fitted[signal], "{signal} is not in the log");
        }
    }
    assert!(
        (hand_total - fitted_total).abs() < 0.01,
        "the fitted weights keep the hand-set total: {report}"
    );
    assert_eq!(observed["idle"], 0.0, "the log has no clock times");
    for part in [&report["cv"]["fitted"], &report["test"]["hand_set"]] {
        let auc = part["next_wrong_auc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&auc), "{report}");
    }
    assert_eq!(report["test"]["rows"], 800);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refits_on_its_own_log_and_loads_the_new_model() {
    use learnpulse_server::{Config, Server};
    let dir = tempfile::tempdir().unwrap();
    let config = || Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let server = Server::start(config()).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let token = server.bootstrap_key().unwrap().token.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let events: Vec<serde_json::Value> = (0..300)
        .map(|i| {
            serde_json::json!({"learner_id": format!("s{}", i % 30), "item_id": format!("q{}", i % 7),
                               "skills": ["ratios"], "outcome": if (i * 7) % 10 < 6 { "correct" } else { "incorrect" }})
        })
        .collect();
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/events"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"events": events}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();

    let out = learnpulse(&["kt", "fit", "--data-dir", dir.path().to_str().unwrap()]);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["rows"], 300);
    let current = dir.path().join("models/current.json");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&current).unwrap()).unwrap();
    assert!(file["skill_model"]["skills"]["ratios"]["prior"].is_number());
    let versions = std::fs::read_dir(dir.path().join("models"))
        .unwrap()
        .count();
    assert_eq!(versions, 2, "one versioned file and current.json");

    // A logistic model fitted on the log has a difficulty for each of its items.
    let logistic = dir.path().join("logistic.json");
    learnpulse(&[
        "kt",
        "fit",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--model",
        "logistic",
        "--output",
        logistic.to_str().unwrap(),
    ]);
    let fitted: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&logistic).unwrap()).unwrap();
    assert_eq!(fitted["skill_model"]["logistic"]["model"]["items"], 7);

    // The next start uses it: a learner's first-answer prediction is the fitted one.
    let server = Server::start(config()).await.unwrap();
    let fitted: learnpulse_core::SkillModel =
        serde_json::from_value(file["skill_model"].clone()).unwrap();
    let expected = fitted
        .params("ratios")
        .p_correct(fitted.params("ratios").initial_log_odds());
    let hub = &server.state().hub;
    assert_eq!(hub.learner_count(), 30, "the log was replayed");
    let engine_prediction = hub.predict(1, "new-learner", "ratios").await.unwrap();
    assert!(
        (engine_prediction - expected).abs() < 1e-12,
        "{engine_prediction} vs {expected}"
    );
}

/// One model, two doors: the engine behind `serve` and `replay`, given the model `kt fit`
/// wrote, predicts every row of a log exactly as `kt eval` does (same features from the same
/// history, same weights).
#[test]
fn the_engine_and_kt_eval_make_the_same_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    for (file, offset) in [("train.csv", 0u32), ("test.csv", 5)] {
        let mut text = String::from("user_id,seq,skill_name,correct,problem_id\n");
        for u in 0..40u32 {
            for seq in 0..25u32 {
                let skill = ["fractions", "Area, rectangles", "ratios"][(seq % 3) as usize];
                let item = (u * 3 + seq + offset) % 9;
                let correct = (u * 7 + seq * 13 + item * 5 + offset) % 10 < 3 + seq / 4;
                text.push_str(&format!(
                    "u{u},{seq},\"{skill}\",{},p{item}\n",
                    u8::from(correct)
                ));
            }
        }
        std::fs::write(dir.path().join(file), text).unwrap();
    }
    learnpulse(&[
        "kt",
        "fit",
        "--train",
        &path("train.csv"),
        "--model",
        "logistic",
        "--output",
        &path("model.json"),
    ]);
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path("model.json")).unwrap()).unwrap();
    assert_eq!(model["skill_model"]["logistic"]["model"]["items"], 9);
    learnpulse(&[
        "kt",
        "eval",
        "--train",
        &path("train.csv"),
        "--test",
        &path("test.csv"),
        "--model",
        "logistic",
        "--predictions",
        &path("eval.csv"),
    ]);
    learnpulse(&[
        "replay",
        "--input",
        &path("test.csv"),
        "--output",
        &path("replay.csv"),
        "--model",
        &path("model.json"),
    ]);
    let column = |file: &str, name: &str| -> Vec<f64> {
        let mut reader = csv::Reader::from_path(path(file)).unwrap();
        let at = reader
            .headers()
            .unwrap()
            .iter()
            .position(|h| h == name)
            .unwrap();
        reader
            .records()
            .map(|r| r.unwrap()[at].parse().unwrap())
            .collect()
    };
    let (eval, replay) = (
        column("eval.csv", "p_correct"),
        column("replay.csv", "p_correct"),
    );
    assert_eq!(eval.len(), 1_000);
    assert_eq!(eval.len(), replay.len());
    for (row, (a, b)) in eval.iter().zip(&replay).enumerate() {
        assert!((a - b).abs() <= 2e-6, "row {row}: kt eval {a}, engine {b}");
    }
    // Not a constant: the predictions follow the history.
    assert!(eval.iter().any(|p| (p - eval[0]).abs() > 0.05));
}
