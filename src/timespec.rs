//! Parsing points in time given by users (`--at`), against a clock passed in.

use chrono::{DateTime, Duration, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::error::{Error, Result};

/// Parses RFC 3339, `YYYY-MM-DD[ HH:MM[:SS]]` (local time), `now`, or `N<unit> ago`
/// (units s, m, h, d, w, also spelled out).
pub fn parse_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let s = s.trim();
    let bad = || {
        Error::Usage(format!(
            "cannot read time {s:?}: use RFC 3339, \"YYYY-MM-DD HH:MM\" or \"2h ago\""
        ))
    };
    if s == "now" {
        return Ok(now);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return local(n).ok_or_else(bad);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return local(d.and_hms_opt(0, 0, 0).expect("midnight exists")).ok_or_else(bad);
    }
    if let Some(rel) = s.strip_suffix("ago") {
        return Ok(now - parse_duration(rel.trim()).ok_or_else(bad)?);
    }
    Err(bad())
}

fn local(n: NaiveDateTime) -> Option<DateTime<Utc>> {
    Local
        .from_local_datetime(&n)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses `90s`, `15m`, `2h`, `3 days`, `1w`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86400,
        "w" | "week" | "weeks" => 7 * 86400,
        _ => return None,
    };
    Some(Duration::seconds(n.checked_mul(secs)?))
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
}
