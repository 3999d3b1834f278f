//! JUnit XML for a drill run: one test suite per drill, a test case per check plus one
//! for the RTO and one for the RPO, so any CI shows drill results natively.

use std::fmt::Write;

use super::{DrillResult, PitrDrill};

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

struct Case {
    name: String,
    seconds: f64,
    failure: Option<String>,
    skipped: Option<String>,
}

fn cases(r: &DrillResult) -> Vec<Case> {
    let mut out: Vec<Case> = r
        .checks
        .iter()
        .map(|c| Case {
            name: c.name.clone(),
            seconds: c.seconds,
            failure: (!c.passed).then(|| c.error.clone().unwrap_or_default()),
            skipped: None,
        })
        .collect();
    let target = |reason_prefix: &str, name: &str, measured: Option<f64>, target: Option<f64>| {
        let failure = r
            .reasons
            .iter()
            .find(|x| x.starts_with(reason_prefix))
            .cloned();
        Case {
            name: format!(
                "{name} {} (target {})",
                measured.map_or("-".into(), |m| format!("{m:.1}s")),
                target.map_or("none".into(), |t| format!("{t:.0}s"))
            ),
            seconds: 0.0,
            failure,
            skipped: target.is_none().then(|| format!("no {name} target")),
        }
    };
    out.push(target(
        "RTO missed",
        "RTO",
        Some(r.rto_secs),
        r.rto_target_secs,
    ));
    let mut rpo = target("RPO missed", "RPO", r.point_age_secs, r.rpo_target_secs);
    if let Some(p) = &r.pitr {
        // To a time: how close the replay came to it, and what the archive risked.
        let secs = PitrDrill::secs;
        rpo.name = format!(
            "RPO {} behind {}, archive lag {} (target {})",
            secs(p.rpo_secs),
            p.target.format("%Y-%m-%dT%H:%M:%SZ"),
            secs(p.archive_lag_secs),
            r.rpo_target_secs
                .map_or("none".into(), |t| format!("{t:.0}s"))
        );
    }
    out.push(rpo);
    // Restores that failed are failures too, even with no check on the source.
    for s in r.sources.iter().filter(|s| s.error.is_some()) {
        out.push(Case {
            name: format!("{}: restore", s.name),
            seconds: s.seconds,
            failure: s.error.clone(),
            skipped: None,
        });
    }
    out
}

/// A suite's properties: the stack, the verdict and the measured figures.
fn properties(r: &DrillResult) -> String {
    let mut props = vec![
        ("stack", r.stack.clone()),
        ("verdict", r.verdict.as_str().into()),
        ("rto_seconds", format!("{:.3}", r.rto_secs)),
    ];
    if let Some(p) = &r.pitr {
        props.push(("target_time", p.target.to_rfc3339()));
        props.push(("target_random", p.random.to_string()));
        let mut secs = |name, v: Option<f64>| {
            if let Some(v) = v {
                props.push((name, format!("{v:.3}")));
            }
        };
        secs("rpo_measured_seconds", p.rpo_secs);
        secs("archive_lag_seconds", p.archive_lag_secs);
    }
    props
        .iter()
        .map(|(k, v)| format!("<property name=\"{k}\" value=\"{}\"/>", escape(v)))
        .collect()
}

/// The XML document for a set of drill results.
pub fn render(results: &[DrillResult]) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let all: Vec<(&DrillResult, Vec<Case>)> = results.iter().map(|r| (r, cases(r))).collect();
    let count = |f: &dyn Fn(&Case) -> bool| -> usize {
        all.iter()
            .map(|(_, c)| c.iter().filter(|c| f(c)).count())
            .sum()
    };
    let _ = writeln!(
        x,
        "<testsuites name=\"drctl drills\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">",
        count(&|_| true),
        count(&|c| c.failure.is_some()),
        count(&|c| c.skipped.is_some())
    );
    for (r, cs) in &all {
        let _ = writeln!(
            x,
            "  <testsuite name=\"drill {}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\" timestamp=\"{}\" hostname=\"{}\">",
            escape(&r.drill),
            cs.len(),
            cs.iter().filter(|c| c.failure.is_some()).count(),
            cs.iter().filter(|c| c.skipped.is_some()).count(),
            r.rto_secs,
            r.started.format("%Y-%m-%dT%H:%M:%S"),
            escape(&r.hostname)
        );
        let _ = writeln!(x, "    <properties>{}</properties>", properties(r));
        for c in cs {
            let _ = write!(
                x,
                "    <testcase classname=\"drctl.drill.{}\" name=\"{}\" time=\"{:.3}\"",
                escape(&r.drill),
                escape(&c.name),
                c.seconds
            );
            match (&c.failure, &c.skipped) {
                (Some(f), _) => {
                    let _ = writeln!(
                        x,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        escape(f),
                        escape(f)
                    );
                }
                (None, Some(s)) => {
                    let _ = writeln!(
                        x,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        escape(s)
                    );
                }
                (None, None) => x.push_str("/>\n"),
            }
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}
