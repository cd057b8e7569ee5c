//! A circuit breaker per endpoint: after `failure_threshold` consecutive failures it opens and
//! deliveries to the endpoint wait; after `open_for_ms` one trial delivery is let through
//! (half-open); its success closes the circuit, its failure opens it again. Time is passed in.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    pub failure_threshold: u32,
    pub open_for_ms: i64,
    state: State,
    consecutive_failures: u32,
    opened_at_ms: i64,
    trial_in_flight: bool,
}

impl Breaker {
    pub fn new(failure_threshold: u32, open_for_ms: i64) -> Breaker {
        Breaker {
            failure_threshold,
            open_for_ms,
            state: State::Closed,
            consecutive_failures: 0,
            opened_at_ms: 0,
            trial_in_flight: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Would [`Breaker::allow`] say yes now? (Does not start a trial.)
    pub fn would_allow(&self, now_ms: i64) -> bool {
        match self.state {
            State::Closed => true,
            State::Open => now_ms - self.opened_at_ms >= self.open_for_ms,
            State::HalfOpen => !self.trial_in_flight,
        }
    }

    /// When an open circuit lets its trial through.
    pub fn reopens_at_ms(&self) -> Option<i64> {
        (self.state == State::Open).then_some(self.opened_at_ms + self.open_for_ms)
    }

    /// May a delivery go out now? In half-open, only one trial at a time.
    pub fn allow(&mut self, now_ms: i64) -> bool {
        match self.state {
            State::Closed => true,
            State::Open if now_ms - self.opened_at_ms >= self.open_for_ms => {
                self.state = State::HalfOpen;
                self.trial_in_flight = true;
                true
            }
            State::Open => false,
            State::HalfOpen if !self.trial_in_flight => {
                self.trial_in_flight = true;
                true
            }
            State::HalfOpen => false,
        }
    }

    pub fn success(&mut self) {
        self.state = State::Closed;
        self.consecutive_failures = 0;
        self.trial_in_flight = false;
    }

    pub fn failure(&mut self, now_ms: i64) {
        self.consecutive_failures += 1;
        self.trial_in_flight = false;
        if self.state == State::HalfOpen || self.consecutive_failures >= self.failure_threshold {
            self.state = State::Open;
            self.opened_at_ms = now_ms;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_and_recovers_through_half_open() {
        let mut b = Breaker::new(3, 30_000);
        for t in 0..3 {
            assert!(b.allow(t));
            b.failure(t);
        }
        assert_eq!(b.state(), State::Open);
        assert!(!b.allow(10_000), "open: deliveries wait");
        assert!(b.allow(31_000), "after the open period, one trial");
        assert_eq!(b.state(), State::HalfOpen);
        assert!(!b.allow(31_001), "one trial at a time");
        b.failure(31_002);
        assert_eq!(b.state(), State::Open, "a failed trial opens it again");
        assert!(b.allow(62_000));
        b.success();
        assert_eq!(b.state(), State::Closed);
        assert!(b.allow(62_001));
    }
}
