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

/// The chart of one stack's drills (oldest first).
fn chart(results: &[&DrillResult]) -> String {
    let (w, h, left, right, top, bottom) = (760.0, 260.0, 60.0, 20.0, 20.0, 40.0);
    let t0 = results[0].started.timestamp() as f64;
    let t1 = results[results.len() - 1].started.timestamp() as f64;
    let span = (t1 - t0).max(1.0);
    let target = results.iter().rev().find_map(|r| r.rto_target_secs);
    let max_y = results
        .iter()
        .map(|r| r.rto_secs)
        .chain(target)
        .fold(1.0_f64, f64::max)
        * 1.15;
    let x = |r: &DrillResult| {
        if results.len() == 1 {
            left + (w - left - right) / 2.0
        } else {
            left + (r.started.timestamp() as f64 - t0) / span * (w - left - right)
        }
    };
    let y = |v: f64| top + (1.0 - v / max_y) * (h - top - bottom);
    let mut s =
        format!("<svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\">\n");
    // Axes and a few horizontal grid lines with their values.
    for i in 0..=4 {
        let v = max_y * i as f64 / 4.0;
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{v:.0}s</text>",
            w - right,
            left - 6.0,
            y(v) + 4.0,
            y = y(v)
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{left}\" y=\"{}\" font-size=\"11\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
        h - 12.0,
        results[0].started.format("%Y-%m-%d"),
        w - right,
        h - 12.0,
        results[results.len() - 1].started.format("%Y-%m-%d")
    );
    if let Some(t) = target {
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{TARGET_LINE}\" stroke-width=\"3\" stroke-dasharray=\"10 6\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"12\" fill=\"{TARGET_LINE}\" text-anchor=\"end\">RTO target {t:.0}s</text>",
            w - right,
            w - right,
            y(t) - 6.0,
            y = y(t)
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
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"6\" fill=\"{}\"><title>{} {}: {:.1}s</title></circle>",
            x(r),
            y(r.rto_secs),
            if r.verdict == Verdict::Pass { PASS } else { FAIL },
            r.started.format("%Y-%m-%d %H:%M"),
            esc(&r.drill),
            r.rto_secs
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
