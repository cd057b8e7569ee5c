//! Differentially private analytics, black-box: roles, releases, suppression, budgets and the
//! ledger under concurrent queries.

mod common;

use common::{TestApp, answered, problem};
use serde_json::{Value, json};

/// 30 learners in class-a (each 4 answers, 3 right), one in class-b.
async fn classroom(app: &TestApp) {
    let mut batch = Vec::new();
    for l in 0..30 {
        for (i, correct) in [true, true, false, true].into_iter().enumerate() {
            let mut s = answered(&format!("a{l}"), &format!("q{i}"), correct);
            s["context"]["extensions"]["https://learnpulse.dev/xapi/ext/group"] = json!("class-a");
            batch.push(s);
        }
    }
    let mut lonely = answered("b0", "q0", true);
    lonely["context"]["extensions"]["https://learnpulse.dev/xapi/ext/group"] = json!("class-b");
    batch.push(lonely);
    for chunk in batch.chunks(100) {
        let r = app
            .post_statements(&app.admin, &Value::Array(chunk.to_vec()))
            .await;
        assert_eq!(r.status(), 200);
    }
}

async fn researchers_get_noisy_counts_with_small_cohorts_suppressed() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    classroom(&app).await;
    // k = 10: class-b's single learner would need noise of +9 at scale 0.5 to show (p ≈ 1e-8).
    let r = app
        .client
        .put(app.url("/v1/privacy/policy"))
        .bearer_auth(&app.admin)
        .json(&json!({"k_anonymity": 10, "dp_epsilon_per_analyst": 100.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let researcher = app.key(&app.admin, "researcher").await;
    let teacher = app.key(&app.admin, "teacher").await;
    let query = json!({"measure": "learners", "by": "group", "epsilon": 2.0,
                       "max_cells_per_learner": 1, "cells": ["class-a", "class-b", "class-c"]});
    assert_eq!(
        app.post_json("/v1/analytics/count", &teacher, &query)
            .await
            .status(),
        403
    );

    let r = app
        .post_json("/v1/analytics/count", &researcher, &query)
        .await;
    assert_eq!(r.status(), 200);
    let release: Value = r.json().await.unwrap();
    let cells = release["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 3, "exactly the cells asked for");
    assert_eq!(cells[0]["cell"], "class-a");
    let a = cells[0]["value"].as_f64().unwrap();
    assert!((a - 30.0).abs() < 15.0, "noisy but near 30: {a}");
    assert_eq!(cells[1]["suppressed"], true);
    assert!(
        cells[1]["value"].is_null(),
        "a suppressed cell has no value"
    );
    assert_eq!(cells[2]["suppressed"], true);
    let scale = release["noise"]["learner_count_scale"].as_f64().unwrap();
    assert!((scale - 0.5).abs() < 1e-6, "d_in 1 / ε 2: {scale}");
    assert!((release["epsilon_spent"].as_f64().unwrap() - 2.0).abs() < 1e-6);
    assert!((release["budget_remaining"].as_f64().unwrap() - 98.0).abs() < 1e-6);

    // A mean per answer (correct = accuracy), a sum, and a histogram of learners by accuracy.
    let r = app
        .post_json(
            "/v1/analytics/mean",
            &researcher,
            // ε = 30 (10 per part: noise scale 0.4 on sums of about 100), so that the ±0.2
            // tolerance below fails with a probability far under 1e-9.
            &json!({"measure": "correct", "epsilon": 30.0, "max_per_learner": 4, "cells": ["all"]}),
        )
        .await;
    let mean: Value = r.json().await.unwrap();
    let accuracy = mean["cells"][0]["value"].as_f64().unwrap();
    assert!((accuracy - 0.75).abs() < 0.2, "{mean}");
    let r = app.post_json("/v1/analytics/histogram",
        &researcher,
        &json!({"by": "group", "epsilon": 1.0, "max_cells_per_learner": 1, "cells": ["class-a"]}),
    )
    .await;
    let histogram: Value = r.json().await.unwrap();
    let bins = histogram["cells"][0]["bins"].as_array().unwrap();
    assert_eq!(bins.len(), 10);
    assert!(
        bins[7].as_i64().unwrap() > 15,
        "most learners are at 70-80 %: {bins:?}"
    );

    let ledger: Value = app.get_json("/v1/analytics/ledger", &researcher).await;
    assert_eq!(ledger.as_array().unwrap().len(), 3);
    assert_eq!(ledger[0]["query"]["statistic"], "histogram");
    let budget: Value = app.get_json("/v1/analytics/budget", &researcher).await;
    assert!((budget["spent"].as_f64().unwrap() - 33.0).abs() < 1e-6);

    // Bad queries name the field.
    for (body, field) in [
        (json!({"epsilon": -1.0}), "epsilon"),
        (json!({"epsilon": 1.0, "by": "planet"}), "by"),
        (json!({"epsilon": 1.0, "since": "yesterday"}), "since"),
        (json!({"epsilon": 1.0, "measure": "answers"}), "measure"),
    ] {
        let path = if field == "measure" {
            "/v1/analytics/mean"
        } else {
            "/v1/analytics/count"
        };
        let r = app.post_json(path, &researcher, &body).await;
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(problem(r).await["field"], field);
    }
    app.stop().await;
}

async fn budgets_are_enforced_under_concurrent_queries() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    classroom(&app).await;
    app.client
        .put(app.url("/v1/privacy/policy"))
        .bearer_auth(&app.admin)
        .json(&json!({"dp_epsilon_per_analyst": 1.0}))
        .send()
        .await
        .unwrap();
    let researcher = app.key(&app.admin, "researcher").await;
    let query = json!({"measure": "answers", "epsilon": 0.1, "cells": ["all"]});
    let attempts = (0..25).map(|_| app.post_json("/v1/analytics/count", &researcher, &query));
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    let granted = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 403).count();
    assert_eq!(granted, 10, "{statuses:?}");
    assert_eq!(refused, 15);
    let budget: Value = app.get_json("/v1/analytics/budget", &researcher).await;
    assert!(budget["spent"].as_f64().unwrap() <= 1.0 + 1e-9);
    assert!(budget["remaining"].as_f64().unwrap() >= 0.0);
    let r = app
        .post_json("/v1/analytics/count", &researcher, &query)
        .await;
    let p = problem(r).await;
    assert_eq!(p["field"], "epsilon");
    assert!(p["detail"].as_str().unwrap().contains("budget exceeded"));

    // Another analyst has their own budget; the DPO sees every release.
    let other = app.key(&app.admin, "researcher").await;
    assert_eq!(
        app.post_json("/v1/analytics/count", &other, &query)
            .await
            .status(),
        200
    );
    let dpo = app.key(&app.admin, "dpo").await;
    let ledger: Value = app.get_json("/v1/analytics/ledger", &dpo).await;
    assert_eq!(ledger.as_array().unwrap().len(), 11);
    app.stop().await;
}

on_every_backend!(
    researchers_get_noisy_counts_with_small_cohorts_suppressed,
    budgets_are_enforced_under_concurrent_queries,
);
