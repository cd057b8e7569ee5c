//! Ingest benchmarks: the edge's work per statement (parse, validate, complete) and a group
//! commit of 100 statements to the embedded log. Uses the binary's allocator (mimalloc).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use learnpulse_server::storage::{Durability, EventLog, NewStatement};
use learnpulse_server::xapi::{prepare, validate};
use serde_json::{Value, json};

fn statement(n: u64) -> Value {
    json!({
        "actor": {"objectType": "Agent", "name": format!("Learner {}", n % 2000),
                  "account": {"homePage": "https://lms.example.edu", "name": format!("u{:05}", n % 2000)}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered", "display": {"en-US": "answered"}},
        "object": {"objectType": "Activity", "id": format!("https://lms.example.edu/course/algebra-1/quiz/3/q{}", n % 500),
                   "definition": {"name": {"en-US": "Question"}, "type": "http://adlnet.gov/expapi/activities/cmi.interaction",
                                  "interactionType": "choice"}},
        "result": {"success": !n.is_multiple_of(3), "response": "b", "duration": "PT12.5S", "score": {"scaled": 1.0}},
        "context": {"registration": "9b6a8c2e-54a1-4f43-9a0f-2f3b8a1d7c10", "platform": "Example LMS",
                    "extensions": {"https://learnpulse.dev/xapi/ext/skills": ["skill-3"]}},
        "timestamp": "2026-11-26T09:30:00.000Z"
    })
}

fn prepared(n: u64) -> NewStatement {
    let authority = prepare::Authority {
        key_id: "lpk_bench",
        version: "1.0.0",
        now: "2026-11-26T09:30:00Z",
    };
    prepare::prepare(statement(n), &authority)
}

fn edge(c: &mut Criterion) {
    let bytes = serde_json::to_vec(&statement(7)).unwrap();
    let authority = prepare::Authority {
        key_id: "lpk_bench",
        version: "1.0.0",
        now: "2026-11-26T09:30:00Z",
    };
    let mut group = c.benchmark_group("edge");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_validate_prepare_one_statement", |b| {
        b.iter(|| {
            let v: Value = serde_json::from_slice(black_box(&bytes)).unwrap();
            validate::statement(&v, "statement").unwrap();
            black_box(prepare::prepare(v, &authority))
        })
    });
    group.finish();
}

fn group_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("sqlite_log");
    for (name, durability) in [("process", Durability::Process), ("full", Durability::Full)] {
        let mut config = learnpulse_server::Config {
            data_dir: dir.path().join(name),
            ..Default::default()
        };
        config.storage.durability = durability;
        let store = rt
            .block_on(learnpulse_server::storage::open(&config))
            .unwrap();
        let mut n = 0u64;
        group.throughput(Throughput::Elements(100));
        group.bench_function(format!("append_batch_of_100_{name}"), |b| {
            // The statements are prepared outside the timed part: this measures the log alone.
            b.iter_batched(
                || {
                    (0..100)
                        .map(|_| {
                            n += 1;
                            prepared(n)
                        })
                        .collect::<Vec<NewStatement>>()
                },
                |batch| rt.block_on(store.append(1, batch)).unwrap(),
                BatchSize::SmallInput,
            )
        });
        rt.block_on(store.shutdown());
    }
    group.finish();
}

criterion_group!(benches, edge, group_commit);
criterion_main!(benches);
