//! When to try a failed delivery again. The default schedule (after the first attempt fails):
//! 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; after the eighth failed attempt the message goes to
//! the dead-letter list, from which it can be replayed. Each wait is spread by ±20 % jitter so
//! that retries to a recovering receiver do not arrive together. The schedule is configurable
//! (`[webhooks] retry_schedule_secs`); a message is dead after `schedule.len() + 1` failures.

/// Default waits before attempts 2, 3, ... in seconds.
pub const SCHEDULE_SECS: [f64; 7] = [5.0, 300.0, 1_800.0, 7_200.0, 18_000.0, 36_000.0, 36_000.0];

/// What to do after `failed_attempts` attempts have failed: wait this long, or give up (dead
/// letter). `jitter` is a uniform draw in [0, 1) supplied by the caller (the code stays pure).
pub fn next_wait_ms(schedule_secs: &[f64], failed_attempts: u32, jitter: f64) -> Option<u64> {
    let base = *schedule_secs.get(failed_attempts.checked_sub(1)? as usize)? * 1_000.0;
    let spread = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    Some((base * spread) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_grows_and_ends_in_the_dead_letter_list() {
        let s = &SCHEDULE_SECS;
        assert_eq!(next_wait_ms(s, 0, 0.5), None, "nothing has failed yet");
        assert_eq!(next_wait_ms(s, 1, 0.5), Some(5_000));
        assert_eq!(next_wait_ms(s, 2, 0.5), Some(300_000));
        assert_eq!(next_wait_ms(s, 7, 0.5), Some(36_000_000));
        assert_eq!(
            next_wait_ms(s, 8, 0.5),
            None,
            "dead letter after eight failures"
        );
        let (low, high) = (
            next_wait_ms(s, 3, 0.0).unwrap(),
            next_wait_ms(s, 3, 0.999).unwrap(),
        );
        assert!(low == 1_440_000 && high > 2_150_000 && high <= 2_160_000);
    }
}
