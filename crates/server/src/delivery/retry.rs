//! When to try a failed delivery again. The schedule (after the first attempt fails): 5 s, 5 min,
//! 30 min, 2 h, 5 h, 10 h, 10 h; after the eighth failed attempt the message goes to the
//! dead-letter list, from which it can be replayed. Each wait is spread by ±20 % jitter so that
//! retries to a recovering receiver do not arrive together.

/// Waits before attempts 2, 3, ... in seconds.
pub const SCHEDULE_SECS: [u64; 7] = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];

/// What to do after `failed_attempts` attempts have failed: wait this long, or give up.
/// `jitter` is a uniform draw in [0, 1) supplied by the caller (the code stays pure).
pub fn next_wait_ms(failed_attempts: u32, jitter: f64) -> Option<u64> {
    let base = *SCHEDULE_SECS.get(failed_attempts.checked_sub(1)? as usize)? as f64 * 1_000.0;
    let spread = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    Some((base * spread) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_grows_and_ends_in_the_dead_letter_list() {
        assert_eq!(next_wait_ms(0, 0.5), None, "nothing has failed yet");
        assert_eq!(next_wait_ms(1, 0.5), Some(5_000));
        assert_eq!(next_wait_ms(2, 0.5), Some(300_000));
        assert_eq!(next_wait_ms(7, 0.5), Some(36_000_000));
        assert_eq!(
            next_wait_ms(8, 0.5),
            None,
            "dead letter after eight failures"
        );
        let (low, high) = (
            next_wait_ms(3, 0.0).unwrap(),
            next_wait_ms(3, 0.999).unwrap(),
        );
        assert!(low == 1_440_000 && high > 2_150_000 && high <= 2_160_000);
    }
}
