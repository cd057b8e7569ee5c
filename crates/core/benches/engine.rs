//! One event through the learner engine.
use criterion::{Criterion, criterion_group, criterion_main};
use learnpulse_core::kt::data::Names;
use learnpulse_core::kt::logistic::{LogisticModel, NamedLogistic};
use learnpulse_core::{Engine, EngineParams, LearningEvent, SkillModel};
use std::hint::black_box;
use std::sync::Arc;

fn engine_apply(c: &mut Criterion) {
    // 1,000 learners x 20 skills x 50 items, so that lookups hit populated maps.
    let events: Vec<LearningEvent> = (0..100_000u64)
        .map(|i| LearningEvent {
            response_time_ms: Some(2_000 + (i * 7_919) % 30_000),
            hints_used: (i % 7 == 0) as u32,
            ..LearningEvent::answer(
                &format!("learner-{}", i % 1_000),
                &format!("item-{}", i % 50),
                &format!("skill-{}", i % 20),
                (i * 2_654_435_761) % 10 < 7,
                i as i64 * 1_000,
            )
        })
        .collect();
    // With BKT alone, and with a logistic model of P(correct) that knows every skill and item
    // (its weights do not matter for the time an update takes).
    let names = Names {
        skills: (0..20).map(|s| format!("skill-{s}")).collect(),
        items: (0..50).map(|i| format!("item-{i}")).collect(),
    };
    let logistic = NamedLogistic::new(
        LogisticModel {
            weights: vec![0.01; 200],
            skills: 20,
            items: 50,
        },
        &names,
    );
    let models = [
        ("engine_apply_one_event", SkillModel::default()),
        (
            "engine_apply_one_event_logistic",
            SkillModel {
                logistic: Some(logistic),
                ..SkillModel::default()
            },
        ),
    ];
    for (name, model) in models {
        let mut engine = Engine::with_model(EngineParams::default(), Arc::new(model));
        for e in &events {
            engine.apply(e);
        }
        let mut i = 0;
        c.bench_function(name, |b| {
            b.iter(|| {
                let e = &events[i % events.len()];
                i += 1;
                black_box(engine.apply(black_box(e)).events)
            })
        });
    }
}

/// Fitting on the ASSISTments 2009 training file (`../shared/data` beside the checkout), if present.
fn model_fitting(c: &mut Criterion) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/assist2009/train.csv");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipping model fitting: {} not found", path.display());
        return;
    };
    let data = learnpulse_core::kt::Dataset::parse_csv(&text, Default::default()).unwrap();
    let mut group = c.benchmark_group("fit_assist2009_train");
    group.sample_size(10);
    for (name, forgetting) in [("bkt", false), ("bkt_forget", true)] {
        let options = learnpulse_core::kt::bkt::BktFitOptions {
            forgetting,
            ..Default::default()
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(learnpulse_core::kt::bkt::BktModel::fit(
                    &data,
                    &options,
                    &mut |_, _| {},
                ))
            })
        });
    }
    group.bench_function("logistic", |b| {
        b.iter(|| {
            black_box(learnpulse_core::kt::logistic::LogisticModel::fit(
                &data,
                &learnpulse_core::kt::logistic::LogisticOptions::default(),
                &mut |_, _| {},
            ))
        })
    });
    group.finish();
}

/// Deciding on an intervention after an event: every built-in policy checked against a struggling
/// learner's state (so conditions are evaluated, not skipped).
fn intervention_decide(c: &mut Criterion) {
    use learnpulse_core::intervene::{Memory, PolicySet, decide};
    let mut engine = Engine::new(EngineParams::default());
    let mut last = None;
    for i in 0..12 {
        let mut e = LearningEvent::answer(
            "ada",
            &format!("q{i}"),
            "fractions",
            i % 4 == 0,
            i * 120_000,
        );
        e.response_time_ms = Some(9_000);
        engine.apply(&e);
        last = Some(e);
    }
    let event = last.unwrap();
    let state = engine.learner("ada").unwrap().clone();
    let set = PolicySet::default();
    c.bench_function("intervention_decide", |b| {
        b.iter(|| {
            let mut memory = Memory::default();
            black_box(decide(
                &set,
                black_box(&state),
                black_box(&event),
                &mut memory,
            ))
        })
    });
}

criterion_group!(benches, engine_apply, model_fitting, intervention_decide);
criterion_main!(benches);
