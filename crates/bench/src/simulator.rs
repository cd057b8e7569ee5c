//! A classroom simulator: learners with hidden mastery that grows with practice, realistic
//! response times, hints, some guessing, fatigue and idling. It is an ordinary HTTP client: it
//! posts xAPI statements to a learnpulse server (`learnpulse simulate`, or in-process with
//! `learnpulse serve --demo`).
//!
//! The generative model, per learner and skill: P(correct) = guess + (1 - guess - slip) *
//! sigmoid(theta), where theta (hidden skill) grows with every practice opportunity, more after a
//! hint. Response times are log-normal around the learner's own speed, slower on items they find
//! hard and as fatigue builds; a tired or disengaged learner sometimes answers in under two
//! seconds without reading (a rapid guess, right by chance only). Learners occasionally idle for
//! a while, and move on to the next skill once they get three in a row.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use learnpulse_server::xapi::mapping::{EXT, VERB_ANSWERED};

#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Base URLs of the server, or of the nodes of one installation (batches go to each in
    /// turn).
    pub urls: Vec<String>,
    /// `key_id.secret` of a key with the `ingest` role.
    pub token: String,
    pub learners: usize,
    /// Statements per second, all learners together.
    pub rate: f64,
    /// Stop after this long; `None` runs until the process stops.
    pub duration: Option<Duration>,
    /// Learners are spread over this many classes (`class-1`, ...).
    pub groups: usize,
    pub seed: u64,
}

const SKILLS: [&str; 8] = [
    "fractions",
    "decimals",
    "ratios",
    "linear-equations",
    "area",
    "probability",
    "negative-numbers",
    "percentages",
];
const HOME: &str = "https://sim.learnpulse.dev";

struct SimLearner {
    name: String,
    group: String,
    registration: uuid::Uuid,
    theta: Vec<f64>,
    learn_rate: f64,
    /// Median response time in ms when the item is neither easy nor hard.
    speed_ms: f64,
    /// Tendency to rapid-guess when tired (0..1).
    disengagement: f64,
    fatigue: f64,
    skill: usize,
    streak: u32,
    item_counter: u64,
    attempt: u32,
    idle_turns: u32,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A standard normal sample (Box-Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// The id of simulated learner `i`, as the simulated platform sends it.
pub fn learner_id(i: usize) -> String {
    format!("learner-{i:04}")
}

/// A made-up display name for simulated learner `i` (for the demo's roster).
pub fn display_name(i: usize) -> String {
    const FIRST: [&str; 12] = [
        "Amara", "Bjorn", "Chen", "Dilnoza", "Emil", "Farah", "Gustavo", "Hana", "Ivo", "Jamila",
        "Kofi", "Lucia",
    ];
    const LAST: [&str; 7] = [
        "Okafor",
        "Lindqvist",
        "Wu",
        "Karimova",
        "Novak",
        "Haddad",
        "Pereira",
    ];
    format!(
        "{} {}",
        FIRST[i % FIRST.len()],
        LAST[(i / FIRST.len() + i) % LAST.len()]
    )
}

impl SimLearner {
    fn new(i: usize, groups: usize, rng: &mut StdRng) -> Self {
        let ability = normal(rng) * 0.8;
        SimLearner {
            name: learner_id(i),
            group: format!("class-{}", i % groups.max(1) + 1),
            registration: uuid::Uuid::from_u128(rng.random()),
            theta: SKILLS
                .iter()
                .map(|_| ability - 1.0 + normal(rng) * 0.7)
                .collect(),
            learn_rate: 0.15 + rng.random::<f64>() * 0.25,
            speed_ms: (9.5 + normal(rng) * 0.35).exp(),
            disengagement: rng.random::<f64>().powi(3),
            fatigue: 0.0,
            skill: rng.random_range(0..SKILLS.len()),
            streak: 0,
            item_counter: 0,
            attempt: 1,
            idle_turns: 0,
        }
    }

    /// One turn: an answer, or `None` while idling.
    fn step(&mut self, rng: &mut StdRng, now: time::OffsetDateTime) -> Option<Value> {
        if self.idle_turns > 0 {
            self.idle_turns -= 1;
            self.fatigue = (self.fatigue - 0.05).max(0.0);
            return None;
        }
        if rng.random::<f64>() < 0.01 {
            self.idle_turns = rng.random_range(3..20);
            return None;
        }
        let theta = self.theta[self.skill];
        let (guess, slip) = (0.2, 0.08);
        let rapid = rng.random::<f64>() < self.disengagement * self.fatigue * 0.6;
        let hints = if !rapid && theta < -0.5 && rng.random::<f64>() < 0.35 {
            rng.random_range(1..=3)
        } else {
            0
        };
        let p_correct = if rapid {
            0.25
        } else {
            guess + (1.0 - guess - slip) * sigmoid(theta + 0.4 * f64::from(hints))
        };
        let correct = rng.random::<f64>() < p_correct;
        let difficulty = (-theta).max(-1.0);
        let rt_ms = if rapid {
            400.0 + rng.random::<f64>() * 1_500.0
        } else {
            self.speed_ms * (0.35 * difficulty + 0.5 * self.fatigue + 0.45 * normal(rng)).exp()
        };
        // Practice helps, a hint helps more; wrong answers teach a little too.
        let gain = self.learn_rate
            * if rapid {
                0.1
            } else if correct {
                1.0
            } else {
                0.6
            }
            * (1.0 + 0.3 * f64::from(hints));
        self.theta[self.skill] += gain;
        self.fatigue = (self.fatigue + 0.01 + rng.random::<f64>() * 0.01).min(1.0);

        let item = format!(
            "{HOME}/items/{}/{}",
            SKILLS[self.skill],
            self.item_counter % 40
        );
        let attempt = self.attempt;
        if correct {
            self.streak += 1;
            self.item_counter += 1;
            self.attempt = 1;
        } else {
            self.streak = 0;
            self.attempt += 1;
            if self.attempt > 3 {
                self.item_counter += 1;
                self.attempt = 1;
            }
        }
        if self.streak >= 3 {
            self.skill = (self.skill + 1) % SKILLS.len();
            self.streak = 0;
        }
        let ms = rt_ms.round() as u64;
        Some(json!({
            "actor": {"objectType": "Agent", "name": self.name, "account": {"homePage": HOME, "name": self.name}},
            "verb": {"id": VERB_ANSWERED, "display": {"en-US": "answered"}},
            "object": {"objectType": "Activity", "id": item,
                       "definition": {"type": "http://adlnet.gov/expapi/activities/cmi.interaction", "interactionType": "fill-in"}},
            "result": {"success": correct, "duration": format!("PT{}.{:03}S", ms / 1000, ms % 1000)},
            "context": {
                "registration": self.registration.to_string(),
                "platform": "learnpulse simulator",
                "extensions": {
                    format!("{EXT}skills"): [SKILLS[self.skill]],
                    format!("{EXT}hints-used"): hints,
                    format!("{EXT}attempt"): attempt,
                    format!("{EXT}group"): self.group,
                }
            },
            "timestamp": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        }))
    }
}

/// What a simulation run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SimulatorReport {
    pub statements_sent: u64,
    pub requests: u64,
    pub failed_requests: u64,
}

/// Runs the simulation until `duration` elapses or `stop` resolves.
pub async fn run(
    config: SimulatorConfig,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<SimulatorReport> {
    anyhow::ensure!(config.learners > 0, "--learners must be at least 1");
    anyhow::ensure!(config.rate > 0.0, "--rate must be positive");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let endpoints = crate::loadgen::statements_endpoints(&config.urls)?;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut learners: Vec<SimLearner> = (0..config.learners)
        .map(|i| SimLearner::new(i, config.groups, &mut rng))
        .collect();
    // Ten ticks a second; each tick sends the statements due in it as one batch.
    let tick = Duration::from_millis(100);
    let per_tick = config.rate * tick.as_secs_f64();
    let mut owed = 0.0;
    let mut next = 0usize;
    let mut report = SimulatorReport::default();
    let started = tokio::time::Instant::now();
    let mut last_progress = started;
    let mut interval = tokio::time::interval(tick);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = interval.tick() => {},
            _ = &mut stop => break,
        }
        if config.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        owed += per_tick;
        let mut batch = Vec::new();
        let now = time::OffsetDateTime::now_utc();
        let mut turns = 0;
        while owed >= 1.0 && turns < learners.len() * 4 {
            let learner = &mut learners[next % config.learners];
            next += 1;
            turns += 1;
            if let Some(statement) = learner.step(&mut rng, now) {
                batch.push(statement);
                owed -= 1.0;
            }
        }
        if batch.is_empty() {
            continue;
        }
        let n = batch.len() as u64;
        let endpoint = &endpoints[report.requests as usize % endpoints.len()];
        report.requests += 1;
        let sent = client
            .post(endpoint)
            .bearer_auth(&config.token)
            .header("X-Experience-API-Version", "1.0.3")
            .json(&batch)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                report.statements_sent += n;
                if last_progress.elapsed() >= Duration::from_secs(10) {
                    last_progress = tokio::time::Instant::now();
                    tracing::info!(
                        sent = report.statements_sent,
                        failed_requests = report.failed_requests,
                        elapsed_s = started.elapsed().as_secs(),
                        "simulating"
                    );
                }
            }
            Ok(r) => {
                report.failed_requests += 1;
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                tracing::warn!(%status, %body, "simulator batch rejected");
            }
            Err(e) => {
                report.failed_requests += 1;
                tracing::warn!(error = %e, "simulator could not reach the server");
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_statements_are_valid_learning_events_and_learners_improve() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut learner = SimLearner::new(0, 3, &mut rng);
        let now = time::OffsetDateTime::now_utc();
        let start_theta: f64 = learner.theta.iter().sum();
        let mut answered = 0;
        for _ in 0..400 {
            if let Some(s) = learner.step(&mut rng, now) {
                learnpulse_server::xapi::validate::statement(&s, "statement").unwrap();
                let e = learnpulse_server::xapi::mapping::learning_event(&s).unwrap();
                assert!(e.response_time_ms.is_some() && !e.skills.is_empty());
                answered += 1;
            }
        }
        assert!(answered > 100);
        assert!(
            learner.theta.iter().sum::<f64>() > start_theta,
            "practice must raise hidden mastery"
        );
    }
}
