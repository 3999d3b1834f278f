//! The Prometheus text format (version 0.0.4): families of gauges with labels.

use chrono::{DateTime, Utc};

/// A label value in the text format: backslash, double quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// One metric family being written.
pub(super) struct Family<'a> {
    out: &'a mut String,
    name: &'a str,
}

impl Family<'_> {
    pub(super) fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        let name = self.name;
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
            .collect();
        if labels.is_empty() {
            self.out.push_str(&format!("{name} {value}\n"));
        } else {
            self.out
                .push_str(&format!("{name}{{{}}} {value}\n", labels.join(",")));
        }
    }
}

pub(super) fn family<'a>(out: &'a mut String, name: &'a str, help: &str) -> Family<'a> {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
    Family { out, name }
}

/// Seconds since the epoch, with milliseconds, as Prometheus timestamps are given.
pub(super) fn timestamp_secs(t: &DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}
