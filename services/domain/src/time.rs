//! Instants as the store keeps them: whole microseconds since the Unix epoch, UTC.

use chrono::{DateTime, TimeZone, Utc};

/// Microseconds since 1970-01-01T00:00:00Z; the one time representation in the database.
pub fn to_micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// The instant `micros` microseconds after the Unix epoch (clamped to chrono's range).
pub fn from_micros(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(micros)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `at` truncated to the microsecond, the precision the store keeps.
pub fn truncate_to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    from_micros(to_micros(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_survives_the_round_trip_through_micros() {
        let at = truncate_to_micros(Utc::now());
        assert_eq!(from_micros(to_micros(at)), at);
        assert_eq!(
            to_micros(from_micros(1_767_225_600_000_001)),
            1_767_225_600_000_001
        );
    }
}
