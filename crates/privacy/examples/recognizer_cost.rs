//! Per-recogniser cost on a few learner sentences: `cargo run --release -p learnpulse-privacy --example recognizer_cost`.
fn main() {
    let only_first = std::env::args().nth(1).is_some();
    let texts = [
        "I think it is 12 because 3 times 4 is 12, Maria Garcia showed me",
        "not sure, can you email me at sam.lee@school.example.org",
        "the slope is rise over run so 2/5",
        "I asked James and he said the answer is b",
    ];
    let n = 200_000;
    let t = std::time::Instant::now();
    for i in 0..n {
        std::hint::black_box(learnpulse_privacy::scan(
            texts[if only_first { 0 } else { i % 4 }],
        ));
    }
    println!(
        "scan: {:.2} µs/text",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    for (name, f) in learnpulse_privacy::recognizers::RECOGNISERS {
        let t = std::time::Instant::now();
        let mut out = Vec::new();
        for i in 0..n {
            out.clear();
            f(
                std::hint::black_box(texts[if only_first { 0 } else { i % 4 }]),
                &mut out,
            );
        }
        println!(
            "{name}: {:.2} µs/text",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}
