//! Command-line definitions (clap only; the work is in `app`).

pub mod docs;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Backup and disaster recovery for servers that run Docker Compose stacks.
#[derive(Debug, Parser)]
#[command(name = "drctl", version, about, max_term_width = 100)]
pub struct Cli {
    /// Repository settings and output options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The arguments of this process; the error prints clap's message and carries its
    /// exit code (2 for a usage error, 0 for `--help` and `--version`).
    pub fn from_args() -> Result<Cli, clap::Error> {
        Cli::try_parse()
    }
}

/// Options every command takes.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Repository URL: file:///path or s3://bucket/prefix
    #[arg(long, global = true, env = "DRCTL_REPO", value_name = "URL")]
    pub repo: Option<String>,
    /// Key file holding the age identity and the repository's write secrets
    #[arg(long, global = true, env = "DRCTL_KEY_FILE", value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// Local catalog database (a cache; rebuilt from the repository when missing)
    #[arg(long, global = true, env = "DRCTL_CATALOG", value_name = "PATH")]
    pub catalog: Option<PathBuf>,
    /// Configuration file [default: /etc/drctl/drctl.toml]
    #[arg(long, global = true, env = "DRCTL_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// S3 endpoint URL (MinIO, Garage, ...); AWS when unset
    #[arg(long, global = true, env = "DRCTL_ENDPOINT", value_name = "URL")]
    pub endpoint: Option<String>,
    /// S3 region
    #[arg(long, global = true, env = "DRCTL_REGION", value_name = "REGION")]
    pub region: Option<String>,
    /// Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off
    // A value only after `=`: `--path-style init` must not take `init` as its value.
    #[arg(long, global = true, env = "DRCTL_PATH_STYLE", value_name = "BOOL", num_args = 0..=1,
          default_missing_value = "true", require_equals = true)]
    pub path_style: Option<bool>,
    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// Print no progress and no summary
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Write Prometheus metrics to this file (atomically) after runs and on `status`
    #[arg(long, global = true, env = "DRCTL_METRICS_FILE", value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Pretend the time is TIME (tests and rehearsals of schedules)
    #[arg(
        long,
        global = true,
        env = "DRCTL_NOW",
        value_name = "TIME",
        hide = true
    )]
    pub now: Option<String>,
    /// More log output (-v, -vv); DRCTL_LOG sets a filter too
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a repository and its key file
    Init(InitArgs),
    /// Back up a configured stack (databases and volumes) into a recovery point, or paths
    Backup(BackupArgs),
    /// List a stack's recovery points, or snapshots
    Snapshots(SnapshotsArgs),
    /// List the files of a snapshot
    Ls(LsArgs),
    /// Restore a stack from its recovery points, or a snapshot into a directory
    Restore(RestoreArgs),
    /// Write one file of a snapshot to stdout
    Dump(DumpArgs),
    /// Run a stack's backup now, or every job that is due (for cron and systemd timers)
    Run(RunArgs),
    /// Ship a source's WAL or binary log to the repository continuously (a service)
    Archive(ArchiveArgs),
    /// Run due jobs as they come due, until SIGTERM or SIGINT
    Daemon(DaemonArgs),
    /// List or install schedules
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Each stack's newest recovery point against its RPO, next run, repository size
    Status(StatusArgs),
    /// Remove recovery points and snapshots that the keep policy does not keep
    Forget(ForgetArgs),
    /// Delete data no snapshot references, safely while other hosts back up
    Prune(PruneArgs),
    /// Restore a stack into scratch containers and directories, check it, and time it
    /// against its RPO and RTO
    Drill(DrillArgs),
    /// Verify the repository's structure, and optionally its data
    Check(CheckArgs),
    /// A new host from the repository alone: drctl's configuration, then each stack's
    /// Compose project, volumes and databases, started and checked (dependencies first)
    Recover(RecoverArgs),
    /// Propose a stack file (and a drill) per running Compose project
    Discover(DiscoverArgs),
    /// Copy every object another repository lacks into it (an offsite copy, best pulled
    /// from a second machine); needs no key
    Copy(CopyArgs),
    /// Manage the local catalog
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Rebuild repository metadata from the repository itself
    #[command(subcommand)]
    Repair(RepairCommand),
    /// Validate configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage key files
    #[command(subcommand)]
    Key(KeyCommand),
}

/// `drctl init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// zstd level for the repository's new data (1 = fastest, 19 = smallest)
    #[arg(long, value_name = "LEVEL", default_value_t = crate::repo::repo_config::DEFAULT_COMPRESSION_LEVEL,
          value_parser = clap::value_parser!(i32).range(1..=19))]
    pub compression: i32,
}

/// `drctl backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Back up the given paths as a snapshot of stack NAME instead of a configured stack
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,
    /// Only this source of the stack (repeatable)
    #[arg(long, value_name = "NAME", conflicts_with = "stack")]
    pub source: Vec<String>,
    /// A stack from the schedules directory; with --stack, the paths to back up
    #[arg(required = true, value_name = "STACK|PATH")]
    pub targets: Vec<PathBuf>,
}

/// `drctl run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run every job whose latest scheduled slot has no successful run, once each
    #[arg(long, conflicts_with = "stack")]
    pub due: bool,
    /// The stack to run now
    #[arg(required_unless_present = "due")]
    pub stack: Option<String>,
    /// Only this source of the stack (repeatable)
    #[arg(long, value_name = "NAME", requires = "stack")]
    pub source: Vec<String>,
}

/// `drctl archive`.
#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// The stack
    pub stack: String,
    /// Its source with `pitr = true` (needed only when it has several)
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// Store the growing WAL segment or binary log file again at most this often
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub partial_every: String,
}

/// `drctl daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Most jobs running at once (each stack still runs one at a time)
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,
}

/// `drctl schedule ...`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Each job, its expression, last success and next run
    List,
    /// Install a systemd timer or a crontab entry that runs `drctl run --due` every minute,
    /// and keeps `drctl archive` running for each stack with a point-in-time source
    Install(InstallArgs),
}

/// `drctl schedule install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Write drctl.service and drctl.timer (and drctl-archive@.service for point-in-time
    /// sources)
    #[arg(long, required_unless_present = "cron", conflicts_with = "cron")]
    pub systemd: bool,
    /// Put a block into a crontab (replaced, not duplicated, by a second install)
    #[arg(long)]
    pub cron: bool,
    /// Print what would be written and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Directory for the systemd units
    #[arg(long, value_name = "DIR", default_value = "/etc/systemd/system")]
    pub unit_dir: PathBuf,
    /// Crontab file to edit [default: the user's crontab, through `crontab`]
    #[arg(long, value_name = "PATH")]
    pub crontab: Option<PathBuf>,
}

/// `drctl status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only these stacks [default: every stack]
    pub stacks: Vec<String>,
    /// Exit 1 when any (named) stack is not OK: its newest recovery point older than its
    /// RPO, a source failed or never backed up, or a gap in an archive
    #[arg(long)]
    pub check: bool,
}

/// `drctl forget`.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Only this stack [default: every stack with a keep policy]
    pub stack: Option<String>,
    /// Show what would be kept and removed, and why; remove nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `drctl drill`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct DrillArgs {
    /// Past results instead of a new drill
    #[command(subcommand)]
    pub command: Option<DrillCommand>,
    /// The drill to run (a `[drill.NAME]` of the restore-drills directory)
    #[arg(
        value_name = "NAME",
        required_unless_present_any = ["all", "host"],
        conflicts_with_all = ["all", "host"]
    )]
    pub name: Option<String>,
    /// Run every configured drill
    #[arg(long, conflicts_with = "host")]
    pub all: bool,
    /// Rehearse the whole-host recovery (every stack, or those named) into scratch
    /// Compose projects: internal networks, no published ports, nothing live touched;
    /// everything removed after
    #[arg(long, value_name = "STACK", num_args = 0..)]
    pub host: Option<Vec<String>>,
    /// Restore to this time (point-in-time sources replayed to it, others from their newest
    /// point at or before it), or `random`: a random second of the recovery window
    #[arg(long, value_name = "TIME|random")]
    pub at: Option<String>,
    /// Leave the scratch containers, network and directories in place
    #[arg(long)]
    pub keep: bool,
    /// Write the results as JUnit XML to this file
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
}

/// `drctl drill history|report`.
#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// Past drills with their measured RTO against the target
    History {
        /// Only this drill
        name: Option<String>,
    },
    /// An HTML page of each stack's measured RTO over time and its verdicts
    Report {
        /// Write the page here instead of to stdout
        #[arg(long, value_name = "PATH")]
        html: Option<PathBuf>,
        /// Also write each drill's newest result as JUnit XML to this file (for drills run
        /// by `run --due` or the daemon)
        #[arg(long, value_name = "PATH")]
        junit: Option<PathBuf>,
    },
}

/// `drctl prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Show what would be marked, repacked and deleted; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Unreferenced packs are deleted only once marked for this long (longer than any backup)
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub grace: String,
    /// Repack packs whose unreferenced share is at least PERCENT
    #[arg(long, value_name = "PERCENT", default_value_t = 25,
          value_parser = clap::value_parser!(u8).range(1..=100))]
    pub repack_threshold: u8,
    /// Act even when the snapshot list is empty or shrank sharply since the last look
    #[arg(long)]
    pub force: bool,
}

/// `drctl snapshots`.
#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// Only this stack: its recovery points with per-source status, when it has any
    pub stack: Option<String>,
}

/// `drctl ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Snapshot ID (or prefix), `latest`, or a stack name for its newest snapshot
    pub snapshot: String,
    /// Only entries under this path of the snapshot
    pub path: Option<PathBuf>,
}

/// `drctl restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A stack name (its newest snapshot at or before --at) or a snapshot ID
    #[arg(value_name = "STACK|SNAPSHOT")]
    pub what: String,
    /// Point in time: RFC 3339, "YYYY-MM-DD HH:MM" (local time) or relative ("2h ago")
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Only this source of the stack (repeatable)
    #[arg(long, value_name = "NAME")]
    pub source: Vec<String>,
    /// Restore only this path of the snapshot (kept at its place under --to)
    #[arg(long, value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// Target directory: a snapshot's files, a volume source, or a database's dump files
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// Load a database source into this container instead of the one it came from
    #[arg(long, value_name = "NAME")]
    pub into_container: Option<String>,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Replace databases and directories that hold data
    #[arg(long)]
    pub force: bool,
    /// Restore a snapshot into a non-empty directory, replacing files that are in the way
    #[arg(long)]
    pub overwrite: bool,
}

/// `drctl dump`.
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Snapshot ID (or prefix), `latest`, or a stack name
    pub snapshot: String,
    /// Path of the file inside the snapshot
    pub path: PathBuf,
}

/// `drctl check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also download and verify data: all packs, or PERCENT of them chosen at random
    #[arg(long, value_name = "PERCENT", num_args = 0..=1, default_missing_value = "100",
          require_equals = true)]
    pub read_data: Option<String>,
}

/// `drctl recover`.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The stacks [default with --all: every stack in the repository]
    pub stacks: Vec<String>,
    /// Every stack in the repository
    #[arg(long)]
    pub all: bool,
    /// List every stack in the repository with its newest points, then stop
    #[arg(long)]
    pub list: bool,
    /// The newest point at or before this time
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Write the stacks' configuration (stack and drill files) as their points carry it
    /// under DIR (DIR/schedules, DIR/restore-drills) instead of where drctl.toml says;
    /// existing files are never replaced
    #[arg(long, value_name = "DIR")]
    pub config_to: Option<PathBuf>,
    /// Write the configuration only: restore no stack
    #[arg(long)]
    pub config_only: bool,
    /// Replace data already there (a recovery that was interrupted, run again); without
    /// it, a directory or database that holds data is refused, source by source
    #[arg(long)]
    pub force: bool,
    /// Print what would be written, created, restored and started, and change nothing
    #[arg(long, conflicts_with = "list")]
    pub dry_run: bool,
}

/// `drctl discover`.
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// Write the files under DIR (DIR/schedules, DIR/restore-drills) instead of printing
    /// them; a file that exists is compared, never overwritten
    #[arg(long, value_name = "DIR")]
    pub write: Option<PathBuf>,
}

/// `drctl copy`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The repository to copy from: a URL or a `[remotes.NAME]` of drctl.toml (default:
    /// the configured repository)
    #[arg(long, value_name = "URL|NAME")]
    pub from: Option<String>,
    /// The repository to copy into: a URL or a `[remotes.NAME]` of drctl.toml; an empty
    /// bucket or directory, or an earlier copy of the same repository
    #[arg(long, value_name = "URL|NAME")]
    pub to: String,
    /// Objects copied at once (each is held in memory: up to ~33 MB for a pack)
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Also read every copied object back and check it against its name
    #[arg(long)]
    pub read_back: bool,
    /// Lock every object copied for this long with S3 Object Lock (`90d`); the bucket
    /// must have Object Lock enabled (default: the remote's `object_lock`)
    #[arg(long, value_name = "PERIOD")]
    pub object_lock: Option<String>,
    /// The Object Lock mode: compliance (no one can delete early) or governance
    #[arg(long, value_name = "MODE", requires = "object_lock")]
    pub object_lock_mode: Option<String>,
    /// Show what would be copied; copy nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `drctl catalog ...`.
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Recreate the catalog from the repository alone
    Rebuild,
}

/// `drctl repair ...`.
#[derive(Debug, Subcommand)]
pub enum RepairCommand {
    /// Write index files again from the trailers of packs no readable index lists
    Index,
    /// Write a lost config object again from the repository's key file
    Config,
}

/// `drctl config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check drctl.toml and every stack file; errors name file:line:column
    Check(ConfigCheckArgs),
}

/// `drctl config check`.
#[derive(Debug, Args)]
pub struct ConfigCheckArgs {
    /// Also check what the files name against this host: containers running, a trial
    /// login with the backup's credentials, paths and volumes, binary logging for pitr
    #[arg(long)]
    pub live: bool,
}

/// `drctl key ...`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write a copy of the key file; --write-only leaves out the identity
    Export(KeyExportArgs),
}

/// `drctl key export`.
#[derive(Debug, Args)]
pub struct KeyExportArgs {
    /// Leave out the age identity: the copy can back up but never read
    #[arg(long)]
    pub write_only: bool,
    /// Where to write the new key file (must not exist)
    #[arg(value_name = "PATH")]
    pub output: PathBuf,
}
