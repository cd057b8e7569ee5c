//! `scan` throughput on the labelled PII sets (`../shared/data/pii` beside the checkout).
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn scan_labelled_sets(c: &mut Criterion) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/pii");
    let mut texts: Vec<String> = Vec::new();
    for name in [
        "presidio_research_synth_dataset_v2.json",
        "generated_default_seed42_n3000.json",
    ] {
        let Ok(text) = std::fs::read_to_string(dir.join(name)) else {
            eprintln!("skipping: {} not found", dir.join(name).display());
            return;
        };
        let items: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        texts.extend(
            items
                .iter()
                .map(|i| i["full_text"].as_str().unwrap_or_default().to_owned()),
        );
    }
    let mut group = c.benchmark_group("pii");
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.bench_function("scan_labelled_sets", |b| {
        b.iter(|| {
            for t in &texts {
                black_box(learnpulse_privacy::scan(black_box(t)));
            }
        })
    });
    group.finish();
}

/// The whole ingest pipeline on one LMS statement: consent lookup, pseudonyms, redaction of a
/// sentence of free text, minimisation. Compare with the server's per-statement ingest cost.
fn protect_one_statement(c: &mut Criterion) {
    use learnpulse_privacy::pipeline::{Policy, TenantPrivacy, protect};
    use learnpulse_privacy::pseudonym::Pseudonymiser;
    use learnpulse_privacy::roster::Roster;
    let statement = serde_json::json!({
        "actor": {"objectType": "Agent", "name": "Learner 17",
                  "account": {"homePage": "https://lms.example.edu", "name": "u00017"}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered", "display": {"en-US": "answered"}},
        "object": {"objectType": "Activity", "id": "https://lms.example.edu/course/algebra-1/quiz/3/q17"},
        "result": {"success": true, "response": "I think it is 12 because 3 times 4 is 12, Maria Garcia showed me"},
        "context": {"platform": "Example LMS",
                    "extensions": {"https://learnpulse.dev/xapi/ext/skills": ["skill-3"],
                                   "https://learnpulse.dev/xapi/ext/group": "class-4"}}
    });
    let policy = Policy {
        drop_fields: vec!["/context/platform".into()],
        ..Policy::default()
    };
    let keys = Pseudonymiser::new(1, [7; 32]);
    let roster = Roster::default();
    let tenant = TenantPrivacy {
        policy: &policy,
        pseudonymiser: &keys,
        roster: &roster,
    };
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(1));
    group.bench_function("protect_statement_with_free_text", |b| {
        b.iter(|| {
            let mut s = statement.clone();
            black_box(protect(&mut s, &tenant, |_| None).unwrap());
        })
    });
    let mut short = statement.clone();
    short["result"]["response"] = serde_json::json!("b");
    group.bench_function("protect_statement_short_answer", |b| {
        b.iter(|| {
            let mut s = short.clone();
            black_box(protect(&mut s, &tenant, |_| None).unwrap());
        })
    });
    group.bench_function("clone_only_baseline", |b| {
        b.iter(|| black_box(statement.clone()))
    });
    group.finish();
}

criterion_group!(benches, scan_labelled_sets, protect_one_statement);
criterion_main!(benches);
