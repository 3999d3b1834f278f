//! `drctl drill report`: one self-contained HTML page (inline CSS and SVG, no network
//! resource) with, per stack, its measured RTO over time against the target line and the
//! history of verdicts.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::{DrillResult, PitrDrill, Verdict};

/// Colours the chart is drawn in (a test looks for them in a screenshot, so each is far
/// from every other colour on the page: a red target line would be confused with FAIL).
pub const RTO_LINE: &str = "#1f6feb";
/// See [`RTO_LINE`].
pub const TARGET_LINE: &str = "#e8900c";
const PASS: &str = "#2da44e";
const FAIL: &str = "#cf222e";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Where the chart's RTO axis ends: the measurements with headroom, and the target when
/// it is near them. A target far above (a 45 min target for 20 s drills) would crush the
/// measurements flat; it is drawn at the top edge instead, labelled as above the chart.
fn y_range(measured_max: f64, target: Option<f64>) -> (f64, bool) {
    let top = measured_max.max(0.001) * 1.15;
    match target {
        Some(t) if t > top * 3.0 => (top, true),
        Some(t) => (top.max(t * 1.1), false),
        None => (top, false),
    }
}

/// Tick labels for the time axis: times of day within two days, dates with times past
/// that; labels that would repeat are left out.
fn time_ticks(t0: i64, t1: i64, n: usize) -> Vec<(f64, String)> {
    let span = (t1 - t0).max(0);
    let fmt = if span <= 2 * 86_400 {
        "%H:%M"
    } else {
        "%m-%d %H:%M"
    };
    let mut out: Vec<(f64, String)> = Vec::new();
    for i in 0..n {
        let f = if n == 1 {
            0.5
        } else {
            i as f64 / (n - 1) as f64
        };
        let t = t0 + (span as f64 * f).round() as i64;
        let Some(at) = DateTime::<Utc>::from_timestamp(t, 0) else {
            continue;
        };
        let label = at.with_timezone(&chrono::Local).format(fmt).to_string();
        if !out.iter().any(|(_, l)| *l == label) {
            out.push((f, label));
        }
        if span == 0 {
            break;
        }
    }
    out
}

/// The chart of one stack's drills (oldest first).
fn chart(results: &[&DrillResult]) -> String {
    use crate::human::human_secs;
    let (w, h, left, right, top, bottom) = (760.0, 260.0, 70.0, 20.0, 24.0, 40.0);
    let t0 = results[0].started.timestamp() as f64;
    let t1 = results[results.len() - 1].started.timestamp() as f64;
    let span = (t1 - t0).max(1.0);
    let target = results.iter().rev().find_map(|r| r.rto_target_secs);
    let measured = results.iter().map(|r| r.rto_secs).fold(0.0_f64, f64::max);
    let (max_y, target_above) = y_range(measured, target);
    let x = |r: &DrillResult| {
        if results.len() == 1 {
            left + (w - left - right) / 2.0
        } else {
            left + (r.started.timestamp() as f64 - t0) / span * (w - left - right)
        }
    };
    let y = |v: f64| top + (1.0 - (v / max_y).min(1.0)) * (h - top - bottom);
    let mut s =
        format!("<svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\">\n");
    // Horizontal grid lines with their durations in human units, each label once.
    let mut said: Vec<String> = Vec::new();
    for i in 0..=4 {
        let v = max_y * i as f64 / 4.0;
        let label = human_secs(v);
        if said.contains(&label) {
            continue;
        }
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{label}</text>",
            w - right,
            left - 6.0,
            y(v) + 4.0,
            y = y(v)
        );
        said.push(label);
    }
    // Times of day along the bottom.
    let ticks = time_ticks(t0 as i64, t1 as i64, 5);
    for (f, label) in &ticks {
        let tx = left + f * (w - left - right);
        let anchor = if *f <= 0.0 && ticks.len() > 1 {
            "start"
        } else if *f >= 1.0 {
            "end"
        } else {
            "middle"
        };
        let _ = writeln!(
            s,
            "<text x=\"{tx:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"{anchor}\">{}</text>",
            h - 14.0,
            esc(label)
        );
    }
    if let Some(t) = target {
        let (ty, label) = if target_above {
            (
                top,
                format!("RTO target {} (above the chart)", human_secs(t)),
            )
        } else {
            (y(t), format!("RTO target {}", human_secs(t)))
        };
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\" stroke=\"{TARGET_LINE}\" stroke-width=\"3\" stroke-dasharray=\"10 6\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"12\" fill=\"{TARGET_LINE}\" text-anchor=\"end\">{label}</text>",
            w - right,
            w - right,
            ty - 6.0,
        );
    }
    let points: Vec<String> = results
        .iter()
        .map(|r| format!("{:.1},{:.1}", x(r), y(r.rto_secs)))
        .collect();
    let _ = writeln!(
        s,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{RTO_LINE}\" stroke-width=\"4\"/>",
        points.join(" ")
    );
    for r in results {
        let _ = writeln!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"6\" fill=\"{}\"><title>{} {}: {}</title></circle>",
            x(r),
            y(r.rto_secs),
            if r.verdict == Verdict::Pass { PASS } else { FAIL },
            r.started.format("%Y-%m-%d %H:%M"),
            esc(&r.drill),
            human_secs(r.rto_secs)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The page for every drill result, grouped by stack.
pub fn render(results: &[DrillResult], now: DateTime<Utc>) -> String {
    let mut by_stack: BTreeMap<&str, Vec<&DrillResult>> = BTreeMap::new();
    for r in results {
        by_stack.entry(&r.stack).or_default().push(r);
    }
    let mut p = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>drctl restore drills</title>\n<style>\n\
         body{font-family:system-ui,sans-serif;margin:2em;color:#1f2328;max-width:900px}\n\
         h2{margin-top:2em;border-bottom:1px solid #ddd}\n\
         table{border-collapse:collapse;width:100%;font-size:14px}\n\
         td,th{padding:4px 8px;border-bottom:1px solid #eee;text-align:left}\n\
         .PASS{color:#2da44e;font-weight:bold}.FAIL{color:#cf222e;font-weight:bold}\n\
         .reasons{color:#57606a;font-size:12px}\n</style></head><body>\n<h1>Restore drills</h1>\n",
    );
    let _ = writeln!(
        p,
        "<p>Generated {} by drctl {}; {} drill(s) over {} stack(s).</p>",
        now.format("%Y-%m-%d %H:%M UTC"),
        env!("CARGO_PKG_VERSION"),
        results.len(),
        by_stack.len()
    );
    if results.is_empty() {
        p.push_str("<p>No drill has run yet.</p>\n");
    }
    for (stack, rs) in &by_stack {
        let last = rs[rs.len() - 1];
        let verdict = |r: &DrillResult| r.verdict.as_str();
        let _ = writeln!(
            p,
            "<h2>{}</h2>\n<p>Last drill {}: <span class=\"{v}\">{v}</span>, restored in {:.1}s.</p>",
            esc(stack),
            last.started.format("%Y-%m-%d %H:%M UTC"),
            last.rto_secs,
            v = verdict(last)
        );
        p.push_str(&chart(rs));
        p.push_str("<table><tr><th>Started</th><th>Drill</th><th>Verdict</th><th>RTO</th><th>Target</th><th>Point age</th><th>RPO measured</th></tr>\n");
        for r in rs.iter().rev() {
            let _ = writeln!(
                p,
                "<tr><td>{}</td><td>{}</td><td class=\"{v}\">{v}</td><td>{:.1}s</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                r.started.format("%Y-%m-%d %H:%M"),
                esc(&r.drill),
                r.rto_secs,
                r.rto_target_secs.map_or("-".into(), |t| format!("{t:.0}s")),
                r.point_age_secs.map_or("-".into(), |a| format!("{:.0}s", a)),
                esc(&measured_rpo(r)),
                v = verdict(r)
            );
            if !r.reasons.is_empty() {
                let _ = writeln!(
                    p,
                    "<tr><td></td><td colspan=\"6\" class=\"reasons\">{}</td></tr>",
                    r.reasons
                        .iter()
                        .map(|x| esc(x))
                        .collect::<Vec<_>>()
                        .join("<br>")
                );
            }
        }
        p.push_str("</table>\n");
    }
    p.push_str("</body></html>\n");
    p
}

/// A drill to a time: how far the replay came short of it and the archive's lag.
fn measured_rpo(r: &DrillResult) -> String {
    let Some(p) = &r.pitr else {
        return "-".into();
    };
    let secs = PitrDrill::secs;
    format!(
        "{} behind {}{} (archive lag {})",
        secs(p.rpo_secs),
        p.target.format("%Y-%m-%d %H:%M:%S"),
        if p.random { ", random" } else { "" },
        secs(p.archive_lag_secs)
    )
}

#[cfg(test)]
mod chart_tests {
    use super::*;

    #[test]
    fn a_far_target_does_not_flatten_the_measurements() {
        // 20 s drills against a 45 min target: the axis ends near the measurements.
        let (top, above) = y_range(20.0, Some(2700.0));
        assert!(above && top < 30.0, "{top}");
        // A target near them is on the chart.
        let (top, above) = y_range(20.0, Some(30.0));
        assert!(!above && top >= 33.0, "{top}");
        assert_eq!(y_range(20.0, None), (23.0, false));
    }

    #[test]
    fn the_time_axis_shows_distinct_times_of_day() {
        let t0 = 1_795_000_000; // a day's drills, every few hours
        let ticks = time_ticks(t0, t0 + 6 * 3600, 5);
        assert_eq!(ticks.len(), 5);
        assert!(
            ticks.iter().all(|(_, l)| l.len() == 5 && l.contains(':')),
            "{ticks:?}"
        );
        // One second apart: one label, not five copies of it.
        assert_eq!(time_ticks(t0, t0 + 1, 5).len(), 1);
        // Weeks apart: dates come in.
        let ticks = time_ticks(t0, t0 + 21 * 86_400, 3);
        assert!(ticks.iter().all(|(_, l)| l.contains('-')), "{ticks:?}");
    }
}
