//! Wall-clock time as the store and the APIs write it: seconds or milliseconds since the
//! Unix epoch. A clock before 1970 reads as 0 rather than failing a run.

use std::time::{SystemTime, UNIX_EPOCH};

/// `time` in whole seconds since the epoch.
pub fn epoch_seconds_of(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Now, in whole seconds since the epoch.
pub fn epoch_seconds() -> u64 {
    epoch_seconds_of(SystemTime::now())
}

/// Now, in milliseconds since the epoch.
pub fn epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn seconds_and_millis_agree_and_a_clock_before_1970_reads_zero() {
        let (millis, seconds) = (epoch_millis(), epoch_seconds());
        assert!(seconds >= millis / 1000 && seconds - millis / 1000 <= 1);
        assert!(seconds > 1_700_000_000, "{seconds}");
        assert_eq!(epoch_seconds_of(UNIX_EPOCH - Duration::from_secs(5)), 0);
        assert_eq!(
            epoch_seconds_of(UNIX_EPOCH + Duration::from_millis(2_999)),
            2
        );
    }
}
