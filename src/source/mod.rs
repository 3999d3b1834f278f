//! Sources: where a stack's data comes from (database dumps through `docker exec`, volume
//! trees read from the host) and how it goes back.
//!
//! A database source becomes a snapshot whose root holds one file per dump; a volume
//! source becomes a snapshot of its directory. Each kind's module implements
//! [`SourceDriver`] once (the database kinds through [`DatabaseDriver`]), and [`driver`]
//! is the one place that picks the implementation for a stored kind, so that backup,
//! restore and drills never ask which kind they hold.

pub mod database;
pub mod hold;
pub mod kinds;
pub mod live;
pub mod mysql;
pub mod postgres;
pub mod redis;
pub mod secrets;
pub mod volume;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config::SourceDef;
use crate::docker::{self, Docker, ExecReader};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repo::point::SourceRecord;
use crate::repo::tree::Node;
use crate::safe_fs::Dir;

pub use database::LoginAt;
pub use kinds::driver;

/// One kind of source: all that backup, restore and drills do differently per kind.
pub trait SourceDriver {
    /// The kind's server side, for a kind that lives in a database server (a drill starts
    /// a scratch one); `None` for a kind that is restored into a directory.
    fn database(&self) -> Option<&dyn DatabaseDriver>;

    /// Whether the kind lives in a database server rather than in a directory.
    fn is_database(&self) -> bool {
        self.database().is_some()
    }

    /// Whether backing up `def` needs the Docker daemon.
    fn backup_needs_docker(&self, def: &SourceDef) -> bool;

    /// Checks the source and plans its backup (the streams or paths to store), filling in
    /// what `rec` records of it.
    fn backup(&self, job: BackupJob<'_>, rec: &mut SourceRecord) -> Result<Prepared>;

    /// Whether restoring `rec` to `target` needs the Docker daemon.
    fn restore_needs_docker(&self, rec: &SourceRecord, target: &Target<'_>) -> bool;

    /// What a restore to `target` will do, for the plan; a target that holds data is
    /// refused (a usage error) unless forced.
    fn check_target(&self, job: RestoreJob<'_>) -> Result<Vec<String>>;

    /// Restores the snapshot to `target`; containers it stops are recorded in `ledger`.
    fn restore(
        &self,
        job: RestoreJob<'_>,
        ledger: &dyn hold::Ledger,
        snapshot: &dyn SnapshotReader,
        progress: &Progress,
    ) -> Result<Loaded>;
}

/// What [`DatabaseDriver::server`] gives.
pub type ServerFor<'a> = Result<Box<dyn Server + 'a>>;

/// A database server logged in to for a restore.
pub trait Server {
    /// What loading into it will replace, for the plan; data is refused (a usage error)
    /// unless forced.
    fn plan(&self, rec: &SourceRecord, target: &Target<'_>) -> Result<Vec<String>>;

    /// Loads the snapshot's dumps into it; what the operator should know.
    fn load(&self, rec: &SourceRecord, files: &SnapshotFiles<'_>) -> Result<Vec<String>>;

    /// The first column of the first row of `sql` in `db`; the server's error text when
    /// it fails.
    fn scalar(&self, _db: &str, _sql: &str) -> Result<String> {
        Err(Error::Usage("sql is for postgres and mysql sources".into()))
    }

    /// Keys in all databases.
    fn key_count(&self) -> Result<u64> {
        Err(Error::Usage("redis_keys is for redis sources".into()))
    }
}

/// A kind that lives in a database server, dumped and loaded by the server's own tools in
/// its container. Every one is a [`SourceDriver`] (see [`database`]).
pub trait DatabaseDriver {
    /// Checks the server and plans the dumps, filling in what `rec` records of it.
    fn dump(
        &self,
        docker: &Docker,
        job: &BackupJob<'_>,
        rec: &mut SourceRecord,
    ) -> Result<Prepared>;

    /// Logs in to the server of a running container.
    fn open<'a>(&self, at: LoginAt<'a>) -> ServerFor<'a>;

    /// The environment (`NAME=value`) that makes `password` a drill's scratch server's
    /// credentials.
    fn scratch_credentials(&self, password: &str) -> Vec<String>;

    /// Whether the server in `container` accepts connections.
    fn ready(&self, docker: &Docker, container: &str) -> bool;

    /// The TCP port the kind's server listens on by default.
    fn port(&self) -> u16;

    /// Logs in as a backup of `def` would, and checks what it would need (the named
    /// databases, binary logging for `pitr`): the server's version, or why a backup
    /// would fail (`config check --live`).
    fn trial(&self, docker: &Docker, def: &SourceDef) -> Result<String>;

    /// Where a server with this environment (`NAME=value`) keeps its data, for a kind
    /// whose restore to a time writes it there (a drill gives it a volume).
    fn data_dir(&self, _env: &[String]) -> Option<String> {
        None
    }

    /// What a restore to a time does, for the plan: `files` archived log files replayed
    /// to `to`.
    fn replay_plan(&self, files: usize, to: &str) -> String {
        format!("{files} archived log file(s) will be replayed to {to}")
    }

    /// Restores the target's server to a time from the record's base backup and the
    /// archived log, instead of loading the dumps alone.
    fn replay_to(&self, job: &ReplayJob<'_>) -> Result<Replayed> {
        Err(Error::Usage(format!(
            "source {} ({}) cannot be restored to a point in time",
            job.rec.name,
            job.rec.kind.name()
        )))
    }
}

/// A source to back up, and the daemon when its kind needs one.
#[derive(Clone, Copy)]
pub struct BackupJob<'a> {
    /// The daemon, when [`SourceDriver::backup_needs_docker`] says it is needed.
    pub docker: Option<&'a Docker>,
    /// The source's configuration.
    pub def: &'a SourceDef,
    /// The source's log is being archived now (a copy stored moments ago): a base backup
    /// can leave its WAL to the archive.
    pub archive_live: bool,
}

/// A source's restore: what is restored, where, and the daemon when the target needs it.
#[derive(Clone, Copy)]
pub struct RestoreJob<'a> {
    /// The daemon, when [`SourceDriver::restore_needs_docker`] says it is needed.
    pub docker: Option<&'a Docker>,
    /// The source's record in the point restored.
    pub rec: &'a SourceRecord,
    /// Where it goes.
    pub target: &'a Target<'a>,
    /// It goes to a time: a base backup and the archived log replayed, not the dumps.
    pub replay: bool,
}

/// A restore to a point in time: what is restored, where, and to when.
#[derive(Clone, Copy)]
pub struct ReplayJob<'a> {
    /// The daemon the target's container runs in.
    pub docker: &'a Docker,
    /// The source's record in the point holding its base backup.
    pub rec: &'a SourceRecord,
    /// The server restored into.
    pub target: &'a Target<'a>,
    /// The snapshot's files (the base backup, the dumps).
    pub files: &'a SnapshotFiles<'a>,
    /// The time and the archived log to replay up to it.
    pub at: PointInTime<'a>,
}

/// What a restore to a point in time reached.
pub struct Replayed {
    /// When the last transaction replayed committed; `None` when none was after the base.
    pub last_transaction: Option<chrono::DateTime<chrono::Utc>>,
    /// Things the operator should know.
    pub notes: Vec<String>,
}

/// The Docker daemon, for a step that cannot do without it.
pub fn need_docker(docker: Option<&Docker>) -> Result<&Docker> {
    docker.ok_or_else(|| Error::Environment("the Docker daemon is needed".into()))
}

/// What the restore of one source did.
pub struct Loaded {
    /// Bytes written or loaded.
    pub bytes: u64,
    /// Things the operator should know.
    pub warnings: Vec<String>,
    /// For a restore to a point in time: when the last transaction replayed committed.
    pub replayed_to: Option<chrono::DateTime<chrono::Utc>>,
}

/// Checks that run alongside a source's dumps; on success, what they found for its record.
pub type PendingChecks = std::thread::JoinHandle<Result<Box<dyn FnOnce(&mut SourceRecord) + Send>>>;

/// Completes a source's record from what its streams showed, once they have all been read.
pub type Finish = Box<dyn FnOnce(&mut SourceRecord) -> Result<()> + Send>;

/// Opens a stream when a reader thread is ready for it, so a dump starts only when its
/// output can be consumed.
pub type StreamOpener = Box<dyn FnOnce() -> std::io::Result<Box<dyn std::io::Read + Send>> + Send>;

/// A file whose contents come from a stream rather than the file system.
pub struct StreamFile {
    /// Its name at the snapshot's root.
    pub name: String,
    /// Starts the stream.
    pub open: StreamOpener,
}

/// What a source's backup stores: streams (dumps) or host paths.
#[derive(Default)]
pub struct Prepared {
    /// Checks still running; judged before the backup's own outcome.
    pub checks: Option<PendingChecks>,
    /// Dumps, stored as files at the snapshot's root.
    pub streams: Vec<StreamFile>,
    /// Run once the streams are stored (before the checks' findings are recorded).
    pub finish: Option<Finish>,
    /// Host directories.
    pub paths: Vec<PathBuf>,
    /// Patterns left out of those directories.
    pub exclude: Vec<String>,
}

/// Where a restore sends a source.
#[derive(Clone)]
pub struct Target<'a> {
    /// The container to load a database into.
    pub container: String,
    /// For a volume: the directory to restore into; for a database: write the dump files
    /// there instead of loading them.
    pub dir: Option<PathBuf>,
    /// Replace a database or directory that holds data.
    pub force: bool,
    /// The source's configuration, when the stack is configured on this host.
    pub def: Option<&'a SourceDef>,
    /// Restore to this time from a base backup and the archived WAL, not from the dumps.
    pub at: Option<PointInTime<'a>>,
    /// A drill's throwaway server, which drctl may open to local logins: a base backup
    /// brings the original's roles and passwords, not the scratch credentials.
    pub scratch: bool,
}

impl<'a> Target<'a> {
    /// Where to log in to the target's server.
    pub fn login(&'a self, docker: &'a Docker) -> LoginAt<'a> {
        LoginAt {
            docker,
            container: &self.container,
            def: self.def,
        }
    }
}

/// A point-in-time restore's time and the WAL to replay up to it.
#[derive(Clone, Copy)]
pub struct PointInTime<'a> {
    /// The time to stop at.
    pub time: chrono::DateTime<chrono::Utc>,
    /// The timeline recovery follows to it.
    pub timeline: u32,
    /// The source's archived WAL.
    pub wal: &'a dyn WalArchive,
}

/// A source's archived WAL, as the restore side reads it from the repository.
pub trait WalArchive {
    /// The names of the stored WAL files to stage (a completed copy where there is one).
    fn names(&self) -> Vec<String>;

    /// Streams a file's bytes into `sink`.
    fn read(&self, name: &str, sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> Result<()>;
}

/// The stored snapshot a source is restored from: the restore side's, handed to a source
/// (which reads the repository only through it).
pub trait SnapshotReader {
    /// The entries at the snapshot's root.
    fn root(&self) -> Result<Vec<Node>>;

    /// Streams the contents of `node` into `sink`, in order.
    fn read_file(
        &self,
        node: &Node,
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<()>;

    /// Restores the snapshot's directory (its contents) into `dir`, replacing files there
    /// when `overwrite`; the bytes written.
    fn restore_tree(&self, dir: &Path, overwrite: bool, progress: &Progress) -> Result<u64>;
}

/// A source snapshot's files by name, and the means to read them.
pub struct SnapshotFiles<'a> {
    /// Reads their contents.
    pub reader: &'a dyn SnapshotReader,
    /// Root entries of the snapshot.
    pub files: HashMap<String, Node>,
    /// Progress display, counting bytes.
    pub progress: &'a Progress,
}

impl SnapshotFiles<'_> {
    /// A file of the snapshot, or a damage error naming it.
    pub fn node(&self, name: &str) -> Result<&Node> {
        self.files
            .get(name)
            .ok_or_else(|| Error::Damage(format!("the snapshot has no file {name}")))
    }

    /// Streams one file to `sink`.
    pub fn stream(
        &self,
        name: &str,
        mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<u64> {
        let node = self.node(name)?;
        let mut n = 0u64;
        self.reader.read_file(node, &mut |b| {
            n += b.len() as u64;
            self.progress.add_bytes(b.len() as u64);
            sink(b)
        })?;
        Ok(n)
    }

    /// Up to `limit` bytes of a file's start as text (invalid UTF-8 replaced); the rest
    /// is not read.
    pub fn head(&self, name: &str, limit: usize) -> Result<String> {
        let node = self.node(name)?;
        let mut bytes = Vec::new();
        let read = self.reader.read_file(node, &mut |b| {
            bytes.extend_from_slice(b);
            if bytes.len() >= limit {
                return Err(std::io::Error::other("enough read"));
            }
            Ok(())
        });
        if bytes.len() < limit {
            read?;
        }
        bytes.truncate(limit);
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// A small file's whole contents as text (invalid UTF-8 replaced).
    pub fn text(&self, name: &str) -> Result<String> {
        let mut bytes = Vec::new();
        self.stream(name, |b| {
            bytes.extend_from_slice(b);
            Ok(())
        })?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Streams one file into a command's stdin in a container, and checks it succeeded.
    pub fn feed(
        &self,
        docker: &Docker,
        container: &str,
        name: &str,
        cmd: &[&str],
        env: &[(String, String)],
    ) -> Result<docker::ExecOutput> {
        let mut writer = docker.feed(container, cmd, env)?;
        let streamed = self.stream(name, |b| writer.write(b));
        let out = writer.finish()?;
        // A command that fails early closes its stdin: its own error says why.
        if out.exit_code != Some(0) {
            return Err(Error::Failed(format!(
                "loading {name}: {} {}: {}",
                cmd[0],
                docker::exit_text(out.exit_code),
                docker::stderr_summary(&out.stderr)
            )));
        }
        streamed?;
        Ok(out)
    }

    /// Writes the source's files into a directory instead of loading them. The directory
    /// and its files are created new, and no link there is followed.
    pub fn write_to(&self, dir: &std::path::Path) -> Result<u64> {
        let io =
            |what: &str, p: &std::path::Path, e| Error::io(format!("{what} {}", p.display()), e);
        // The parent is the user's `--to`; the source's own directory below it is not
        // reached through a link.
        let (parent, last) = match (dir.parent(), dir.file_name()) {
            (Some(p), Some(n)) => (
                if p.as_os_str().is_empty() {
                    std::path::Path::new(".")
                } else {
                    p
                },
                n,
            ),
            _ => {
                return Err(Error::Usage(format!(
                    "{} cannot hold a source's files",
                    dir.display()
                )))
            }
        };
        std::fs::create_dir_all(parent).map_err(|e| io("creating", parent, e))?;
        let parent_dir = Dir::open(parent).map_err(|e| io("opening", parent, e))?;
        parent_dir
            .mkdir(last, 0o777, false)
            .map_err(|e| io("creating", dir, e))?;
        let out = parent_dir
            .open_dir(last)
            .map_err(|e| io("opening", dir, e))?;
        let mut total = 0;
        let mut names: Vec<&String> = self.files.keys().collect();
        names.sort();
        for name in names {
            let path = dir.join(name);
            let mut f = match out.create_file(std::ffi::OsStr::new(name), true) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::Usage(format!("{} already exists", path.display())))
                }
                Err(e) => return Err(io("creating", &path, e)),
            };
            total += self.stream(name, |b| std::io::Write::write_all(&mut f, b))?;
        }
        Ok(total)
    }
}

/// The password from the source's `password_file`, when it names one.
pub fn password_from_file(def: Option<&SourceDef>) -> Result<Option<String>> {
    let Some(path) = def.and_then(|d| d.password_file.as_ref()) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("password_file {}: {e}", path.display())))?;
    Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()))
}

/// A stream that starts a command in a container when the backup is ready for it.
pub fn exec_stream(
    docker: &Docker,
    container: &str,
    name: String,
    cmd: Vec<String>,
    env: Vec<(String, String)>,
    marker: Option<&'static str>,
) -> StreamFile {
    let (docker, container) = (docker.clone(), container.to_string());
    StreamFile {
        name,
        open: Box::new(move || {
            let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
            docker
                .stream(&container, &args, &env, marker)
                .map(|r: ExecReader| Box::new(r) as Box<dyn std::io::Read + Send>)
                .map_err(|e| std::io::Error::other(e.to_string()))
        }),
    }
}

/// The container a database source names; config check guarantees one.
pub fn container_of(def: &SourceDef) -> Result<&str> {
    def.container
        .as_ref()
        .map(|c| c.get_ref().as_str())
        .ok_or_else(|| Error::Config(format!("source {} names no container", def.name.get_ref())))
}

/// Records the database container a source was backed up from, with its command line
/// and environment stripped of credentials (see `secrets`).
pub fn record_container(rec: &mut SourceRecord, info: &docker::ContainerInfo) {
    rec.container = Some(info.name.clone());
    rec.image = Some(info.image.clone());
    rec.image_digest = Some(info.image_digest.clone());
    rec.entrypoint = secrets::redact_command(&info.entrypoint);
    rec.command = secrets::redact_command(&info.cmd);
    rec.environment = secrets::public_environment(&info.env);
}
