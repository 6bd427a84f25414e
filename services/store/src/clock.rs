//! The store's clock: the system's, or shifted to replay a pilot's days in
//! minutes (`pilotgate demo`). Every instant the store or the server stamps
//! (decisions, records, audit entries, refusal days) comes from here.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};

/// The system clock plus an offset, zero unless a simulation moved it.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    offset_micros: AtomicI64,
}

impl Clock {
    /// The current instant, shifted by the offset.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        let offset = self.offset_micros.load(Ordering::Acquire);
        let now = Utc::now();
        if offset == 0 {
            now
        } else {
            now + TimeDelta::microseconds(offset)
        }
    }

    /// From now on the clock reads `at` and runs on from there; `None` goes
    /// back to the system clock.
    pub(crate) fn set(&self, at: Option<DateTime<Utc>>) {
        let offset = at.map_or(0, |at| {
            (at - Utc::now()).num_microseconds().unwrap_or(i64::MAX)
        });
        self.offset_micros.store(offset, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulated_clock_reads_the_instant_it_was_set_to_and_runs_on() {
        let clock = Clock::default();
        let then = Utc::now() - TimeDelta::days(10);
        clock.set(Some(then));
        let read = clock.now();
        assert!(
            read >= then && read < then + TimeDelta::seconds(5),
            "{read} vs {then}"
        );
        clock.set(None);
        assert!((clock.now() - Utc::now()).num_seconds().abs() < 5);
    }
}
