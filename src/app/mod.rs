//! The commands: settings in, library calls, output for people or for `--json`.

mod archive;
mod config_live;
mod copy;
mod discover;
mod drill;
mod output;
mod recover;
mod restore;
mod snapshots;
mod status;
mod unattended;
mod watch;

pub(crate) use output::{local_time, out, print_json, source_line};
pub use snapshots::{resolve_snapshot, shell_quote};

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::backup::{self, BackupRequest};
use crate::catalog::Catalog;
use crate::check;
use crate::cli::{
    CatalogCommand, Cli, Command, ConfigCommand, KeyCommand, RepairCommand, ScheduleCommand,
};
use crate::config::Stack;
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::human::human_bytes;
use crate::progress::Progress;
use crate::repo::keys::Keys;
use crate::repo::Repo;
use crate::session::{Readable, Session, WriteOnly};
use crate::settings::{self, Location, RepoSettings};
use crate::source::hold::release_orphans;
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
    for r in crate::drill::scratch::sweep(&app.settings.state_dir, || Docker::connect(rt).ok()) {
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
        Command::Archive(a) => app.archive(&a),
        Command::Schedule(ScheduleCommand::List) => app.schedule_list(),
        Command::Schedule(ScheduleCommand::Install(a)) => app.schedule_install(&a),
        Command::Status(a) => app.status(&a.stacks, a.check),
        Command::Forget(a) => app.forget(a.stack.as_deref(), a.dry_run),
        Command::Prune(a) => app.prune(&a),
        Command::Drill(a) => app.drill(&a),
        Command::Check(a) => app.check(a.read_data.as_deref()),
        Command::Copy(a) => app.copy(&a),
        Command::Discover(a) => app.discover(&a),
        Command::Recover(a) => app.recover(&a),
        Command::Catalog(CatalogCommand::Rebuild) => app.catalog_rebuild(),
        Command::Repair(RepairCommand::Index) => app.repair_index(),
        Command::Repair(RepairCommand::Config) => app.repair_config(),
        Command::Config(ConfigCommand::Check(a)) => app.config_check(a.live),
        Command::Key(KeyCommand::Export(a)) => app.key_export(a.write_only, &a.output),
    }
}

impl App {
    fn backend(&self, creating: bool) -> Result<Backend> {
        self.backend_at(&self.settings.location(), creating)
    }

    /// The store at `s`, created when `creating` (a local directory).
    fn backend_at(&self, s: &Location, creating: bool) -> Result<Backend> {
        let store: Arc<dyn Store> = if let Some((bucket, prefix)) = s3::parse_url(&s.url) {
            let cfg = S3Config {
                bucket,
                prefix,
                endpoint: s.endpoint.clone(),
                region: s.region.clone(),
                path_style: s.path_style,
                profile: s.profile.clone(),
            };
            let store_error = |e| Error::Store {
                store: s.url.clone(),
                source: e,
            };
            let mut store = self.rt.block_on(S3Store::new(cfg)).map_err(store_error)?;
            if let Some(r) = s.object_lock {
                if !self
                    .rt
                    .block_on(store.object_lock_enabled())
                    .map_err(store_error)?
                {
                    return Err(Error::Usage(format!(
                        "{} has no Object Lock, so its objects cannot be locked: create a \
                         bucket with Object Lock enabled (S3 turns it on only at creation), \
                         or copy without object_lock",
                        s.url
                    )));
                }
                store = store.with_retention(r);
            }
            Arc::new(store)
        } else if s.object_lock.is_some() {
            return Err(Error::Usage(format!(
                "{} is not an S3 bucket: Object Lock needs one",
                s.url
            )));
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

    /// Opens the repository and brings its catalog up to date; enough to back up and to
    /// record points and drill results, even with a write-only key.
    fn open(&self) -> Result<Session<WriteOnly>> {
        self.session(self.open_repo()?)
    }

    /// Opens for a command that reads snapshots or data: a write-only key is refused
    /// before the catalog is touched.
    fn open_for_reading(&self) -> Result<Session<Readable>> {
        let repo = self.open_repo()?;
        repo.identity()?;
        self.session(repo)?.readable()
    }

    fn open_repo(&self) -> Result<Repo> {
        Repo::open(
            self.backend(false)?,
            &self.settings.key_file,
            self.rt.clone(),
        )
    }

    fn session(&self, repo: Repo) -> Result<Session<WriteOnly>> {
        let catalog = Catalog::open(
            &self.settings.catalog_path(&repo.config.id),
            &repo.config.id,
        )?;
        self.release_orphaned_containers(&catalog);
        Session::open(repo, catalog)
    }

    /// Fails before anything is read, held or written when the repository cannot be
    /// written (a read-only mount): an environment error, not a failed run.
    fn writable(&self, repo: &Repo) -> Result<()> {
        self.rt.block_on(repo.objects().check_writable())
    }

    fn progress(&self, verb: &'static str) -> Progress {
        Progress::new(!self.json && !self.quiet, verb)
    }

    /// Says each step of a long command on stderr with the seconds since this was made
    /// (where a recovery's minutes go); silent under `--quiet` or `--json`.
    fn step_printer(&self) -> impl Fn(&str) + Sync {
        let quiet = self.quiet || self.json;
        let t0 = std::time::Instant::now();
        move |line: &str| {
            if !quiet {
                eprintln!("[{:>6.1}s] {line}", t0.elapsed().as_secs_f64());
            }
        }
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
        let mut session = self.open()?;
        self.writable(session.repo())?;
        let progress = self.progress("backing up");
        let outcome = backup::run(
            &mut session,
            BackupRequest {
                stack: stack.to_string(),
                paths,
                hostname: hostname(),
                now: self.now,
                interrupt: self.interrupt.clone(),
                progress: &progress,
                streams: Vec::new(),
                exclude: Vec::new(),
                wal: None,
                log_prefix: Vec::new(),
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
        let session = self.open_for_reading()?;
        let report = check::run(&session, pct)?;
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

    fn config_check(&self, live: bool) -> Result<()> {
        let dir = &self.settings.schedules_dir;
        let stacks = if dir.is_dir() {
            crate::config::load_stacks(dir)?
        } else {
            Vec::new()
        };
        let drills = crate::config::drill::load_drills(&self.settings.drills_dir, &stacks)?;
        crate::recover::check_dependencies(&stacks)?;
        if live {
            self.config_live(&stacks)?;
        }
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
        let repo = self.open_repo()?;
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
        let mut session = self.open_for_reading()?;
        let report = crate::repair::index(&mut session)?;
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
        let repo = self.open_repo()?;
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

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Stack commands: backups into recovery points.
impl App {
    /// The configured stacks (none when the schedules directory does not exist).
    fn stacks(&self) -> Result<Vec<Stack>> {
        let dir = &self.settings.schedules_dir;
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut stacks = crate::config::load_stacks(dir)?;
        // The drill files go with the stack's points; a broken one is `config check`'s
        // to report, not a reason to stop a backup.
        if let Ok(drills) = crate::config::drill::load_drills(&self.settings.drills_dir, &stacks) {
            for s in &mut stacks {
                s.drill_files = drills
                    .iter()
                    .filter(|d| d.stack == s.name)
                    .map(|d| d.file.clone())
                    .collect();
                s.drill_files.sort();
                s.drill_files.dedup();
            }
        }
        Ok(stacks)
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
        let mut session = self.open()?;
        self.writable(session.repo())?;
        let outcome = self.run_job(&mut session, stack, only, self.now)?;
        self.write_metrics_file(session.catalog(), &stacks);
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
    fn run_job<A>(
        &self,
        session: &mut Session<A>,
        stack: &Stack,
        only: &[String],
        now: DateTime<Utc>,
    ) -> Result<crate::run::RunOutcome> {
        let host = hostname();
        let lock_dir = self.settings.state_dir.join("locks");
        let progress = |label: &str| {
            let p = self.progress("backing up");
            p.set_message(label);
            p
        };
        crate::run::run_stack(
            session,
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
}
