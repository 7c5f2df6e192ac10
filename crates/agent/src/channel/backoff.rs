//! Retry delays after failures: exponential, capped, with jitter, so a
//! fleet that lost its server does not come back in lockstep, and a failing
//! request never turns into a hot loop.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    pub const DEFAULT_BASE: Duration = Duration::from_secs(1);
    pub const DEFAULT_CAP: Duration = Duration::from_secs(300);

    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap,
            failures: 0,
        }
    }

    /// The upper bound of the next delay: base·2ⁿ after n earlier failures,
    /// at most the cap.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay after one more failure. `unit` in [0, 1) picks the point
    /// in the upper half of [0, ceiling] ("equal jitter"): spread, yet never
    /// less than half the ceiling, so even the first retry waits.
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let unit = unit.clamp(0.0, 1.0);
        ceiling.mul_f64(0.5 + 0.5 * unit)
    }

    /// [`Backoff::next_delay`] with a random point.
    pub fn next_random(&mut self) -> Duration {
        self.next_delay(rand::random::<f64>())
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    #[cfg(test)]
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Self::DEFAULT_BASE, Self::DEFAULT_CAP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_doubles_up_to_the_cap() {
        let mut b = Backoff::default();
        let highs: Vec<u64> = (0..12).map(|_| b.next_delay(1.0).as_secs()).collect();
        assert_eq!(highs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        b.reset();
        let lows: Vec<u128> = (0..4).map(|_| b.next_delay(0.0).as_millis()).collect();
        assert_eq!(lows, [500, 1000, 2000, 4000]);
    }

    #[test]
    fn jitter_stays_within_the_upper_half() {
        let mut b = Backoff::default();
        for _ in 0..200 {
            let ceiling = b.ceiling();
            let d = b.next_random();
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{d:?} outside [{:?}, {ceiling:?}]",
                ceiling / 2
            );
        }
        // Many failures neither overflow nor exceed the cap.
        assert_eq!(b.ceiling(), Backoff::DEFAULT_CAP);
        assert!(b.failures() == 200);
    }

    #[test]
    fn never_a_hot_loop() {
        let mut b = Backoff::new(Duration::from_millis(200), Duration::from_secs(60));
        assert!(b.next_delay(0.0) >= Duration::from_millis(100));
        b.reset();
        assert_eq!(b.failures(), 0);
    }
}
