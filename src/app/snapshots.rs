//! Snapshot commands: `snapshots`, `ls`, `dump` and the restore of one snapshot.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::json;

use super::output::{local_time, out, print_json, source_line};
use super::App;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::human::human_bytes;
use crate::repo::point::PointEntry;
use crate::repo::snapshot::SnapshotEntry;
use crate::repo::tree::{Node, NodeKind};
use crate::restore::{self, RestoreRequest, TreeReader};
use crate::session::{Readable, Session};

impl App {
    pub(super) fn snapshots(&self, stack: Option<&str>) -> Result<()> {
        let session = self.open_for_reading()?;
        let catalog = session.catalog();
        if let Some(name) = stack {
            let points = catalog.points(name)?;
            if !points.is_empty() {
                return self.print_points(name, &points);
            }
        }
        let mut list = catalog.snapshots(stack)?;
        if stack.is_some() {
            // A stack's source snapshots count only through a recovery point; one no point
            // names is what an interrupted stack backup left (see `forget`).
            list.retain(|e| e.snapshot.source.is_none());
        }
        if self.json {
            return print_json(&serde_json::to_value(&list).expect("json"));
        }
        let mut text = format!(
            "{:<8}  {:<19}  {:<16}  {:>10}  {:>10}  {}\n",
            "ID", "Time", "Stack", "Size", "Added", "Paths"
        );
        for e in &list {
            let s = &e.snapshot;
            text.push_str(&format!(
                "{:<8}  {:<19}  {:<16}  {:>10}  {:>10}  {}\n",
                e.id.short(),
                local_time(&s.time),
                s.stack,
                human_bytes(s.summary.bytes),
                human_bytes(s.summary.bytes_added),
                s.paths.join(" ")
            ));
        }
        text.push_str(&format!("{} snapshot(s)\n", list.len()));
        out(&text)
    }

    pub(super) fn ls(&self, what: &str, path: Option<&Path>) -> Result<()> {
        let session = self.open_for_reading()?;
        let (repo, catalog) = (session.repo(), session.catalog());
        let snap = resolve_snapshot(catalog, what, None)?;
        let mut trees = TreeReader::new(repo, catalog);
        let mut rows: Vec<(PathBuf, Node)> = Vec::new();
        let (start, prefix) = match path {
            None => (Some(snap.snapshot.tree), PathBuf::from("/")),
            Some(p) => {
                let (comps, node) = trees.find(&snap.snapshot.tree, p)?.ok_or_else(|| {
                    Error::Usage(format!(
                        "path {} is not in snapshot {}",
                        p.display(),
                        snap.id.short()
                    ))
                })?;
                let full: PathBuf = std::iter::once(std::ffi::OsString::from("/"))
                    .chain(comps)
                    .collect();
                let sub = node.subtree;
                rows.push((full.clone(), node));
                (sub, full)
            }
        };
        if let Some(t) = start {
            list_tree(&mut trees, t, &prefix, &mut rows)?;
        }
        if self.json {
            let v: Vec<_> = rows
                .iter()
                .map(|(p, n)| {
                    json!({"path": p.to_string_lossy(), "type": n.kind, "mode": n.mode, "uid": n.uid, "gid": n.gid,
                           "size": n.size, "mtime": mtime_utc(n), "target": n.target})
                })
                .collect();
            return print_json(&serde_json::Value::Array(v));
        }
        let mut text = String::new();
        for (p, n) in rows {
            let link = n
                .os_target()
                .map(|t| format!(" -> {}", shell_quote(t.as_bytes())))
                .unwrap_or_default();
            text.push_str(&format!(
                "{} {:>5}/{:<5} {:>10}  {}  {}{link}\n",
                mode_string(&n),
                n.uid,
                n.gid,
                n.size,
                local_time(&mtime_utc(&n)),
                shell_quote(p.as_os_str().as_bytes())
            ));
        }
        out(&text)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn restore(
        &self,
        session: &Session<Readable>,
        what: &str,
        at: Option<DateTime<Utc>>,
        path: Option<PathBuf>,
        to: PathBuf,
        overwrite: bool,
    ) -> Result<()> {
        let snap = resolve_snapshot(session.catalog(), what, at)?;
        let progress = self.progress("restoring");
        let started = std::time::Instant::now();
        let summary = restore::run(
            session,
            RestoreRequest {
                snapshot: &snap,
                subpath: path,
                target: to.clone(),
                contents_only: false,
                overwrite,
                interrupt: self.interrupt.clone(),
                progress: &progress,
            },
        )?;
        for w in &summary.warnings {
            eprintln!("warning: {w}");
        }
        if self.json {
            return print_json(&json!({
                "snapshot_id": snap.id, "stack": snap.snapshot.stack, "time": snap.snapshot.time,
                "target": to, "summary": summary,
            }));
        }
        if !self.quiet {
            out(&format!(
                "restored snapshot {} (stack {}, {}) to {}: {} files, {} dirs, {} in {:.1}s\n",
                snap.id.short(),
                snap.snapshot.stack,
                local_time(&snap.snapshot.time),
                to.display(),
                summary.files,
                summary.dirs,
                human_bytes(summary.bytes),
                started.elapsed().as_secs_f64()
            ))?;
        }
        Ok(())
    }

    pub(super) fn dump(&self, what: &str, path: &Path) -> Result<()> {
        let session = self.open_for_reading()?;
        let (repo, catalog) = (session.repo(), session.catalog());
        let snap = resolve_snapshot(catalog, what, None)?;
        let mut trees = TreeReader::new(repo, catalog);
        let (_, node) = trees.find(&snap.snapshot.tree, path)?.ok_or_else(|| {
            Error::Usage(format!(
                "path {} is not in snapshot {}",
                path.display(),
                snap.id.short()
            ))
        })?;
        if node.kind != NodeKind::File {
            return Err(Error::Usage(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        let mut stdout = std::io::stdout().lock();
        match restore::stream_file(repo, catalog, &node, |b| stdout.write_all(b)) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {}
            r => r?,
        }
        let _ = stdout.flush();
        Ok(())
    }

    fn print_points(&self, stack: &str, points: &[PointEntry]) -> Result<()> {
        if self.json {
            return print_json(&serde_json::to_value(points).expect("json"));
        }
        let mut text = String::new();
        for e in points {
            let p = &e.point;
            text.push_str(&format!(
                "{}  {}  {}  {} source(s), {:.1}s\n",
                e.id.short(),
                local_time(&p.time),
                if p.complete() {
                    "complete  "
                } else {
                    "INCOMPLETE"
                },
                p.sources.len(),
                p.duration_ms as f64 / 1000.0
            ));
            for r in &p.sources {
                text.push_str(&source_line(r));
            }
        }
        text.push_str(&format!(
            "{} recovery point(s) of stack {stack}\n",
            points.len()
        ));
        out(&text)
    }
}

/// Every node below tree `id`, depth first in name order, with a stack of its own: a tree
/// may be thousands of levels deep.
fn list_tree(
    trees: &mut TreeReader<'_>,
    id: crate::repo::id::BlobId,
    prefix: &Path,
    rows: &mut Vec<(PathBuf, Node)>,
) -> Result<()> {
    let mut stack = vec![(prefix.to_path_buf(), trees.tree(&id)?.nodes.into_iter())];
    while let Some((dir, nodes)) = stack.last_mut() {
        let Some(n) = nodes.next() else {
            stack.pop();
            continue;
        };
        let p = dir.join(n.os_name());
        let sub = n.subtree;
        rows.push((p.clone(), n));
        if let Some(s) = sub {
            stack.push((p, trees.tree(&s)?.nodes.into_iter()));
        }
    }
    Ok(())
}

/// A file name as GNU `ls` shows it (`--quoting-style=shell-escape`): as is when it is
/// plain, in single quotes when the shell would read it otherwise, and as `$'...'` with
/// escapes when it holds control characters or bytes that are not UTF-8, so a name can
/// never move the cursor, recolour the terminal or fake a line of its own.
pub fn shell_quote(name: &[u8]) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"/._-+,:@%=^".contains(&b);
    if !name.is_empty() && name.iter().all(|&b| plain(b)) {
        return String::from_utf8_lossy(name).into_owned();
    }
    let text = std::str::from_utf8(name).ok();
    match text {
        Some(t) if !t.chars().any(char::is_control) => {
            format!("'{}'", t.replace('\'', "'\\''"))
        }
        _ => {
            let mut out = String::from("$'");
            let mut rest = name;
            while !rest.is_empty() {
                let (valid, bad) = match std::str::from_utf8(rest) {
                    Ok(v) => (v, &rest[rest.len()..]),
                    Err(e) => {
                        let (v, b) = rest.split_at(e.valid_up_to());
                        (std::str::from_utf8(v).expect("valid prefix"), b)
                    }
                };
                for c in valid.chars() {
                    match c {
                        '\n' => out.push_str("\\n"),
                        '\t' => out.push_str("\\t"),
                        '\r' => out.push_str("\\r"),
                        '\\' => out.push_str("\\\\"),
                        '\'' => out.push_str("\\'"),
                        c if c.is_control() => {
                            let mut buf = [0u8; 4];
                            for b in c.encode_utf8(&mut buf).bytes() {
                                out.push_str(&format!("\\{b:03o}"));
                            }
                        }
                        c => out.push(c),
                    }
                }
                // One byte that is not UTF-8, then the rest again.
                if let Some((&b, tail)) = bad.split_first() {
                    out.push_str(&format!("\\{b:03o}"));
                    rest = tail;
                } else {
                    rest = bad;
                }
            }
            out.push('\'');
            out
        }
    }
}

fn mtime_utc(n: &Node) -> DateTime<Utc> {
    DateTime::from_timestamp(
        n.mtime_ns.div_euclid(1_000_000_000),
        n.mtime_ns.rem_euclid(1_000_000_000) as u32,
    )
    .unwrap_or_default()
}

fn mode_string(n: &Node) -> String {
    let t = match n.kind {
        NodeKind::Dir => 'd',
        NodeKind::Symlink => 'l',
        NodeKind::Fifo => 'p',
        NodeKind::CharDevice => 'c',
        NodeKind::BlockDevice => 'b',
        NodeKind::Socket => 's',
        NodeKind::File => '-',
    };
    let mut s = String::from(t);
    for shift in [6, 3, 0] {
        let b = (n.mode >> shift) & 7;
        s.push(if b & 4 != 0 { 'r' } else { '-' });
        s.push(if b & 2 != 0 { 'w' } else { '-' });
        s.push(if b & 1 != 0 { 'x' } else { '-' });
    }
    s
}

/// Picks a snapshot: `latest`, a stack's newest (at or before `at`), or an ID prefix.
pub fn resolve_snapshot(
    catalog: &Catalog,
    what: &str,
    at: Option<DateTime<Utc>>,
) -> Result<SnapshotEntry> {
    let all = catalog.snapshots(None)?;
    let before = |s: &&SnapshotEntry| at.is_none_or(|t| s.snapshot.time <= t);
    let when = at
        .map(|t| format!(" at or before {}", local_time(&t)))
        .unwrap_or_default();
    if what == "latest" {
        return all
            .iter()
            .rfind(before)
            .cloned()
            .ok_or_else(|| Error::Usage(format!("no snapshot{when}")));
    }
    if all.iter().any(|s| s.snapshot.stack == what) {
        // A source snapshot counts only through a recovery point that names it: one that
        // none names was left by an interrupted stack backup.
        let in_points: std::collections::HashSet<_> = catalog
            .points(what)?
            .iter()
            .flat_map(|p| p.point.sources.iter().filter_map(|r| r.snapshot))
            .collect();
        return all
            .iter()
            .filter(|s| s.snapshot.stack == what)
            .filter(|s| s.snapshot.source.is_none() || in_points.contains(&s.id))
            .rfind(before)
            .cloned()
            .ok_or_else(|| Error::Usage(format!("stack {what} has no snapshot{when}")));
    }
    let matches: Vec<_> = if what.len() >= 4 && what.chars().all(|c| c.is_ascii_hexdigit()) {
        all.iter()
            .filter(|s| s.id.to_hex().starts_with(&what.to_ascii_lowercase()))
            .collect()
    } else {
        Vec::new()
    };
    match matches.len() {
        1 => Ok(matches[0].clone()),
        0 => Err(Error::Usage(format!("no stack or snapshot named {what}"))),
        n => Err(Error::Usage(format!(
            "snapshot ID {what} is ambiguous ({n} match)"
        ))),
    }
}
