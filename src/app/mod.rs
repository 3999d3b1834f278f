//! The commands: settings in, library calls, output for people or for `--json`.

mod drill;
mod unattended;

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use chrono::{DateTime, Local, Utc};
use serde_json::json;

use crate::backup::{self, BackupRequest};
use crate::catalog::Catalog;
use crate::check;
use crate::cli::{
    CatalogCommand, Cli, Command, ConfigCommand, KeyCommand, RepairCommand, ScheduleCommand,
};
use crate::config::{SourceKind, Stack};
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::human::human_bytes;
use crate::progress::Progress;
use crate::repo::keys::Keys;
use crate::repo::point::{PointEntry, SourceRecord, SourceStatus};
use crate::repo::snapshot::SnapshotEntry;
use crate::repo::tree::{Node, NodeKind};
use crate::repo::Repo;
use crate::restore::{self, RestoreRequest, TreeReader};
use crate::settings::{self, RepoSettings};
use crate::source::hold::release_orphans;
use crate::source::Target;
use crate::stack;
use crate::store::backend::BackendOptions;
use crate::store::file::FileStore;
use crate::store::s3::{self, S3Config, S3Store};
use crate::store::{Backend, Store};
use crate::timespec::parse_time;

/// Everything a command needs from outside: settings, clock, signals, runtime.
pub struct App {
    settings: RepoSettings,
    json: bool,
    quiet: bool,
    metrics_file: Option<PathBuf>,
    now: DateTime<Utc>,
    interrupt: Arc<AtomicBool>,
    rt: Arc<tokio::runtime::Runtime>,
}

/// Runs one parsed command line.
pub fn run(cli: Cli, interrupt: Arc<AtomicBool>) -> Result<()> {
    let settings = settings::resolve(&cli.global)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))?;
    let now = match &cli.global.now {
        Some(t) => parse_time(t, Utc::now())?,
        None => Utc::now(),
    };
    let app = App {
        settings,
        json: cli.global.json,
        quiet: cli.global.quiet,
        metrics_file: cli.global.metrics_file.clone(),
        now,
        interrupt,
        rt: Arc::new(rt),
    };
    // Scratch resources of a drill that a killed drctl left behind go first.
    let rt = app.rt.clone();
    for r in crate::drill::scratch::sweep(&app.settings.data_dir, || Docker::connect(rt).ok()) {
        eprintln!("note: removed {r}, left by a killed drill");
    }
    match cli.command {
        Command::Init(a) => app.init(a.compression),
        Command::Backup(a) => match a.stack {
            Some(stack) => app.backup(&stack, a.targets),
            None if a.targets.len() == 1 => {
                app.backup_stack(&a.targets[0].to_string_lossy(), &a.source)
            }
            None => Err(Error::Usage(
                "give one configured stack, or --stack NAME followed by paths".into(),
            )),
        },
        Command::Snapshots(a) => app.snapshots(a.stack.as_deref()),
        Command::Ls(a) => app.ls(&a.snapshot, a.path.as_deref()),
        Command::Restore(a) => app.restore_any(a),
        Command::Dump(a) => app.dump(&a.snapshot, &a.path),
        Command::Run(a) => match a.stack {
            Some(stack) => app.backup_stack(&stack, &a.source),
            None => app.run_due(),
        },
        Command::Daemon(a) => app.daemon(a.jobs as usize),
        Command::Schedule(ScheduleCommand::List) => app.schedule_list(),
        Command::Schedule(ScheduleCommand::Install(a)) => app.schedule_install(&a),
        Command::Status(a) => app.status(a.check),
        Command::Forget(a) => app.forget(a.stack.as_deref(), a.dry_run),
        Command::Prune(a) => app.prune(&a),
        Command::Drill(a) => app.drill(&a),
        Command::Check(a) => app.check(a.read_data.as_deref()),
        Command::Catalog(CatalogCommand::Rebuild) => app.catalog_rebuild(),
        Command::Repair(RepairCommand::Index) => app.repair_index(),
        Command::Repair(RepairCommand::Config) => app.repair_config(),
        Command::Config(ConfigCommand::Check) => app.config_check(),
        Command::Key(KeyCommand::Export(a)) => app.key_export(a.write_only, &a.output),
    }
}

/// Writes to stdout; a closed pipe (`drctl ls | head`) ends output quietly.
fn out(text: &str) -> Result<()> {
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|_| o.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::io("writing output", e)),
        _ => Ok(()),
    }
}

fn print_json(v: &serde_json::Value) -> Result<()> {
    out(&format!(
        "{}\n",
        serde_json::to_string_pretty(v).expect("json serializes")
    ))
}

fn local_time(t: &DateTime<Utc>) -> String {
    t.with_timezone(&Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

impl App {
    fn backend(&self, creating: bool) -> Result<Backend> {
        let s = &self.settings;
        let store: Arc<dyn Store> = if let Some((bucket, prefix)) = s3::parse_url(&s.url) {
            let cfg = S3Config {
                bucket,
                prefix,
                endpoint: s.endpoint.clone(),
                region: s.region.clone(),
                path_style: s.path_style,
            };
            Arc::new(
                self.rt
                    .block_on(S3Store::new(cfg))
                    .map_err(|e| Error::Store {
                        store: s.url.clone(),
                        source: e,
                    })?,
            )
        } else if s.url.starts_with("file://") || s.url.starts_with('/') {
            let root = FileStore::parse_url(&s.url)
                .ok_or_else(|| Error::Usage(format!("repository URL {} has no path", s.url)))?;
            let store = FileStore::new(root);
            if creating {
                store.create_root().map_err(|e| Error::Store {
                    store: s.url.clone(),
                    source: e,
                })?;
            }
            Arc::new(store)
        } else {
            return Err(Error::Usage(format!(
                "unsupported repository URL {}: use file:///path or s3://bucket/prefix",
                s.url
            )));
        };
        Ok(Backend::new(store, BackendOptions::default()))
    }

    /// Opens the repository and brings its catalog up to date.
    fn open(&self) -> Result<(Repo, Catalog)> {
        self.open_checked(false)
    }

    /// Opens for a command that reads snapshots or data: the identity must be there.
    fn open_for_reading(&self) -> Result<(Repo, Catalog)> {
        self.open_checked(true)
    }

    fn open_checked(&self, reading: bool) -> Result<(Repo, Catalog)> {
        let repo = Repo::open(
            self.backend(false)?,
            &self.settings.key_file,
            self.rt.clone(),
        )?;
        if reading {
            repo.identity()?;
        }
        let mut catalog = Catalog::open(
            &self.settings.catalog_path(&repo.config.id),
            &repo.config.id,
        )?;
        self.release_orphaned_containers(&catalog);
        catalog.refresh(&repo)?;
        Ok((repo, catalog))
    }

    /// Fails before anything is read, held or written when the repository cannot be
    /// written (a read-only mount): an environment error, not a failed run.
    fn writable(&self, repo: &Repo) -> Result<()> {
        self.rt.block_on(repo.objects().check_writable())
    }

    fn progress(&self, verb: &'static str) -> Progress {
        Progress::new(!self.json && !self.quiet, verb)
    }

    fn init(&self, compression: i32) -> Result<()> {
        if self.settings.key_file.exists() {
            return Err(Error::Key {
                path: self.settings.key_file.display().to_string(),
                reason: "already exists; refusing to overwrite it".into(),
            });
        }
        let repo = Repo::init(
            self.backend(true)?,
            &self.settings.key_file,
            self.rt.clone(),
            self.now,
            compression,
        )?;
        if self.json {
            return print_json(&json!({
                "repository_id": repo.config.id,
                "url": self.settings.url,
                "key_file": self.settings.key_file,
            }));
        }
        out(&format!(
            "created repository {} at {}\nkey file: {}\nkeep a copy of the key file off this host: without it nothing can be restored\n",
            &repo.config.id[..8],
            repo.objects().describe(),
            self.settings.key_file.display()
        ))
    }

    fn backup(&self, stack: &str, paths: Vec<PathBuf>) -> Result<()> {
        // The same rule as for stacks in files: the name becomes part of paths.
        crate::config::check_name("stack", stack).map_err(Error::Usage)?;
        let (repo, mut catalog) = self.open()?;
        self.writable(&repo)?;
        let progress = self.progress("backing up");
        let outcome = backup::run(
            &repo,
            &mut catalog,
            BackupRequest {
                stack: stack.to_string(),
                paths,
                hostname: hostname(),
                now: self.now,
                interrupt: self.interrupt.clone(),
                progress: &progress,
                streams: Vec::new(),
                exclude: Vec::new(),
                source: None,
            },
        )?;
        for w in &outcome.warnings {
            eprintln!("warning: {w}");
        }
        let s = &outcome.snapshot.summary;
        if self.json {
            print_json(&json!({
                "snapshot_id": outcome.id,
                "stack": outcome.snapshot.stack,
                "time": outcome.snapshot.time,
                "summary": s,
                "warnings": outcome.warnings,
            }))?;
        } else if !self.quiet {
            out(&format!(
                "snapshot {} saved: stack {}, {} files, {} dirs, {} ({} read again), {} added in {:.1}s\n",
                outcome.id.short(),
                stack,
                s.files,
                s.dirs,
                human_bytes(s.bytes),
                human_bytes(s.bytes_read),
                human_bytes(s.bytes_added),
                s.duration_ms as f64 / 1000.0
            ))?;
        }
        if !outcome.warnings.is_empty() {
            return Err(Error::Failed(format!(
                "snapshot {} saved, but {} item(s) could not be read (see warnings)",
                outcome.id.short(),
                outcome.warnings.len()
            )));
        }
        Ok(())
    }

    fn snapshots(&self, stack: Option<&str>) -> Result<()> {
        let (_repo, catalog) = self.open_for_reading()?;
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

    fn ls(&self, what: &str, path: Option<&Path>) -> Result<()> {
        let (repo, catalog) = self.open_for_reading()?;
        let snap = resolve_snapshot(&catalog, what, None)?;
        let mut trees = TreeReader::new(&repo, &catalog);
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
    fn restore(
        &self,
        repo: &Repo,
        catalog: &Catalog,
        what: &str,
        at: Option<DateTime<Utc>>,
        path: Option<PathBuf>,
        to: PathBuf,
        overwrite: bool,
    ) -> Result<()> {
        let snap = resolve_snapshot(catalog, what, at)?;
        let progress = self.progress("restoring");
        let started = std::time::Instant::now();
        let summary = restore::run(
            repo,
            catalog,
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

    fn dump(&self, what: &str, path: &Path) -> Result<()> {
        let (repo, catalog) = self.open_for_reading()?;
        let snap = resolve_snapshot(&catalog, what, None)?;
        let mut trees = TreeReader::new(&repo, &catalog);
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
        match restore::stream_file(&repo, &catalog, &node, |b| stdout.write_all(b)) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {}
            r => r?,
        }
        let _ = stdout.flush();
        Ok(())
    }

    fn check(&self, read_data: Option<&str>) -> Result<()> {
        let pct = read_data
            .map(|s| {
                s.trim_end_matches('%')
                    .parse::<f64>()
                    .ok()
                    .filter(|p| *p > 0.0 && *p <= 100.0)
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "--read-data takes a percentage in (0, 100], not {s:?}"
                        ))
                    })
            })
            .transpose()?;
        let (repo, catalog) = self.open_for_reading()?;
        let report = check::run(&repo, &catalog, pct)?;
        if self.json {
            print_json(&serde_json::to_value(&report).expect("json"))?;
        } else {
            for p in &report.problems {
                eprintln!("damage: {}", p.message);
            }
            if !self.quiet {
                let mut text = format!(
                    "checked {} index file(s), {} pack(s), {} snapshot(s), {} tree(s)",
                    report.index_files, report.packs, report.snapshots, report.trees
                );
                if pct.is_some() {
                    text.push_str(&format!(
                        "; read and verified {} pack(s)",
                        report.packs_read
                    ));
                }
                text.push('\n');
                if report.unreferenced_packs > 0 {
                    text.push_str(&format!(
                        "{} unreferenced pack(s): left by interrupted backups, not damage\n",
                        report.unreferenced_packs
                    ));
                }
                if report.problems.is_empty() {
                    text.push_str("no problems found\n");
                }
                out(&text)?;
            }
        }
        report.verdict()
    }

    fn config_check(&self) -> Result<()> {
        let dir = &self.settings.schedules_dir;
        let stacks = if dir.is_dir() {
            crate::config::load_stacks(dir)?
        } else {
            Vec::new()
        };
        let drills = crate::config::drill::load_drills(&self.settings.drills_dir, &stacks)?;
        if self.json {
            let v: Vec<_> = stacks
                .iter()
                .map(|s| {
                    json!({"stack": s.name, "file": s.file, "sources": s.def.source.len(),
                           "schedule": s.def.schedule.as_ref().map(|x| x.get_ref())})
                })
                .collect();
            let d: Vec<_> = drills
                .iter()
                .map(|d| json!({"drill": d.name, "stack": d.stack, "checks": d.checks.len(), "file": d.file}))
                .collect();
            return print_json(&json!({"schedules_dir": dir, "stacks": v,
                                      "drills_dir": self.settings.drills_dir, "drills": d}));
        }
        let mut text = String::new();
        for d in &drills {
            text.push_str(&format!(
                "drill {:<14} {:>2} check(s)   {:<16} {}\n",
                d.name,
                d.checks.len(),
                d.stack,
                d.file.display()
            ));
        }
        for s in &stacks {
            text.push_str(&format!(
                "{:<20} {:>2} source(s)  {:<16} {}\n",
                s.name,
                s.def.source.len(),
                s.def
                    .schedule
                    .as_ref()
                    .map_or("-", |x| x.get_ref().as_str()),
                s.file.display()
            ));
        }
        text.push_str(&format!(
            "configuration is valid: {} stack(s) in {}, {} drill(s) in {}\n",
            stacks.len(),
            dir.display(),
            drills.len(),
            self.settings.drills_dir.display()
        ));
        out(&text)
    }

    fn catalog_rebuild(&self) -> Result<()> {
        let repo = Repo::open(
            self.backend(false)?,
            &self.settings.key_file,
            self.rt.clone(),
        )?;
        let path = self.settings.catalog_path(&repo.config.id);
        let mut catalog =
            Catalog::open(&path, &repo.config.id)?.verify_or_replace(&repo.config.id)?;
        let stats = catalog.rebuild(&repo)?;
        if self.json {
            return print_json(
                &json!({"catalog": path, "index_files": stats.index_files, "snapshots": stats.snapshots}),
            );
        }
        out(&format!(
            "catalog {} rebuilt from {} index file(s) and {} snapshot(s)\n",
            path.display(),
            stats.index_files,
            stats.snapshots
        ))
    }

    fn repair_index(&self) -> Result<()> {
        let (repo, mut catalog) = self.open_checked(true)?;
        let report = crate::repair::index(&repo, &mut catalog)?;
        if self.json {
            return print_json(&serde_json::to_value(&report).expect("json"));
        }
        out(&report.describe())?;
        if report.damaged_packs.is_empty() {
            Ok(())
        } else {
            Err(Error::Damage(format!(
                "{} damaged pack(s) could not be indexed; run `drctl check` to see which snapshots they affect",
                report.damaged_packs.len()
            )))
        }
    }

    fn repair_config(&self) -> Result<()> {
        let repo = Repo::restore_config(
            self.backend(false)?,
            &self.settings.key_file,
            self.rt.clone(),
            self.now,
        )?;
        if self.json {
            return print_json(&json!({"repository": repo.config.id, "config": "restored"}));
        }
        out(&format!(
            "wrote the config of repository {} again from {}; run `drctl check` next\n",
            &repo.config.id[..8.min(repo.config.id.len())],
            self.settings.key_file.display()
        ))
    }

    fn key_export(&self, write_only: bool, output: &Path) -> Result<()> {
        let repo = Repo::open(
            self.backend(false)?,
            &self.settings.key_file,
            self.rt.clone(),
        )?;
        let keys: Keys = if write_only {
            repo.keys.write_only()
        } else {
            repo.keys.clone()
        };
        keys.save_new(output)?;
        if self.json {
            return print_json(&json!({"key_file": output, "write_only": write_only}));
        }
        out(&format!(
            "wrote {} key file {}\n",
            if write_only { "a write-only" } else { "a full" },
            output.display()
        ))
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

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
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

/// Stack commands: backups into recovery points, their listing, and stack restores.
impl App {
    /// The configured stacks (none when the schedules directory does not exist).
    fn stacks(&self) -> Result<Vec<Stack>> {
        let dir = &self.settings.schedules_dir;
        if dir.is_dir() {
            crate::config::load_stacks(dir)
        } else {
            Ok(Vec::new())
        }
    }

    /// Starts or unpauses containers a killed drctl left held; never fails the command.
    fn release_orphaned_containers(&self, catalog: &Catalog) {
        let rt = self.rt.clone();
        match release_orphans(|| Docker::connect(rt), catalog) {
            Ok(names) => {
                for n in names {
                    eprintln!(
                        "note: put container {n} back as it was: a drctl that held it was killed"
                    );
                }
            }
            Err(e) => eprintln!("warning: containers left held by a killed drctl: {e}"),
        }
    }

    fn backup_stack(&self, name: &str, only: &[String]) -> Result<()> {
        let stacks = self.stacks()?;
        let stack = self.find_stack(&stacks, name)?;
        let (repo, mut catalog) = self.open()?;
        self.writable(&repo)?;
        let outcome = self.run_job(&repo, &mut catalog, stack, only, self.now)?;
        self.write_metrics_file(&catalog, &stacks);
        self.report_run(outcome)
    }

    fn find_stack<'a>(&self, stacks: &'a [Stack], name: &str) -> Result<&'a Stack> {
        stacks.iter().find(|s| s.name == name).ok_or_else(|| {
            Error::Usage(format!(
                "no stack {name} in {}; to back up paths use --stack NAME PATH...",
                self.settings.schedules_dir.display()
            ))
        })
    }

    /// One run of a stack through the runner (lock, hooks, notices, history).
    fn run_job(
        &self,
        repo: &Repo,
        catalog: &mut Catalog,
        stack: &Stack,
        only: &[String],
        now: DateTime<Utc>,
    ) -> Result<crate::run::RunOutcome> {
        let host = hostname();
        let lock_dir = self.settings.data_dir.join("locks");
        let progress = |label: &str| {
            let p = self.progress("backing up");
            p.set_message(label);
            p
        };
        crate::run::run_stack(
            repo,
            catalog,
            stack,
            only,
            &crate::run::RunEnv {
                lock_dir: &lock_dir,
                hostname: &host,
                now,
                interrupt: &self.interrupt,
                progress: &progress,
            },
        )
    }

    /// Prints a run's point and warnings; its error, if any, becomes the command's.
    fn report_run(&self, outcome: crate::run::RunOutcome) -> Result<()> {
        for w in &outcome.warnings {
            eprintln!("warning: {w}");
        }
        if let Some(b) = &outcome.backup {
            let p = &b.point;
            if self.json {
                print_json(&json!({"point_id": b.id, "complete": p.complete(), "point": p}))?;
            } else if !self.quiet {
                let mut text = format!(
                    "recovery point {} of stack {} ({}): {}\n",
                    b.id.short(),
                    p.stack,
                    local_time(&p.time),
                    if p.complete() {
                        "complete"
                    } else {
                        "INCOMPLETE"
                    }
                );
                for r in &p.sources {
                    text.push_str(&source_line(r));
                }
                out(&text)?;
            }
            let mut failures = b.failures.clone();
            failures.pop();
            for f in failures {
                eprintln!("error: {f}");
            }
        }
        if let Some(e) = outcome.error {
            return Err(e);
        }
        let unreadable = outcome.backup.as_ref().map_or(0, |b| b.warnings.len());
        if unreadable > 0 {
            return Err(Error::Failed(format!(
                "recovery point {} saved, but {unreadable} item(s) could not be read (see warnings)",
                outcome.backup.as_ref().map(|b| b.id.short()).unwrap_or_default()
            )));
        }
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

    fn restore_any(&self, a: crate::cli::RestoreArgs) -> Result<()> {
        let at =
            a.at.as_deref()
                .map(|s| parse_time(s, self.now))
                .transpose()?;
        let (repo, catalog) = self.open_for_reading()?;
        let points = catalog.points(&a.what)?;
        if points.is_empty() {
            if !a.source.is_empty() || a.into_container.is_some() || a.dry_run || a.force {
                return Err(Error::Usage(format!(
                    "stack {} has no recovery points; --source, --into-container, --dry-run and --force apply to stacks",
                    a.what
                )));
            }
            let to =
                a.to.ok_or_else(|| Error::Usage("restoring a snapshot needs --to DIR".into()))?;
            return self.restore(&repo, &catalog, &a.what, at, a.path, to, a.overwrite);
        }
        self.restore_stack(&repo, &catalog, &a.what, &points, at, &a)
    }

    fn restore_stack(
        &self,
        repo: &Repo,
        catalog: &Catalog,
        name: &str,
        points: &[PointEntry],
        at: Option<DateTime<Utc>>,
        a: &crate::cli::RestoreArgs,
    ) -> Result<()> {
        // The configuration is optional: a point holds all a restore needs, and after a
        // disaster the schedules may not be back yet. It adds credentials files.
        let stacks = self.stacks().unwrap_or_default();
        let config = stacks.iter().find(|s| s.name == name);
        let mut names = stack::known_sources(points, config);
        if !a.source.is_empty() {
            for s in &a.source {
                if !names.contains(s) {
                    return Err(Error::Usage(format!("stack {name} has no source {s}")));
                }
            }
            names.retain(|n| a.source.contains(n));
        }
        let picked = stack::plan(points, &names, at);
        let when = at
            .map(|t| format!(" at or before {}", local_time(&t)))
            .unwrap_or_default();
        let missing: Vec<&str> = picked
            .iter()
            .filter(|(_, f)| f.is_none())
            .map(|(n, _)| n.as_str())
            .collect();
        if !missing.is_empty() && !a.source.is_empty() || missing.len() == picked.len() {
            return Err(Error::Usage(format!(
                "stack {name} has no complete backup of source(s) {}{when}",
                missing.join(", ")
            )));
        }
        let several_db = picked
            .iter()
            .filter(|(_, f)| {
                f.as_ref()
                    .is_some_and(|(_, r)| r.kind != SourceKind::Volume)
            })
            .count();
        if a.into_container.is_some() && several_db != 1 {
            return Err(Error::Usage(
                "--into-container needs exactly one database source: choose it with --source"
                    .into(),
            ));
        }
        let mut steps = Vec::new();
        for (source, found) in picked {
            let Some((point, rec)) = found else {
                eprintln!("warning: source {source} has no complete backup{when}; skipped");
                continue;
            };
            let snap_id = rec.snapshot.expect("ok records have a snapshot");
            let snapshot = catalog
                .snapshots(Some(name))?
                .into_iter()
                .find(|s| s.id == snap_id)
                .ok_or_else(|| {
                    Error::Damage(format!(
                        "snapshot {} of source {source} (recovery point {}) is missing",
                        snap_id.short(),
                        point.id.short()
                    ))
                })?;
            let def =
                config.and_then(|c| c.def.source.iter().find(|d| d.name.get_ref() == &source));
            let container = match (&a.into_container, rec.kind) {
                (_, SourceKind::Volume) => String::new(),
                (Some(c), _) => c.clone(),
                (None, _) => def
                    .and_then(|d| d.container.as_ref().map(|c| c.get_ref().clone()))
                    .or_else(|| rec.container.clone())
                    .unwrap_or_default(),
            };
            let dir = match rec.kind {
                SourceKind::Volume => a.to.as_ref().map(|t| {
                    if several_volumes(points) {
                        t.join(&source)
                    } else {
                        t.clone()
                    }
                }),
                _ => a.to.as_ref().map(|t| t.join(&source)),
            };
            steps.push(stack::Step {
                rec,
                point,
                snapshot,
                target: Target {
                    container,
                    dir,
                    force: a.force,
                    def,
                },
            });
        }
        // A volume restored elsewhere (`--to`) needs no Docker: its containers are not
        // touched and its mount point is not looked up.
        let needs_docker = steps.iter().any(|s| {
            if s.rec.kind != SourceKind::Volume {
                return s.target.dir.is_none();
            }
            stack::in_place(&s.rec, &s.target)
                && (!s.rec.stop.is_empty() || !s.rec.pause.is_empty() || s.rec.volume.is_some())
        });
        let docker = if needs_docker {
            Some(Docker::connect(self.rt.clone())?)
        } else {
            None
        };
        let checks = stack::check_targets(docker.as_ref(), &steps, a.dry_run)?;
        if !self.json && !self.quiet || a.dry_run {
            let mut text = format!("restore plan for stack {name}{when}:\n");
            for (s, c) in steps.iter().zip(&checks) {
                let line = &c.line;
                text.push_str(&format!(
                    "  {:<12} {:<8} from {} (point {}, snapshot {})\n      {}\n",
                    s.rec.name,
                    kind_name(s.rec.kind),
                    local_time(&s.point.point.time),
                    s.point.id.short(),
                    s.snapshot.id.short(),
                    line.split_once(": ").map_or(line.as_str(), |x| x.1)
                ));
                if let Some(why) = &c.needs_force {
                    text.push_str(&format!("      NEEDS --force: {why}\n"));
                }
            }
            if a.dry_run {
                let forced = checks.iter().filter(|c| c.needs_force.is_some()).count();
                if forced > 0 {
                    text.push_str(&format!(
                        "{forced} source(s) would need --force: without it, this restore is refused\n"
                    ));
                }
                text.push_str("dry run: nothing was changed\n");
            }
            if self.json {
                eprint!("{text}");
            } else {
                out(&text)?;
            }
        }
        if a.dry_run {
            if self.json {
                let v: Vec<_> = steps
                    .iter()
                    .zip(&checks)
                    .map(|(s, c)| {
                        json!({
                    "source": s.rec.name, "point_id": s.point.id, "time": s.point.point.time,
                    "snapshot_id": s.snapshot.id, "plan": c.line,
                    "needs_force": c.needs_force.is_some(), "needs_force_reason": c.needs_force})
                    })
                    .collect();
                print_json(&json!({"stack": name, "dry_run": true, "sources": v}))?;
            }
            return Ok(());
        }
        let mut done = Vec::new();
        for s in &steps {
            let progress = self.progress("restoring");
            progress.set_message(&format!("{name} {}", s.rec.name));
            let r = stack::restore_step(
                repo,
                catalog,
                docker.as_ref(),
                s,
                &self.interrupt,
                &progress,
            )
            .map_err(|e| e.context(format!("stack {name}, source {}", s.rec.name)))?;
            for w in &r.warnings {
                eprintln!("warning: source {}: {w}", s.rec.name);
            }
            if !self.json && !self.quiet {
                out(&format!(
                    "restored {} from {}: {} in {:.1}s\n",
                    s.rec.name,
                    local_time(&s.point.point.time),
                    human_bytes(r.bytes),
                    r.seconds
                ))?;
            }
            done.push((s, r));
        }
        if self.json {
            let v: Vec<_> = done
                .iter()
                .map(|(s, r)| {
                    json!({
                "source": r.name, "point_id": s.point.id, "time": s.point.point.time,
                "bytes": r.bytes, "seconds": r.seconds, "warnings": r.warnings})
                })
                .collect();
            return print_json(&json!({"stack": name, "restored": v}));
        }
        if !self.quiet {
            out(&format!(
                "stack {name}: {} source(s) restored\n",
                done.len()
            ))?;
        }
        Ok(())
    }
}

/// Whether restores of volume sources under `--to` each need a subdirectory.
fn several_volumes(points: &[PointEntry]) -> bool {
    let mut names: Vec<&str> = points
        .iter()
        .flat_map(|p| p.point.sources.iter())
        .filter(|s| s.kind == SourceKind::Volume)
        .map(|s| s.name.as_str())
        .collect();
    names.sort();
    names.dedup();
    names.len() > 1
}

fn kind_name(k: SourceKind) -> &'static str {
    match k {
        SourceKind::Postgres => "postgres",
        SourceKind::Mysql => "mysql",
        SourceKind::Redis => "redis",
        SourceKind::Volume => "volume",
    }
}

/// One line per source of a recovery point.
fn source_line(r: &SourceRecord) -> String {
    match r.status {
        SourceStatus::Ok => format!(
            "    {:<12} {:<8} ok      {:>10} read, {:>10} added, {:.1}s{}\n",
            r.name,
            kind_name(r.kind),
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
            kind_name(r.kind),
            r.error.as_deref().unwrap_or("unknown error")
        ),
    }
}
