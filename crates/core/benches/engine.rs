//! One event through the learner engine.
use criterion::{Criterion, criterion_group, criterion_main};
use learnpulse_core::{Engine, EngineParams, LearningEvent};
use std::hint::black_box;

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
    let mut engine = Engine::new(EngineParams::default());
    for e in &events {
        engine.apply(e);
    }
    let mut i = 0;
    c.bench_function("engine_apply_one_event", |b| {
        b.iter(|| {
            let e = &events[i % events.len()];
            i += 1;
            black_box(engine.apply(black_box(e)).events)
        })
    });
}

criterion_group!(benches, engine_apply);
criterion_main!(benches);
