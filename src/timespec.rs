//! Parsing points in time given by users (`--at`), against a clock passed in, and the
//! durations of flags and configuration files.
//!
//! Every value is range-checked here, so that no sum or difference of a time and a
//! duration from a user can overflow later (chrono panics on overflow).

use chrono::{DateTime, Datelike, Duration, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::error::{Error, Result};

/// The longest duration drctl accepts from a user: 100 years (36525 days).
pub const MAX_DURATION_SECS: i64 = 36525 * 86400;

/// The years a point in time from a user may fall in: those RFC 3339 can write.
const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// A time as people read it here: local, to the second.
pub fn local_time(t: &DateTime<Utc>) -> String {
    t.with_timezone(&Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Parses RFC 3339, `YYYY-MM-DD[ HH:MM[:SS]]` (local time), `now`, or `N<unit> ago`
/// (units s, m, h, d, w, also spelled out).
pub fn parse_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let s = s.trim();
    let bad = || {
        Error::Usage(format!(
            "cannot read time {s:?}: use RFC 3339, \"YYYY-MM-DD HH:MM\" or \"2h ago\""
        ))
    };
    let in_range = |t: DateTime<Utc>| {
        if YEARS.contains(&t.year()) {
            Ok(t)
        } else {
            Err(Error::Usage(format!(
                "time {s:?} is out of range: years {}-{} only",
                YEARS.start(),
                YEARS.end()
            )))
        }
    };
    if s == "now" {
        return in_range(now);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return in_range(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return in_range(local(n).ok_or_else(bad)?);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return in_range(local(d.and_hms_opt(0, 0, 0).expect("midnight exists")).ok_or_else(bad)?);
    }
    if let Some(rel) = s.strip_suffix("ago") {
        let d = parse_duration(rel.trim())
            .map_err(|e| Error::Usage(format!("cannot read time {s:?}: {e}")))?;
        let t = now
            .checked_sub_signed(d)
            .ok_or_else(|| Error::Usage(format!("time {s:?} is out of range")))?;
        return in_range(t);
    }
    Err(bad())
}

fn local(n: NaiveDateTime) -> Option<DateTime<Utc>> {
    Local
        .from_local_datetime(&n)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses `90s`, `15m`, `2h`, `3 days`, `1w`, at most `MAX_DURATION_SECS`; the error
/// is a sentence for the user (`cannot read duration "soon" (...)`).
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let s = text.trim();
    let bad = || format!("cannot read duration {text:?} (use 90s, 15m, 2h, 3d, 1w)");
    let too_long = || {
        format!(
            "duration {text:?} is out of range: at most {}d (100 years)",
            MAX_DURATION_SECS / 86400
        )
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(bad());
    }
    let unit_secs: i64 = match unit.trim() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86400,
        "w" | "week" | "weeks" => 7 * 86400,
        _ => return Err(bad()),
    };
    // Only digits are left, so a number that does not parse is one too large for i64.
    let n: i64 = num.parse().map_err(|_| too_long())?;
    let secs = n
        .checked_mul(unit_secs)
        .filter(|s| *s <= MAX_DURATION_SECS)
        .ok_or_else(too_long)?;
    Duration::try_seconds(secs).ok_or_else(too_long)
}

/// Writes a duration the way `parse_duration` reads it, in its largest whole unit
/// (`15m`, `2h`, `1d`), or in seconds with a fraction below a minute (`4.2s`).
pub fn format_duration(d: &Duration) -> String {
    let ms = d.num_milliseconds();
    if ms.abs() < 60_000 {
        if ms % 1000 == 0 {
            return format!("{}s", ms / 1000);
        }
        return format!("{:.1}s", ms as f64 / 1000.0);
    }
    let secs = d.num_seconds();
    for (unit, n) in [("d", 86400), ("h", 3600), ("m", 60)] {
        if secs % n == 0 {
            return format!("{}{unit}", secs / n);
        }
    }
    if secs >= 3600 {
        return format!("{}h{}m", secs / 3600, secs % 3600 / 60);
    }
    format!("{}m{}s", secs / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_they_parse() {
        for s in ["15m", "2h", "1d", "30s", "0s"] {
            assert_eq!(format_duration(&parse_duration(s).unwrap()), s);
        }
        assert_eq!(format_duration(&Duration::milliseconds(4200)), "4.2s");
        assert_eq!(format_duration(&Duration::seconds(3725)), "1h2m");
        assert_eq!(format_duration(&Duration::seconds(125)), "2m5s");
    }

    #[test]
    fn forms() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        assert_eq!(parse_time("2h ago", now).unwrap(), now - Duration::hours(2));
        assert_eq!(
            parse_time("3 days ago", now).unwrap(),
            now - Duration::days(3)
        );
        assert_eq!(
            parse_time("2026-11-20T03:15:00Z", now).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 20, 3, 15, 0).unwrap()
        );
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert!(parse_time("2026-11-20 03:15", now).is_ok());
        assert!(parse_time("yesterday-ish", now).is_err());
        assert!(parse_time("5 parsecs ago", now).is_err());
    }

    #[test]
    fn values_out_of_range_are_errors() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        for s in ["99999999999 days ago", "99999999999999h ago", "36526d ago"] {
            let e = parse_time(s, now).unwrap_err().to_string();
            assert!(e.contains("out of range"), "{s}: {e}");
        }
        assert!(parse_time("+99999-01-01T00:00:00Z", now).is_err());
        for s in [
            "+10000-01-01",
            "+10000-01-01T00:00",
            "-0001-01-01",
            "0000-01-01",
        ] {
            let e = parse_time(s, now).unwrap_err().to_string();
            assert!(e.contains("out of range"), "{s}: {e}");
        }
        assert!(parse_time("9999-12-31 23:59", now).is_ok());
        assert!(parse_time("36525d ago", now).is_ok());
        for s in [
            "99999999999999h",
            "99999999999999999999999s",
            "9223372036854775807s",
            "2562047788015216w",
        ] {
            assert!(
                parse_duration(s).unwrap_err().contains("out of range"),
                "{s}"
            );
        }
        assert_eq!(parse_duration("36525d").unwrap(), Duration::days(36525));
        assert!(parse_duration("h").unwrap_err().contains("cannot read"));
        assert!(parse_duration("-5m").unwrap_err().contains("cannot read"));
    }
}
