//! The learner engine: `state + event -> state`.
//!
//! One [`Engine`] holds the learners of one tenant and the norms of its items. [`Engine::apply`]
//! folds one [`LearningEvent`] into the learner's state in O(1) (a few hash lookups and a handful
//! of floating-point operations); it reads nothing but its arguments, so replaying the event log in
//! order reproduces every state exactly.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::event::{LearningEvent, Outcome};
use crate::kt::logistic::NamedLogistic;
use crate::load::{LoadObservation, LoadState, LoadWeights};
use crate::mastery::{BktParams, sigmoid};
use crate::prediction::{RecentAnswers, evidence};
use crate::risk::Risk;
use crate::struggle::{MASTERY_STREAK, Practice, WHEEL_SPIN_OPPORTUNITIES, WheelSpinModel};

/// A pause of at least this many minutes is idle (off-task) time.
const IDLE_MIN: f64 = 5.0;
/// A pause of more than this many minutes ends a sitting.
const SESSION_BREAK_MIN: f64 = 30.0;

/// Tunables of the engine. Defaults are documented values, not fitted ones.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EngineParams {
    /// P(known) at which a skill counts as mastered (0.95, as in the wheel-spinning literature).
    pub mastery_threshold: f64,
    /// Observations of an item before its norm (for rapid-guess detection) is trusted.
    pub item_norm_min_count: u64,
    /// Observations of a learner's response times before their baseline is trusted.
    pub baseline_min_count: u64,
}

impl Default for EngineParams {
    fn default() -> Self {
        EngineParams {
            mastery_threshold: 0.95,
            item_norm_min_count: 5,
            baseline_min_count: 3,
        }
    }
}

/// Running mean and variance of ln(response time), by Welford's algorithm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LogTimeStats {
    pub count: u64,
    pub mean_ln_ms: f64,
    m2: f64,
}

impl LogTimeStats {
    fn push(&mut self, ms: u64) {
        let x = (ms.max(1) as f64).ln();
        self.count += 1;
        let delta = x - self.mean_ln_ms;
        self.mean_ln_ms += delta / self.count as f64;
        self.m2 += delta * (x - self.mean_ln_ms);
    }

    fn std_dev(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            (self.m2 / (self.count - 1) as f64).sqrt()
        }
    }

    /// z-score of `ms` on the log scale (response times are roughly log-normal).
    fn z(&self, ms: u64) -> Option<f64> {
        // A floor on the spread keeps a learner with near-identical times from producing huge z.
        let sd = self.std_dev().max(0.25);
        Some(((ms.max(1) as f64).ln() - self.mean_ln_ms) / sd)
    }
}

/// What the engine knows of one item across all learners of the tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemNorm {
    pub count: u64,
    pub mean_ms: f64,
    /// Response times on the item are roughly log-normal: their log mean and spread.
    #[serde(default)]
    pub log_times: LogTimeStats,
}

impl ItemNorm {
    /// The NT10 rapid-guess threshold (Wise & Ma 2012): 10 % of the item's mean response time,
    /// capped at 10 seconds.
    pub fn rapid_guess_threshold_ms(&self) -> f64 {
        (0.1 * self.mean_ms).min(10_000.0)
    }
}

/// A learner's state on one skill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkillState {
    pub attempts: u32,
    pub correct: u32,
    /// Log-odds that the skill is known (BKT); see [`crate::mastery`] for why log-odds.
    pub log_odds_known: f64,
    /// P(known), derived from `log_odds_known`.
    pub mastery: f64,
    /// Predicted P(correct) on the next item of this skill.
    pub p_correct_next: f64,
    /// Whether mastery has reached the threshold.
    pub mastered: bool,
    /// Opportunities it took to reach mastery, once reached.
    pub mastered_after: Option<u32>,
    /// Ten or more opportunities without mastery (Beck & Gong 2013).
    #[serde(default)]
    pub wheel_spinning: bool,
    /// Early prediction that practice on this skill will end in wheel-spinning (0 once
    /// mastered, 1 once wheel-spinning); `None` without a fitted predictor.
    #[serde(default)]
    pub wheel_spin_risk: Option<f64>,
    #[serde(default)]
    pub correct_streak: u32,
    #[serde(default)]
    pub error_streak: u32,
    /// How many scored answers the learner had given before their latest on this skill.
    #[serde(default)]
    pub answers_before_latest: u64,
}

impl SkillState {
    fn new(bkt: &BktParams) -> Self {
        let x = bkt.initial_log_odds();
        SkillState {
            attempts: 0,
            correct: 0,
            log_odds_known: x,
            mastery: sigmoid(x),
            p_correct_next: bkt.p_correct(x),
            mastered: false,
            mastered_after: None,
            wheel_spinning: false,
            wheel_spin_risk: None,
            correct_streak: 0,
            error_streak: 0,
            answers_before_latest: 0,
        }
    }
}

/// Everything the engine holds about one learner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnerState {
    pub learner: String,
    /// Groups (classes) the learner has been seen working in.
    pub groups: BTreeSet<String>,
    /// Events applied, scored or not.
    pub events: u64,
    /// Scored answers and how many were correct.
    pub answers: u64,
    pub correct: u64,
    /// Consecutive incorrect answers, across skills.
    pub error_streak: u32,
    /// Timestamp of the latest event (event time, not arrival time).
    pub last_event_ms: i64,
    /// When the current sitting began (a pause of over 30 minutes starts a new one).
    #[serde(default)]
    pub session_started_ms: i64,
    pub skills: BTreeMap<String, SkillState>,
    pub load: LoadState,
    /// How likely the learner is struggling now, and why.
    pub risk: Risk,
    pub response_time_baseline: LogTimeStats,
    /// What the logistic model reads besides the counts above (see `prediction.rs`).
    #[serde(default)]
    pub recent: RecentAnswers,
}

impl LearnerState {
    pub fn new(learner: &str) -> Self {
        LearnerState {
            learner: learner.to_owned(),
            groups: BTreeSet::new(),
            events: 0,
            answers: 0,
            correct: 0,
            error_streak: 0,
            last_event_ms: 0,
            session_started_ms: 0,
            skills: BTreeMap::new(),
            load: LoadState::default(),
            risk: Risk::default(),
            response_time_baseline: LogTimeStats::default(),
            recent: RecentAnswers::default(),
        }
    }
}

/// Fitted knowledge-tracing parameters per skill name, with a fallback for skills the fit did
/// not see. Made by `learnpulse kt fit`; the default is textbook BKT for every skill.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SkillModel {
    pub skills: HashMap<String, BktParams>,
    pub fallback: BktParams,
    /// The early wheel-spinning predictor, when one was fitted.
    #[serde(default)]
    pub wheel_spin: Option<WheelSpinModel>,
    /// The model of P(correct), when one was fitted (`kt fit --model logistic`); mastery stays
    /// BKT's. Without it, P(correct) is BKT's too.
    #[serde(default)]
    pub logistic: Option<NamedLogistic>,
    /// The cognitive-load index's weights (`kt load-fit` fits them).
    #[serde(default)]
    pub load: LoadWeights,
}

impl SkillModel {
    pub fn params(&self, skill: &str) -> &BktParams {
        self.skills.get(skill).unwrap_or(&self.fallback)
    }

    /// P(known) and P(correct) of a learner's next answer on `skill` (to `item`, when known),
    /// from their state when there is one (a learner or a skill not seen yet starts from the
    /// prior).
    pub fn predict(
        &self,
        learner: Option<&LearnerState>,
        skill: &str,
        item: Option<&str>,
    ) -> (f64, f64) {
        let bkt = self.params(skill);
        let x = learner
            .and_then(|l| l.skills.get(skill))
            .map_or_else(|| bkt.initial_log_odds(), |s| s.log_odds_known);
        let p_correct = match &self.logistic {
            Some(logistic) => logistic.predict(&evidence(learner, skill, item), skill, item),
            None => bkt.p_correct(x),
        };
        (sigmoid(x), p_correct)
    }
}

/// What an engine has learned (its learners and item norms), apart from its parameters and
/// model: what a snapshot keeps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    pub learners: HashMap<String, LearnerState>,
    pub items: HashMap<String, ItemNorm>,
}

/// The learners and item norms of one tenant.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    params: EngineParams,
    model: Arc<SkillModel>,
    learners: HashMap<String, LearnerState>,
    items: HashMap<String, ItemNorm>,
}

impl Engine {
    pub fn new(params: EngineParams) -> Self {
        Engine::with_model(params, Arc::new(SkillModel::default()))
    }

    /// An engine whose mastery estimates use fitted per-skill parameters.
    pub fn with_model(params: EngineParams, model: Arc<SkillModel>) -> Self {
        Engine {
            params,
            model,
            learners: HashMap::new(),
            items: HashMap::new(),
        }
    }

    /// Everything the engine has learned, for a snapshot.
    pub fn state(&self) -> EngineState {
        EngineState {
            learners: self.learners.clone(),
            items: self.items.clone(),
        }
    }

    /// The item norms only: what a snapshot keeps of the engine when its learners' states are
    /// kept one by one.
    pub fn item_state(&self) -> EngineState {
        EngineState {
            learners: HashMap::new(),
            items: self.items.clone(),
        }
    }

    /// An engine that goes on from a snapshot's state: applying the rest of the log to it gives
    /// what applying the whole log to a new engine gives.
    pub fn restore(params: EngineParams, model: Arc<SkillModel>, state: EngineState) -> Self {
        Engine {
            params,
            model,
            learners: state.learners,
            items: state.items,
        }
    }

    /// What the engine would say about `learner`'s next answer on `skill` (to `item`) now:
    /// P(known) and P(correct), for learners and skills it has not seen too.
    pub fn predict(&self, learner: &str, skill: &str, item: Option<&str>) -> (f64, f64) {
        self.model.predict(self.learners.get(learner), skill, item)
    }

    pub fn learner(&self, id: &str) -> Option<&LearnerState> {
        self.learners.get(id)
    }

    pub fn learners(&self) -> impl Iterator<Item = &LearnerState> {
        self.learners.values()
    }

    pub fn learner_count(&self) -> usize {
        self.learners.len()
    }

    /// Removes a learner's state (erasure). Item norms, which aggregate every learner, stay.
    pub fn forget(&mut self, learner: &str) -> bool {
        self.learners.remove(learner).is_some()
    }

    /// Whether the engine holds `learner`'s state now.
    pub fn holds(&self, learner: &str) -> bool {
        self.learners.contains_key(learner)
    }

    /// Takes a learner's state out of memory (it is kept elsewhere; [`Engine::insert`] puts it
    /// back). Unlike [`Engine::forget`], nothing is lost.
    pub fn evict(&mut self, learner: &str) -> Option<LearnerState> {
        self.learners.remove(learner)
    }

    /// Puts a learner's state (loaded from where it was kept) into memory.
    pub fn insert(&mut self, state: LearnerState) {
        self.learners.insert(state.learner.clone(), state);
    }

    /// An event whose learner's state already includes it (the state was loaded from a copy
    /// made after it): only the item norms, which every event feeds, learn from it.
    pub fn apply_to_items(&mut self, event: &LearningEvent) {
        learn_item_norm(&mut self.items, event);
    }

    /// Carries a learner's history over to a new id: when `learner` is unknown and one of
    /// `previous` is known, that state becomes `learner`'s. This is how a pseudonym-key rotation
    /// keeps one history per learner. Returns whether a history moved.
    pub fn adopt(&mut self, learner: &str, previous: &[String]) -> bool {
        if previous.is_empty() || self.learners.contains_key(learner) {
            return false;
        }
        let Some(mut state) = previous.iter().find_map(|p| self.learners.remove(p)) else {
            return false;
        };
        state.learner = learner.to_owned();
        self.learners.insert(learner.to_owned(), state);
        true
    }

    /// Fold one event into its learner's state and return the new state.
    pub fn apply(&mut self, event: &LearningEvent) -> &LearnerState {
        // Rapid-guess check against the item's norm *before* this answer joins the norm.
        let seen = self.item_view(event);
        learn_item_norm(&mut self.items, event);
        self.apply_to_learner(event, seen)
    }

    /// Rebuilds a learner's state from their history, as if only these events had happened
    /// (an answer was voided: the history is every other event of theirs, in log order).
    /// Returns the new state: with an empty history, a learner with no events (so that a copy
    /// kept elsewhere is replaced, not found again).
    ///
    /// The item norms, which every learner feeds, are not rebuilt: each event is judged against
    /// the norms as they are now (rapid guesses, slowness for the item), not as they were.
    pub fn rebuild(&mut self, learner: &str, history: &[LearningEvent]) -> &LearnerState {
        self.learners
            .insert(learner.to_owned(), LearnerState::new(learner));
        for event in history.iter().filter(|e| e.learner == learner) {
            let seen = self.item_view(event);
            self.apply_to_learner(event, seen);
        }
        &self.learners[learner]
    }

    /// What the item's norm says about this answer.
    fn item_view(&self, event: &LearningEvent) -> ItemView {
        let min_count = self.params.item_norm_min_count;
        let Some(item) = self
            .items
            .get(&event.item)
            .filter(|item| item.count >= min_count)
        else {
            return ItemView::default();
        };
        let rapid_guess = match event.response_time_ms {
            Some(ms) if event.is_scored() => (ms as f64) < item.rapid_guess_threshold_ms(),
            _ => false,
        };
        // How slow this answer is for the item (z of ln time against the item's norm so far).
        let item_z = match event.response_time_ms {
            Some(ms) if event.is_scored() && !rapid_guess => item.log_times.z(ms),
            _ => None,
        };
        ItemView {
            item_mean_ms: Some(item.mean_ms),
            rapid_guess,
            item_z,
        }
    }

    /// Folds one event into its learner's state, given what the item's norm says about it.
    fn apply_to_learner(&mut self, event: &LearningEvent, seen: ItemView) -> &LearnerState {
        let params = self.params;
        let model = &self.model;
        let ItemView {
            item_mean_ms,
            rapid_guess,
            item_z,
        } = seen;

        let state = self
            .learners
            .entry(event.learner.clone())
            .or_insert_with(|| LearnerState::new(&event.learner));
        state.events += 1;
        // Pauses, from event time: a long one is idle time; a very long one ends the sitting.
        let gap_minutes = (state.events > 1 && event.timestamp_ms > state.last_event_ms)
            .then(|| (event.timestamp_ms - state.last_event_ms) as f64 / 60_000.0);
        if state.events == 1 || gap_minutes.is_some_and(|m| m > SESSION_BREAK_MIN) {
            state.session_started_ms = event.timestamp_ms;
        }
        let idle_minutes = gap_minutes.filter(|m| (IDLE_MIN..=SESSION_BREAK_MIN).contains(m));
        state.last_event_ms = state.last_event_ms.max(event.timestamp_ms);
        if let Some(group) = &event.group
            && !state.groups.contains(group)
        {
            state.groups.insert(group.clone());
        }
        if !event.is_scored() {
            return state;
        }

        let correct = event.outcome == Outcome::Correct;
        state.answers += 1;
        if correct {
            state.correct += 1;
            state.error_streak = 0;
        } else {
            state.error_streak += 1;
        }
        for skill in &event.skills {
            let bkt = model.params(skill);
            let s = match state.skills.get_mut(skill) {
                Some(s) => s,
                None => state
                    .skills
                    .entry(skill.clone())
                    .or_insert_with(|| SkillState::new(bkt)),
            };
            s.attempts += 1;
            s.correct += u32::from(correct);
            s.answers_before_latest = state.answers - 1;
            if correct {
                s.correct_streak += 1;
                s.error_streak = 0;
            } else {
                s.correct_streak = 0;
                s.error_streak += 1;
            }
            s.log_odds_known = bkt.update(s.log_odds_known, correct);
            s.mastery = sigmoid(s.log_odds_known);
            if model.logistic.is_none() {
                // With a logistic model, P(correct) is set after the learner's record is.
                s.p_correct_next = bkt.p_correct(s.log_odds_known);
            }
            // Mastered: BKT is confident, or three right in a row (Beck & Gong's criterion).
            if !s.mastered
                && (s.mastery >= params.mastery_threshold || s.correct_streak >= MASTERY_STREAK)
            {
                s.mastered = true;
                s.mastered_after = Some(s.attempts);
            }
            s.wheel_spinning = !s.mastered && s.attempts >= WHEEL_SPIN_OPPORTUNITIES;
            s.wheel_spin_risk = if s.mastered {
                Some(0.0)
            } else if s.wheel_spinning {
                Some(1.0)
            } else {
                model.wheel_spin.as_ref().map(|m| {
                    m.predict(&Practice {
                        attempts: s.attempts,
                        correct: s.correct,
                        correct_streak: s.correct_streak,
                        error_streak: s.error_streak,
                    })
                })
            };
        }

        state
            .recent
            .remember(event, correct, model.logistic.as_ref());
        if let Some(logistic) = &model.logistic {
            // P(correct) next on the event's skills, by the model that predicts it.
            for skill in &event.skills {
                let p = logistic.predict(&evidence(Some(state), skill, None), skill, None);
                if let Some(s) = state.skills.get_mut(skill) {
                    s.p_correct_next = p;
                }
            }
        }

        let baseline = &mut state.response_time_baseline;
        let own_z = match event.response_time_ms {
            Some(ms) if !rapid_guess => {
                let z = (baseline.count >= params.baseline_min_count)
                    .then(|| baseline.z(ms))
                    .flatten();
                baseline.push(ms);
                z
            }
            _ => None,
        };
        // Slow for this learner and slow for this item: the mean of the z-scores available.
        let response_time_z = match (own_z, item_z) {
            (Some(a), Some(b)) => Some((a + b) / 2.0),
            (a, b) => a.or(b),
        };
        let help_abuse = event.hints_used > 0
            && matches!((event.response_time_ms, item_mean_ms), (Some(ms), Some(mean)) if (ms as f64) < 0.5 * mean);
        state.load.observe(
            &model.load,
            &LoadObservation {
                response_time_z,
                error_streak: state.error_streak,
                hints_used: event.hints_used,
                rapid_guess,
                attempt: event.attempt,
                help_abuse,
                idle_minutes,
                session_minutes: (event.timestamp_ms - state.session_started_ms).max(0) as f64
                    / 60_000.0,
            },
        );
        let current = event
            .skills
            .first()
            .and_then(|k| state.skills.get(k).map(|s| (k.as_str(), s)));
        state.risk = Risk::assess(&state.load, current);
        state
    }
}

/// What an item's norm says about one answer, read before the answer joins it.
#[derive(Debug, Clone, Copy, Default)]
struct ItemView {
    /// The item's mean response time, once the norm has enough answers.
    item_mean_ms: Option<f64>,
    /// Much faster than the item's norm: a guess, not an answer.
    rapid_guess: bool,
    /// How slow this answer is for the item (z of ln time).
    item_z: Option<f64>,
}

/// A scored answer's response time joins its item's norm.
fn learn_item_norm(items: &mut HashMap<String, ItemNorm>, event: &LearningEvent) {
    if let Some(ms) = event.response_time_ms.filter(|_| event.is_scored()) {
        let item = items.entry(event.item.clone()).or_default();
        item.count += 1;
        item.mean_ms += (ms as f64 - item.mean_ms) / item.count as f64;
        item.log_times.push(ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::LoadLevel;

    fn answer(learner: &str, skill: &str, correct: bool, t: i64, rt: u64) -> LearningEvent {
        LearningEvent {
            response_time_ms: Some(rt),
            group: Some("class-7b".into()),
            ..LearningEvent::answer(learner, &format!("item-{t}"), skill, correct, t)
        }
    }

    #[test]
    fn mastery_rises_with_correct_answers_and_is_reached() {
        let mut engine = Engine::new(EngineParams::default());
        for t in 0..8 {
            engine.apply(&answer("ada", "fractions", true, t, 8_000));
        }
        let s = &engine.learner("ada").unwrap().skills["fractions"];
        assert_eq!(s.attempts, 8);
        assert!(
            s.mastered,
            "eight correct answers in a row should master the skill: {s:?}"
        );
        assert!(s.mastered_after.unwrap() <= 8);
        assert!(s.p_correct_next > 0.85);
    }

    #[test]
    fn replay_is_deterministic() {
        let events: Vec<_> = (0..50)
            .map(|t| {
                answer(
                    ["ada", "bo"][t as usize % 2],
                    "algebra",
                    t % 3 != 0,
                    t,
                    4_000 + (t as u64 * 997) % 9_000,
                )
            })
            .collect();
        let run = || {
            let mut e = Engine::new(EngineParams::default());
            for ev in &events {
                e.apply(ev);
            }
            (e.learner("ada").cloned(), e.learner("bo").cloned())
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn a_rebuilt_learner_is_as_if_the_voided_answer_never_happened() {
        // Without response times the item norms play no part, so the rebuilt state must equal
        // that of an engine that never saw the voided answer.
        let events: Vec<LearningEvent> = (0..12)
            .map(|t| LearningEvent {
                group: Some("class-7b".into()),
                ..LearningEvent::answer("ada", &format!("item-{t}"), "algebra", t % 4 != 1, t)
            })
            .collect();
        let voided = 5;
        let kept: Vec<LearningEvent> = events
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != voided)
            .map(|(_, e)| e.clone())
            .collect();

        let mut live = Engine::new(EngineParams::default());
        for e in &events {
            live.apply(e);
            live.apply(&LearningEvent::answer(
                "bo",
                "item-x",
                "algebra",
                true,
                e.timestamp_ms,
            ));
        }
        let bo_before = live.learner("bo").cloned();
        let rebuilt = live.rebuild("ada", &kept).clone();

        let mut fresh = Engine::new(EngineParams::default());
        for e in &kept {
            fresh.apply(e);
        }
        assert_eq!(Some(&rebuilt), fresh.learner("ada"));
        assert_eq!(rebuilt.answers, 11);
        assert_eq!(
            live.learner("bo").cloned(),
            bo_before,
            "other learners stay"
        );
        let emptied = live.rebuild("ada", &[]);
        assert_eq!((emptied.events, emptied.skills.len()), (0, 0));
    }

    #[test]
    fn slow_error_streak_raises_load_with_reasons() {
        let mut engine = Engine::new(EngineParams::default());
        for t in 0..6 {
            engine.apply(&answer("ada", "algebra", true, t, 5_000));
        }
        for t in 6..11 {
            engine.apply(&answer("ada", "algebra", false, t, 40_000));
        }
        let s = engine.learner("ada").unwrap();
        assert_eq!(s.error_streak, 5);
        assert!(s.load.level >= LoadLevel::High, "{:?}", s.load);
        assert!(
            s.load
                .reasons
                .iter()
                .any(|r| r.signal == crate::load::LoadSignal::SlowResponse)
        );
        assert!(s.groups.contains("class-7b"));
    }

    #[test]
    fn rapid_guesses_are_flagged_against_the_item_norm() {
        let mut engine = Engine::new(EngineParams::default());
        for (i, who) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            let mut ev = answer(who, "geo", true, i as i64, 30_000);
            ev.item = "q1".into();
            engine.apply(&ev);
        }
        let mut guess = answer("f", "geo", false, 10, 900);
        guess.item = "q1".into();
        assert!(engine.apply(&guess).load.rapid_guess);
    }

    #[test]
    fn pauses_are_idle_time_and_long_sittings_tire() {
        let mut engine = Engine::new(EngineParams::default());
        let minute = 60_000;
        // Answers every two minutes for 50 minutes: fatigue, no idle time.
        for t in 0..26 {
            engine.apply(&answer("ada", "algebra", true, t * 2 * minute, 5_000));
        }
        let s = engine.learner("ada").unwrap();
        assert!(
            s.load
                .reasons
                .iter()
                .any(|r| r.signal == crate::load::LoadSignal::Fatigue)
        );
        // A ten-minute pause is idle time within the sitting...
        let s = engine.apply(&answer("ada", "algebra", true, 60 * minute, 5_000));
        assert!(
            s.load
                .reasons
                .iter()
                .any(|r| r.signal == crate::load::LoadSignal::Idle)
        );
        // ...an hour's pause starts a new sitting: neither idle nor tired.
        let s = engine.apply(&answer("ada", "algebra", true, 120 * minute, 5_000));
        assert_eq!(s.session_started_ms, 120 * minute);
        assert!(s.load.reasons.is_empty(), "{:?}", s.load.reasons);
    }

    #[test]
    fn unscored_events_count_but_do_not_move_mastery() {
        let mut engine = Engine::new(EngineParams::default());
        let mut ev = answer("ada", "algebra", true, 1, 3_000);
        ev.outcome = Outcome::Unscored;
        let s = engine.apply(&ev);
        assert_eq!(s.events, 1);
        assert_eq!(s.answers, 0);
        assert!(s.skills.is_empty());
    }

    #[test]
    fn adopting_moves_a_history_to_the_new_id_once() {
        let mut engine = Engine::new(EngineParams::default());
        engine.apply(&LearningEvent::answer("p1_old", "i1", "s", true, 1_000));
        assert!(engine.adopt("p2_new", &["p1_old".to_owned()]));
        assert!(engine.learner("p1_old").is_none());
        assert_eq!(engine.learner("p2_new").unwrap().events, 1);
        assert_eq!(engine.learner("p2_new").unwrap().learner, "p2_new");
        assert!(!engine.adopt("p2_new", &["p1_old".to_owned()]));
    }
}
