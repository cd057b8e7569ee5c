//! # learnpulse-core
//!
//! The pure heart of learnpulse. Everything here is deterministic code over plain values:
//! no I/O, no async, no clock, no randomness. Time arrives inside events, so replaying the event
//! log through [`Engine::apply`] rebuilds exactly the same learner states, and every model can be
//! unit-tested with literal values.
//!
//! Module map:
//! - [`event`]: the one internal event type, [`LearningEvent`], that both wire formats (xAPI
//!   statements and the native event API) are mapped to at the edge of the server.
//! - [`mastery`]: knowledge tracing per skill (Bayesian knowledge tracing kept in log-odds).
//! - [`load`]: the cognitive-load index (response time against the learner's own baseline,
//!   error streaks, hints, rapid guesses, ...), with the reasons behind it in plain words; its
//!   weights are fitted by `kt::load_fit`.
//! - [`risk`]: the risk-of-struggle score and its reasons.
//! - [`struggle`]: wheel-spinning and its early predictor.
//! - [`engine`]: the learner engine: `state + event -> state`, per tenant.
//! - [`prediction`]: what a fitted logistic model reads of the engine's learner state, the same
//!   evidence `kt eval` reads of an answer log.
//! - [`intervene`]: intervention policies: `state + event -> decision`, with priorities,
//!   cooldowns and a per-learner hourly limit.
//! - [`outcome`]: following interventions up: accuracy change, load, quitting, per policy with
//!   confidence intervals.
//! - [`kt`]: knowledge-tracing models with their offline fitters, and one-step-ahead evaluation.

pub mod engine;
pub mod event;
pub mod intervene;
pub mod kt;
pub mod load;
pub mod mastery;
pub mod outcome;
pub mod prediction;
pub mod risk;
pub mod struggle;

pub use engine::{Engine, EngineParams, EngineState, LearnerState, SkillModel, SkillState};
pub use event::{LearningEvent, Outcome};
pub use load::{LoadLevel, LoadReason, LoadSignal, LoadState, LoadWeights};
pub use mastery::BktParams;
pub use risk::Risk;
