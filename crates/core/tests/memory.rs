//! Memory per learner-skill state, measured with a counting allocator: 1,000 learners practise
//! 20 skills each; the heap the engine holds, divided by the 20,000 learner-skill states.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use learnpulse_core::{Engine, EngineParams, LearningEvent};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn memory_per_learner_skill_state() {
    let events: Vec<LearningEvent> = (0..1_000u32)
        .flat_map(|l| {
            (0..20u32).map(move |k| LearningEvent {
                response_time_ms: Some(8_000),
                ..LearningEvent::answer(
                    &format!("learner-{l:04}"),
                    "item",
                    &format!("skill-{k:02}"),
                    k % 3 != 0,
                    i64::from(k),
                )
            })
        })
        .collect();
    let before = LIVE.load(Ordering::Relaxed);
    let mut engine = Engine::new(EngineParams::default());
    for e in &events {
        engine.apply(e);
    }
    let held = LIVE.load(Ordering::Relaxed) - before;
    let per_state = held as f64 / 20_000.0;
    println!(
        "engine heap: {held} bytes for 1,000 learners x 20 skills = {per_state:.0} bytes per learner-skill state (learner overhead included)"
    );
    assert!(
        per_state < 400.0,
        "{per_state:.0} bytes per learner-skill state"
    );
    drop(engine);
}
