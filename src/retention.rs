//! Retention: which snapshots a keep policy keeps, and why (restic's rules).

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, TimeZone, Utc};

/// How many snapshots to keep per kind of period; `None` (or 0, as in restic) = no rule
/// of that kind. As configured (`[stack.NAME.keep]`), `within` is the text the operator
/// wrote (`W` = its spanned string); as applied, a duration.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepPolicy<W = Duration> {
    /// The newest N, whatever their age.
    pub last: Option<u32>,
    /// The newest of each of the last N hours that have one.
    pub hourly: Option<u32>,
    /// The newest of each of the last N days that have one.
    pub daily: Option<u32>,
    /// The newest of each of the last N ISO weeks that have one.
    pub weekly: Option<u32>,
    /// The newest of each of the last N months that have one.
    pub monthly: Option<u32>,
    /// The newest of each of the last N years that have one.
    pub yearly: Option<u32>,
    /// Keep everything this close to the newest snapshot (not to "now": a stack whose
    /// backups stopped keeps its history).
    pub within: Option<W>,
}

impl<W> KeepPolicy<W> {
    /// The same counts with `within` turned into another form (`None` when it does not
    /// convert).
    pub fn map_within<V>(&self, f: impl FnOnce(&W) -> Option<V>) -> KeepPolicy<V> {
        KeepPolicy {
            last: self.last,
            hourly: self.hourly,
            daily: self.daily,
            weekly: self.weekly,
            monthly: self.monthly,
            yearly: self.yearly,
            within: self.within.as_ref().and_then(f),
        }
    }
}

impl KeepPolicy {
    /// True when no rule would keep anything; callers must not forget with such a policy.
    pub fn is_empty(&self) -> bool {
        let counts = [
            self.last,
            self.hourly,
            self.daily,
            self.weekly,
            self.monthly,
            self.yearly,
        ];
        counts.iter().all(|n| n.unwrap_or(0) == 0) && self.within_rule().is_none()
    }

    // A zero (or negative) window is "unset" rather than "keep only the newest", like restic.
    fn within_rule(&self) -> Option<Duration> {
        self.within.filter(|d| *d > Duration::zero())
    }
}

/// The verdict for one snapshot; reasons come in rule order (last, hourly … yearly, within).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub keep: bool,
    pub reasons: Vec<String>,
}

type Period = fn(&NaiveDateTime) -> String;

// The label doubles as the bucket key: two snapshots share a period iff their labels are equal.
const PERIODS: [(&str, Period); 5] = [
    ("hourly", |t| t.format("%Y-%m-%d %Hh").to_string()),
    ("daily", |t| t.format("%Y-%m-%d").to_string()),
    // ISO week-based year, so 2025-12-29 belongs to 2026-W01.
    ("weekly", |t| {
        let w = t.iso_week();
        format!("{}-W{:02}", w.year(), w.week())
    }),
    ("monthly", |t| t.format("%Y-%m").to_string()),
    ("yearly", |t| t.format("%Y").to_string()),
];

/// Decisions for `times` (any order; result is index-aligned with `times`). Periods are
/// counted in `tz` (a stack's time zone), so "daily" means local days.
pub fn apply<Z: TimeZone>(policy: &KeepPolicy, times: &[DateTime<Utc>], tz: &Z) -> Vec<Decision> {
    if policy.is_empty() {
        let keep = Decision {
            keep: true,
            reasons: vec!["no policy".to_string()],
        };
        return vec![keep; times.len()];
    }
    // Stable sort: equal times keep their input order, so results are deterministic.
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by(|&a, &b| times[b].cmp(&times[a]));
    let local: Vec<NaiveDateTime> = times
        .iter()
        .map(|t| t.with_timezone(tz).naive_local())
        .collect();
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); times.len()];

    for &i in order.iter().take(policy.last.unwrap_or(0) as usize) {
        reasons[i].push("last".to_string());
    }

    let counts = [
        policy.hourly,
        policy.daily,
        policy.weekly,
        policy.monthly,
        policy.yearly,
    ];
    for ((name, period), count) in PERIODS.iter().zip(counts) {
        let mut left = count.unwrap_or(0);
        let mut prev: Option<String> = None;
        for &i in &order {
            if left == 0 {
                break;
            }
            // Newest first, so the first snapshot seen in a period is its newest one.
            let p = period(&local[i]);
            if prev.as_ref() != Some(&p) {
                reasons[i].push(format!("{name} {p}"));
                left -= 1;
                prev = Some(p);
            }
        }
    }

    if let (Some(d), Some(&newest)) = (policy.within_rule(), order.first()) {
        let label = format!("within {}", compact(d));
        // A window reaching before chrono's minimum time covers everything.
        let cutoff = times[newest].checked_sub_signed(d);
        for (t, r) in times.iter().zip(&mut reasons) {
            if cutoff.is_none_or(|c| *t >= c) {
                r.push(label.clone());
            }
        }
    }

    reasons
        .into_iter()
        .map(|reasons| Decision {
            keep: !reasons.is_empty(),
            reasons,
        })
        .collect()
}

// Largest of d/h/m that divides exactly, so reasons echo what the user wrote ("36h", not "1d12h").
fn compact(d: Duration) -> String {
    if d.subsec_nanos() != 0 {
        return format!("{}ms", d.num_milliseconds());
    }
    let secs = d.num_seconds();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs % size == 0 {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, SecondsFormat, Weekday};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test time")
            .with_timezone(&Utc)
    }

    fn show(t: &DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// Kept snapshots, newest first, with their reasons.
    fn kept<Z: TimeZone>(
        policy: &KeepPolicy,
        times: &[DateTime<Utc>],
        tz: &Z,
    ) -> Vec<(String, Vec<String>)> {
        let decisions = apply(policy, times, tz);
        assert_eq!(decisions.len(), times.len());
        let mut out: Vec<_> = times
            .iter()
            .zip(decisions)
            .filter(|(_, d)| {
                assert_eq!(d.keep, !d.reasons.is_empty());
                d.keep
            })
            .map(|(t, d)| (*t, d.reasons))
            .collect();
        out.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
        out.into_iter().map(|(t, r)| (show(&t), r)).collect()
    }

    fn table(rows: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        rows.iter()
            .map(|(t, r)| (t.to_string(), r.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    // Derived by hand from the calendar: 2026-01-01 is a Thursday, so ISO 2026-W01 starts
    // Monday 2025-12-29 and 2026-11-30 (day 334) is the Monday that opens 2026-W49;
    // 11-29 (Sun) closes W48, 11-22 W47, 11-15 W46. Hourly takes 09:50 over 09:10 (same hour);
    // monthly takes the irregular 06-30 23:30 and 2025-12-31 23:59:59 over the 18:00 ones,
    // and the latter is also the newest of 2025 for yearly. Cross-checked with an
    // independent Python implementation (datetime.isocalendar) that produced the same table.
    const EXPECTED: &[(&str, &[&str])] = &[
        (
            "2026-11-30T18:00:00Z",
            &[
                "last",
                "hourly 2026-11-30 18h",
                "daily 2026-11-30",
                "weekly 2026-W49",
                "monthly 2026-11",
                "yearly 2026",
            ],
        ),
        ("2026-11-30T12:00:00Z", &["last", "hourly 2026-11-30 12h"]),
        ("2026-11-30T09:50:00Z", &["last", "hourly 2026-11-30 09h"]),
        ("2026-11-30T06:00:00Z", &["hourly 2026-11-30 06h"]),
        ("2026-11-30T00:00:00Z", &["hourly 2026-11-30 00h"]),
        (
            "2026-11-29T18:00:00Z",
            &["daily 2026-11-29", "weekly 2026-W48"],
        ),
        ("2026-11-28T18:00:00Z", &["daily 2026-11-28"]),
        ("2026-11-27T18:00:00Z", &["daily 2026-11-27"]),
        ("2026-11-26T18:00:00Z", &["daily 2026-11-26"]),
        ("2026-11-25T18:00:00Z", &["daily 2026-11-25"]),
        ("2026-11-24T18:00:00Z", &["daily 2026-11-24"]),
        ("2026-11-22T18:00:00Z", &["weekly 2026-W47"]),
        ("2026-11-15T18:00:00Z", &["weekly 2026-W46"]),
        ("2026-10-31T18:00:00Z", &["monthly 2026-10"]),
        ("2026-09-30T18:00:00Z", &["monthly 2026-09"]),
        ("2026-08-31T18:00:00Z", &["monthly 2026-08"]),
        ("2026-07-31T18:00:00Z", &["monthly 2026-07"]),
        ("2026-06-30T23:30:00Z", &["monthly 2026-06"]),
        ("2026-05-31T18:00:00Z", &["monthly 2026-05"]),
        ("2026-04-30T18:00:00Z", &["monthly 2026-04"]),
        ("2026-03-31T18:00:00Z", &["monthly 2026-03"]),
        ("2026-02-28T18:00:00Z", &["monthly 2026-02"]),
        ("2026-01-31T18:00:00Z", &["monthly 2026-01"]),
        ("2025-12-31T23:59:59Z", &["monthly 2025-12", "yearly 2025"]),
    ];

    #[test]
    fn year_of_snapshots_matches_reference_table() {
        // Every 6 hours for a year, oldest first, then irregular extras appended out of order.
        let mut times = Vec::new();
        let mut at = t("2025-12-01T00:00:00Z");
        while at <= t("2026-11-30T18:00:00Z") {
            times.push(at);
            at += Duration::hours(6);
        }
        assert_eq!(times.len(), 365 * 4);
        for extra in [
            "2026-11-30T09:50:00Z",
            "2026-11-30T09:10:00Z",
            "2026-06-30T23:30:00Z",
            "2025-12-31T23:59:59Z",
        ] {
            times.push(t(extra));
        }
        let policy = KeepPolicy {
            last: Some(3),
            hourly: Some(5),
            daily: Some(7),
            weekly: Some(4),
            monthly: Some(12),
            yearly: Some(2),
            within: None,
        };
        assert_eq!(kept(&policy, &times, &Utc), table(EXPECTED));
    }

    #[test]
    fn daily_buckets_follow_the_stack_time_zone() {
        // Moscow is UTC+3 all year: 22:30Z is already 03-11 there, 20:00Z still 03-10.
        let times = [
            t("2026-03-10T20:00:00Z"),
            t("2026-03-10T22:30:00Z"),
            t("2026-03-09T12:00:00Z"),
        ];
        let policy = KeepPolicy {
            daily: Some(2),
            ..Default::default()
        };
        let moscow = kept(&policy, &times, &chrono_tz::Europe::Moscow);
        assert_eq!(
            moscow,
            table(&[
                ("2026-03-10T22:30:00Z", &["daily 2026-03-11"]),
                ("2026-03-10T20:00:00Z", &["daily 2026-03-10"]),
            ])
        );
        let utc = kept(&policy, &times, &Utc);
        assert_eq!(
            utc,
            table(&[
                ("2026-03-10T22:30:00Z", &["daily 2026-03-10"]),
                ("2026-03-09T12:00:00Z", &["daily 2026-03-09"]),
            ])
        );
    }

    #[test]
    fn within_counts_back_from_newest_snapshot_not_now() {
        // Years in the past on purpose: measured from "now" nothing would be kept.
        let start = t("2020-01-01T12:00:00Z");
        let times: Vec<_> = (0..30).map(|i| start + Duration::days(i)).collect();
        let policy = KeepPolicy {
            within: Some(Duration::days(7)),
            ..Default::default()
        };
        let decisions = apply(&policy, &times, &Utc);
        let keep: Vec<bool> = decisions.iter().map(|d| d.keep).collect();
        let want: Vec<bool> = (0..30).map(|i| i >= 22).collect();
        assert_eq!(keep, want, "newest - 7d is inclusive: 8 snapshots");
        assert_eq!(decisions[22].reasons, ["within 7d"]);
        assert!(decisions[21].reasons.is_empty());
    }

    #[test]
    fn within_label_uses_largest_exact_unit() {
        assert_eq!(compact(Duration::days(2)), "2d");
        assert_eq!(compact(Duration::hours(36)), "36h");
        assert_eq!(compact(Duration::minutes(90)), "90m");
        assert_eq!(compact(Duration::seconds(90 * 60 + 1)), "5401s");
    }

    #[test]
    fn last_with_equal_and_unordered_times() {
        let times = [
            t("2026-05-01T10:00:00Z"),
            t("2026-05-03T10:00:00Z"),
            t("2026-05-02T10:00:00Z"),
            t("2026-05-03T10:00:00Z"),
        ];
        let policy = |n| KeepPolicy {
            last: Some(n),
            ..Default::default()
        };
        let keep = |n| -> Vec<bool> {
            apply(&policy(n), &times, &Utc)
                .into_iter()
                .map(|d| d.keep)
                .collect()
        };
        // Equal times: the one given first wins, so the result does not depend on sort luck.
        assert_eq!(keep(1), [false, true, false, false]);
        assert_eq!(keep(2), [false, true, false, true]);
        assert_eq!(keep(3), [false, true, true, true]);
        assert_eq!(keep(9), [true; 4]);
        assert_eq!(
            apply(&policy(1), &times, &Utc)[1].reasons,
            ["last".to_string()]
        );
    }

    #[test]
    fn empty_policy_keeps_everything() {
        let times = [t("2026-05-01T10:00:00Z"), t("2026-05-02T10:00:00Z")];
        let all_zero = KeepPolicy {
            last: Some(0),
            daily: Some(0),
            within: Some(Duration::zero()),
            ..Default::default()
        };
        for policy in [KeepPolicy::default(), all_zero] {
            assert!(policy.is_empty());
            for d in apply(&policy, &times, &Utc) {
                assert_eq!(
                    d,
                    Decision {
                        keep: true,
                        reasons: vec!["no policy".to_string()]
                    }
                );
            }
        }
        assert!(!KeepPolicy {
            yearly: Some(1),
            ..Default::default()
        }
        .is_empty());
    }

    #[test]
    fn empty_input_gives_empty_output() {
        let policy = KeepPolicy {
            last: Some(3),
            within: Some(Duration::days(1)),
            ..Default::default()
        };
        assert!(apply(&policy, &[], &Utc).is_empty());
        assert!(apply(&KeepPolicy::default(), &[], &Utc).is_empty());
    }

    #[test]
    fn weekly_uses_iso_week_year_across_new_year() {
        let monday = NaiveDate::from_ymd_opt(2025, 12, 29).expect("date");
        assert_eq!(monday.weekday(), Weekday::Mon);
        assert_eq!(
            (monday.iso_week().year(), monday.iso_week().week()),
            (2026, 1)
        );
        let times = [
            t("2025-12-28T12:00:00Z"), // Sunday, 2025-W52
            t("2025-12-29T12:00:00Z"), // Monday, 2026-W01
            t("2026-01-01T12:00:00Z"),
            t("2026-01-04T12:00:00Z"), // Sunday, last day of 2026-W01
            t("2026-01-05T12:00:00Z"), // Monday, 2026-W02
        ];
        let policy = KeepPolicy {
            weekly: Some(10),
            yearly: Some(10),
            ..Default::default()
        };
        assert_eq!(
            kept(&policy, &times, &Utc),
            table(&[
                ("2026-01-05T12:00:00Z", &["weekly 2026-W02", "yearly 2026"]),
                ("2026-01-04T12:00:00Z", &["weekly 2026-W01"]),
                ("2025-12-29T12:00:00Z", &["yearly 2025"]),
                ("2025-12-28T12:00:00Z", &["weekly 2025-W52"]),
            ])
        );
    }
}
