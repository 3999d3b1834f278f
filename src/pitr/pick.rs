//! A time for a drill to restore to: one that every point-in-time source can reach.

use chrono::{DateTime, Utc};

use super::Span;

/// The spans every source's windows reach (each list oldest first, not overlapping), in
/// whole seconds: a restore to any second in them is possible for all of them.
pub fn common_windows(per_source: &[Vec<Span>]) -> Vec<Span> {
    let Some((first, rest)) = per_source.split_first() else {
        return Vec::new();
    };
    let mut common = first.clone();
    for windows in rest {
        let mut next = Vec::new();
        for a in &common {
            for b in windows {
                let (from, to) = (a.from.max(b.from), a.to.min(b.to));
                if from <= to {
                    next.push(Span { from, to });
                }
            }
        }
        common = next;
    }
    common
        .into_iter()
        .filter_map(|w| {
            let from = ceil_second(w.from);
            let to = DateTime::from_timestamp(w.to.timestamp(), 0)?;
            (from <= to).then_some(Span { from, to })
        })
        .collect()
}

/// A whole second drawn uniformly from `windows` by `r` in `[0, 1)`; `None` when they
/// hold none.
pub fn pick_time(windows: &[Span], r: f64) -> Option<DateTime<Utc>> {
    let seconds = |w: &Span| (w.to - w.from).num_seconds() + 1;
    let total: i64 = windows.iter().map(seconds).sum();
    if total <= 0 {
        return None;
    }
    let mut n = ((r.clamp(0.0, 1.0) * total as f64) as i64).min(total - 1);
    for w in windows {
        if n < seconds(w) {
            return Some(w.from + chrono::Duration::seconds(n));
        }
        n -= seconds(w);
    }
    None
}

/// The first whole second at or after `t`.
fn ceil_second(t: DateTime<Utc>) -> DateTime<Utc> {
    let whole = DateTime::from_timestamp(t.timestamp(), 0).expect("in range");
    if whole < t {
        whole + chrono::Duration::seconds(1)
    } else {
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64, ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_790_000_000_000 + s * 1000 + ms).unwrap()
    }

    fn span(a: (i64, i64), b: (i64, i64)) -> Span {
        Span {
            from: t(a.0, a.1),
            to: t(b.0, b.1),
        }
    }

    #[test]
    fn the_common_window_is_the_whole_seconds_all_sources_reach() {
        let db = vec![span((0, 500), (10, 0)), span((20, 0), (30, 0))];
        let other = vec![span((5, 0), (25, 300))];
        assert_eq!(
            common_windows(&[db.clone(), other]),
            vec![span((5, 0), (10, 0)), span((20, 0), (25, 0))]
        );
        // One source alone: its windows, rounded inwards to whole seconds.
        assert_eq!(
            common_windows(&[vec![span((0, 500), (10, 700))]]),
            vec![span((1, 0), (10, 0))]
        );
        // Nothing in common, or less than a whole second.
        assert!(common_windows(&[db.clone(), vec![span((11, 0), (19, 0))]]).is_empty());
        assert!(common_windows(&[vec![span((3, 100), (3, 900))]]).is_empty());
        assert!(common_windows(&[]).is_empty());
    }

    #[test]
    fn a_picked_time_is_any_whole_second_of_the_windows_alike() {
        let windows = vec![span((0, 0), (1, 0)), span((10, 0), (11, 0))];
        // Four seconds in all: 0, 1, 10, 11.
        let picks: Vec<_> = [0.0, 0.25, 0.5, 0.75, 0.999_999, 1.0]
            .iter()
            .map(|r| pick_time(&windows, *r).unwrap())
            .collect();
        assert_eq!(
            picks,
            vec![t(0, 0), t(1, 0), t(10, 0), t(11, 0), t(11, 0), t(11, 0)]
        );
        for i in 0..100 {
            let p = pick_time(&windows, i as f64 / 100.0).unwrap();
            assert!(windows.iter().any(|w| w.from <= p && p <= w.to), "{p}");
            assert_eq!(p.timestamp_subsec_nanos(), 0);
        }
        assert_eq!(pick_time(&[], 0.5), None);
    }
}
