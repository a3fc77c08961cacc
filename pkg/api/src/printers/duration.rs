//! Ages and durations as `kubectl get` shows them: the rules of apimachinery's
//! `duration.HumanDuration`, which the upstream printers use for every `Age` cell.

use k8s_openapi::jiff::{SignedDuration, Timestamp};

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const YEAR: i64 = 365 * DAY;

/// A duration in whole seconds as a short human approximation: `119s`, `2m30s`, `10m`,
/// `3h20m`, `8h`, `2d3h`, `10d`, `2y10d`, `8y`. A little negative (clock skew up to a
/// second) reads `0s`; more negative reads `<invalid>`.
pub fn human_duration(d: SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 2 * MINUTE {
        return format!("{seconds}s");
    }
    let minutes = seconds / MINUTE;
    if minutes < 10 {
        return with_remainder(minutes, "m", seconds % MINUTE, "s");
    }
    if minutes < 3 * 60 {
        return format!("{minutes}m");
    }
    let hours = seconds / HOUR;
    if hours < 8 {
        return with_remainder(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return with_remainder(hours / 24, "d", hours % 24, "h");
    }
    let days = seconds / DAY;
    if seconds < 2 * YEAR {
        return format!("{days}d");
    }
    if seconds < 8 * YEAR {
        return with_remainder(seconds / YEAR, "y", days % 365, "d");
    }
    format!("{}y", seconds / YEAR)
}

/// `3m` or `3m20s`: the second unit only when it is not zero.
fn with_remainder(major: i64, major_unit: &str, minor: i64, minor_unit: &str) -> String {
    if minor == 0 {
        format!("{major}{major_unit}")
    } else {
        format!("{major}{major_unit}{minor}{minor_unit}")
    }
}

/// The time elapsed from `then` to `now`, as [`human_duration`]; `<unknown>` without a
/// time, as upstream prints a zero timestamp.
pub fn since(then: Option<Timestamp>, now: Timestamp) -> String {
    match then {
        Some(then) => human_duration(now.duration_since(then)),
        None => "<unknown>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: i64) -> String {
        human_duration(SignedDuration::from_secs(s))
    }

    #[test]
    fn follows_the_upstream_steps() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (150, "2m30s"),
            (599, "9m59s"),
            (600, "10m"),
            (179 * MINUTE + 59, "179m"),
            (3 * HOUR, "3h"),
            (3 * HOUR + 20 * MINUTE, "3h20m"),
            (8 * HOUR, "8h"),
            (47 * HOUR + 59 * MINUTE, "47h"),
            (2 * DAY, "2d"),
            (2 * DAY + 3 * HOUR, "2d3h"),
            (8 * DAY, "8d"),
            (10 * DAY + 5 * HOUR, "10d"),
            (729 * DAY, "729d"),
            (2 * YEAR + 10 * DAY, "2y10d"),
            (3 * YEAR, "3y"),
            (8 * YEAR + 100 * DAY, "8y"),
        ];
        for (s, want) in cases {
            assert_eq!(secs(s), want, "{s} seconds");
        }
    }

    #[test]
    fn missing_times_are_unknown() {
        let now: Timestamp = "2024-01-01T00:10:00Z".parse().unwrap();
        assert_eq!(since(None, now), "<unknown>");
        let then: Timestamp = "2024-01-01T00:05:00Z".parse().unwrap();
        assert_eq!(since(Some(then), now), "5m");
    }
}
