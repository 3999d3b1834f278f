//! Output helpers every command shares: stdout that tolerates a closed pipe, JSON, local
//! time, and the lines that describe a recovery point's sources.

use std::io::Write;

use crate::error::{Error, Result};
use crate::human::human_bytes;
use crate::repo::point::{SourceRecord, SourceStatus};

/// Writes to stdout; a closed pipe (`drctl ls | head`) ends output quietly.
pub(crate) fn out(text: &str) -> Result<()> {
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|_| o.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::io("writing output", e)),
        _ => Ok(()),
    }
}

/// Prints one JSON document on stdout.
pub(crate) fn print_json(v: &serde_json::Value) -> Result<()> {
    out(&format!(
        "{}\n",
        serde_json::to_string_pretty(v).expect("json serializes")
    ))
}

pub(crate) use crate::timespec::local_time;

/// One line per source of a recovery point.
pub(crate) fn source_line(r: &SourceRecord) -> String {
    match r.status {
        SourceStatus::Ok => format!(
            "    {:<12} {:<8} ok      {:>10} read, {:>10} added, {:.1}s{}\n",
            r.name,
            r.kind.name(),
            human_bytes(r.bytes),
            human_bytes(r.bytes_added),
            r.duration_ms as f64 / 1000.0,
            r.server_version
                .as_ref()
                .map(|v| format!(", server {v}"))
                .unwrap_or_default()
        ),
        SourceStatus::Failed => format!(
            "    {:<12} {:<8} FAILED  {}\n",
            r.name,
            r.kind.name(),
            r.error.as_deref().unwrap_or("unknown error")
        ),
    }
}
