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

/// An epoch second as a UTC minute, `2026-12-08 02:49`, for an operator's listing.
pub fn utc_minute(epoch: u64) -> String {
    let (days, seconds) = (epoch / 86_400, epoch % 86_400);
    // Days since 1970-01-01 to a civil date (Gregorian, proleptic).
    let shifted = days as i64 + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        seconds / 3_600,
        seconds % 3_600 / 60
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn an_epoch_second_reads_as_its_utc_minute() {
        assert_eq!(utc_minute(0), "1970-01-01 00:00");
        assert_eq!(utc_minute(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc_minute(1_796_698_140), "2026-12-08 02:49");
        assert_eq!(utc_minute(4_102_444_799), "2099-12-31 23:59");
    }

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
