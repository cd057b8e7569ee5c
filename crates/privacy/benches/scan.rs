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

criterion_group!(benches, scan_labelled_sets);
criterion_main!(benches);
