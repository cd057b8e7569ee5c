//! Knowledge tracing per skill: Bayesian knowledge tracing (Corbett & Anderson 1995).
//!
//! The belief that a skill is known is kept as **log-odds**, not as a probability: a scalar
//! P(known) pushed towards 1.0 by a long run of correct answers rounds to exactly 1.0, after which
//! `1 - P` is 0 and no error can ever move it again. In log-odds a long run of successes is just a
//! large number and one slip still moves it.

use serde::{Deserialize, Serialize};

/// The four BKT parameters of a skill.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BktParams {
    /// P(known) before the first opportunity.
    pub prior: f64,
    /// P(unknown -> known) at each opportunity.
    pub learn: f64,
    /// P(correct | unknown).
    pub guess: f64,
    /// P(incorrect | known).
    pub slip: f64,
    /// P(known -> unknown) at each opportunity (0 in standard BKT; the forgetting variant of
    /// Khajah et al. 2016 fits it).
    #[serde(default)]
    pub forget: f64,
}

impl Default for BktParams {
    /// Textbook starting values, used until a fitted model is loaded (the knowledge-tracing issue
    /// fits them per skill).
    fn default() -> Self {
        BktParams {
            prior: 0.3,
            learn: 0.12,
            guess: 0.2,
            slip: 0.1,
            forget: 0.0,
        }
    }
}

/// Log-odds of a probability.
pub fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// Probability of log-odds `x`.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `ln(e^a + e^b)` without overflow.
fn log_add_exp(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

impl BktParams {
    /// Log-odds of the prior.
    pub fn initial_log_odds(&self) -> f64 {
        logit(self.prior)
    }

    /// P(next answer correct) given the log-odds that the skill is known. Both P(known) and
    /// P(unknown) are computed from the log-odds directly, never as `1 - p`.
    pub fn p_correct(&self, log_odds_known: f64) -> f64 {
        let known = sigmoid(log_odds_known);
        let unknown = sigmoid(-log_odds_known);
        known * (1.0 - self.slip) + unknown * self.guess
    }

    /// The BKT update for one observed answer: condition on the answer, then apply the learning
    /// transition. Returns the new log-odds that the skill is known.
    pub fn update(&self, log_odds_known: f64, correct: bool) -> f64 {
        // Posterior odds = prior odds * likelihood ratio P(obs | known) / P(obs | unknown).
        let likelihood_ratio = if correct {
            (1.0 - self.slip) / self.guess
        } else {
            self.slip / (1.0 - self.guess)
        };
        let posterior = log_odds_known + likelihood_ratio.ln();
        self.transition(posterior)
    }

    /// The learning (and forgetting) transition between opportunities, in log-odds:
    /// P' = P (1 - forget) + (1 - P) learn, so
    /// odds' = (odds (1 - forget) + learn) / (odds forget + (1 - learn)).
    pub fn transition(&self, log_odds_known: f64) -> f64 {
        let numerator = log_add_exp(log_odds_known + (1.0 - self.forget).ln(), self.learn.ln());
        let denominator = log_add_exp(log_odds_known + self.forget.ln(), (1.0 - self.learn).ln());
        numerator - denominator
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correct_answers_raise_and_errors_lower_mastery() {
        let p = BktParams::default();
        let start = p.initial_log_odds();
        assert!(p.update(start, true) > start);
        // An error lowers the belief before the learning transition adds a little back.
        assert!(sigmoid(p.update(start, false)) < sigmoid(start) + p.learn);
    }

    #[test]
    fn long_success_runs_do_not_saturate() {
        let p = BktParams::default();
        let mut x = p.initial_log_odds();
        for _ in 0..2_000 {
            x = p.update(x, true);
        }
        assert!(x.is_finite());
        let after_slip = p.update(x, false);
        assert!(
            after_slip < x,
            "one error after a long run must still lower the log-odds"
        );
    }

    #[test]
    fn p_correct_is_between_guess_and_one_minus_slip() {
        let p = BktParams::default();
        for x in [-50.0, -2.0, 0.0, 2.0, 50.0] {
            let pc = p.p_correct(x);
            assert!(pc >= p.guess - 1e-12 && pc <= 1.0 - p.slip + 1e-12, "{pc}");
        }
    }
}
