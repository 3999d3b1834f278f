//! A restore to a point in time: the base backup written into the target container's
//! data directory (on this host, through the volume that holds it), the archived WAL
//! staged straight into its `pg_wal`, and the server started in recovery up to the time,
//! then promoted.
//!
//! The server stops at the first transaction that committed after the time. When the
//! archive holds none (nothing was written between the time and the archive's end), the
//! server reports that it ran out of WAL before the target; all the WAL there is then
//! is exactly the state at the time, so it replays all of it instead.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{Login, Session};
use crate::docker::Docker;
use crate::error::{Error, IoContext, Result};
use crate::source::{LoginAt, PointInTime, ReplayJob, Replayed, SnapshotFiles};

/// The official image's data directory when `PGDATA` is not set.
pub const DEFAULT_PGDATA: &str = "/var/lib/postgresql/data";

/// The directory, inside the data directory (`restore_command` runs there), that says
/// which WAL files are staged; removed once the server is promoted. The files themselves
/// go into `pg_wal`.
const STAGING: &str = "drctl_restore_wal";
/// In the staging directory: the names of the files that will be staged, one a line,
/// written before the server starts. Beside it, an empty file of each name once that file
/// is whole in `pg_wal`.
const STAGED_NAMES: &str = ".names";
/// In the staging directory: staging failed, and recovery must not go on.
const STAGING_FAILED: &str = ".failed";
/// The suffix of a WAL file being written into `pg_wal`, which PostgreSQL ignores.
const PART: &str = ".drctl-part";

/// The server starts while the WAL is still being staged. For a file that will come,
/// `restore_command` waits until it is whole in `pg_wal`, for at most 300 s, and then says
/// "not in the archive", so that the server reads it from `pg_wal` where it is: a copy
/// to `%p` would write every byte again, and the server syncs each file it restores
/// from an archive to disk, which made replay take 2.7 times as long (11.3 s against
/// 4.2 s for 1.1 GB of pgbench WAL). A file that will not come is missing at once, as
/// PostgreSQL expects of an archive. Exit status 255 makes PostgreSQL stop recovery
/// rather than take a missing file for the end of the WAL. The wait is bounded by the
/// clock, not by a count of sleeps: a BusyBox `sleep` (Alpine images) may refuse a
/// fraction and return at once. PostgreSQL reads `%%` as `%` (and, from 16 on, refuses
/// any other unknown `%` escape).
fn restore_command() -> String {
    format!(
        "d={STAGING}; grep -qxF %f $d/{STAGED_NAMES} || exit 1; t=$(date +%%s); \
         until [ -e $d/%f ]; do [ -e $d/{STAGING_FAILED} ] && exit 255; \
         [ $(($(date +%%s) - t)) -lt 300 ] || exit 255; sleep 0.1 2>/dev/null || sleep 1; \
         done; exit 1"
    )
}

/// What PostgreSQL says when the WAL ends before the recovery target.
const TARGET_NOT_REACHED: &str = "recovery ended before configured recovery target was reached";
/// How long recovery may take.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(3600);
/// The settings a restore writes for the recovery and resets once the server is promoted.
const RECOVERY_SETTINGS: [&str; 5] = [
    "restore_command",
    "recovery_target_time",
    "recovery_target_action",
    "recovery_target_timeline",
    "recovery_init_sync_method",
];

/// Restores the target container's server to `at`; says which transaction it ended on.
pub fn restore(job: &ReplayJob<'_>) -> Result<Replayed> {
    let ReplayJob {
        docker,
        rec,
        target,
        files,
        at,
    } = *job;
    let base = rec.base.as_ref().ok_or_else(|| {
        Error::Failed(format!(
            "source {} has no base backup in this point",
            rec.name
        ))
    })?;
    let container = target.container.as_str();
    let info = docker.container(container)?;
    let pgdata = info.env_var("PGDATA").unwrap_or(DEFAULT_PGDATA).to_string();
    let host = info.host_path(&pgdata).ok_or_else(|| {
        Error::Usage(format!(
            "the data directory {pgdata} of container {container} is not on a volume: a \
             point-in-time restore writes it from this host"
        ))
    })?;
    // A drill's scratch server was only created: it has nothing to stop.
    if info.status == "running" || info.status == "restarting" {
        docker.stop(container, Duration::from_secs(60))?;
    }
    clear_dir(&host)?;
    extract(files, &base.file, &host)?;
    let meta =
        std::fs::metadata(host.join("PG_VERSION")).ctx(|| format!("reading {}", host.display()))?;
    let owner = (meta.uid(), meta.gid());
    // The directory itself is the server's too (a volume never started is root's), and
    // private, as PostgreSQL insists.
    chown(&host, owner)?;
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o700))
        .ctx(|| format!("chmod {}", host.display()))?;
    if target.scratch {
        trust_local(&host)?;
    }
    let staging = Staging::prepare(at, &host, owner)?;
    let recovery = Recovery {
        dir: &host,
        owner,
        syncfs: major_version(&host) >= Some(14),
    };
    recovery.write(Some((at.time, at.timeline)))?;
    // Replay begins as the first files arrive, while the rest are staged.
    docker.start(container)?;
    if let Err(e) = staging.fill(at) {
        staging.fail();
        let _ = docker.stop(container, Duration::from_secs(30));
        return Err(e);
    }
    if !wait_promoted(docker, container, &host)? {
        // No transaction after the time in the archive: all of it is the state at the time.
        recovery.write(None)?;
        docker.start(container)?;
        if !wait_promoted(docker, container, &host)? {
            return Err(Error::Failed(format!(
                "PostgreSQL in container {container} could not replay the archived WAL"
            )));
        }
    }
    let session = Session::open(LoginAt {
        docker,
        container,
        def: target.def,
    })?;
    let last = session.psql(
        "postgres",
        "SELECT extract(epoch FROM pg_last_xact_replay_timestamp())",
    )?;
    let mut reset: Vec<String> = RECOVERY_SETTINGS
        .iter()
        .map(|k| format!("ALTER SYSTEM RESET {k}"))
        .collect();
    reset.push("SELECT pg_reload_conf()".into());
    session.psql_multi(&reset.iter().map(String::as_str).collect::<Vec<_>>())?;
    std::fs::remove_dir_all(host.join(STAGING)).ctx(|| "removing the staged WAL".to_string())?;
    let last = parse_epoch(&last);
    Ok(Replayed {
        last_transaction: last,
        notes: vec![format!(
            "replayed to {}: the last transaction replayed committed at {}",
            crate::timespec::local_time(&at.time),
            last.map_or("(none after the base backup)".into(), |t| {
                t.format("%Y-%m-%d %H:%M:%S%.6f UTC").to_string()
            })
        )],
    })
}

/// Seconds since the epoch as PostgreSQL's `extract(epoch …)` prints them.
fn parse_epoch(text: &str) -> Option<DateTime<Utc>> {
    let secs: f64 = text.trim().parse().ok()?;
    DateTime::from_timestamp_micros((secs * 1e6).round() as i64)
}

/// Lets local (socket) connections in without a password, ahead of the backup's own
/// rules: the scratch server's throwaway credentials are not in the restored roles.
fn trust_local(dir: &Path) -> Result<()> {
    let path = dir.join("pg_hba.conf");
    let text = std::fs::read_to_string(&path).ctx(|| format!("reading {}", path.display()))?;
    std::fs::write(&path, format!("local all all trust\n{text}"))
        .ctx(|| format!("writing {}", path.display()))
}

/// Empties the data directory (the target's, which a restore replaces).
fn clear_dir(dir: &Path) -> Result<()> {
    for e in std::fs::read_dir(dir).ctx(|| format!("reading {}", dir.display()))? {
        let e = e.ctx(|| format!("reading {}", dir.display()))?;
        let p = e.path();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        }
        .ctx(|| format!("removing {}", p.display()))?;
    }
    Ok(())
}

/// Unpacks the base backup into `dir` with the owners it records (the server's user).
fn extract(files: &SnapshotFiles<'_>, name: &str, dir: &Path) -> Result<()> {
    let node = files.node(name)?;
    let mut tar = Command::new("tar")
        .args(["--numeric-owner", "--same-permissions", "-x", "-C"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ctx(|| "starting tar".to_string())?;
    let mut stdin = tar.stdin.take().expect("piped");
    let fed = files.reader.read_file(node, &mut |b| stdin.write_all(b));
    drop(stdin);
    let out = tar
        .wait_with_output()
        .ctx(|| "waiting for tar".to_string())?;
    fed?;
    if !out.status.success() {
        return Err(Error::Failed(format!(
            "unpacking the base backup: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// The staging directory of the archived WAL.
struct Staging {
    dir: std::path::PathBuf,
    /// The server's WAL directory, where the files go.
    pg_wal: std::path::PathBuf,
    owner: (u32, u32),
    /// The files to stage, in replay order: what `STAGED_NAMES` lists.
    names: Vec<String>,
}

impl Staging {
    /// Creates it, owned by the server's user, with the names of the files to come.
    fn prepare(at: PointInTime<'_>, data: &Path, owner: (u32, u32)) -> Result<Self> {
        let dir = data.join(STAGING);
        std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
        chown(&dir, owner)?;
        let names = at.wal.names();
        let listed: String = names.iter().map(|n| format!("{n}\n")).collect();
        let path = dir.join(STAGED_NAMES);
        std::fs::write(&path, listed).ctx(|| format!("writing {}", path.display()))?;
        Ok(Staging {
            dir,
            pg_wal: data.join("pg_wal"),
            owner,
            names,
        })
    }

    /// Writes every archived WAL file into `pg_wal`, in replay order, each under a name
    /// the server ignores and then renamed, so that the server never reads half a file;
    /// then marks it staged.
    fn fill(&self, at: PointInTime<'_>) -> Result<()> {
        for name in &self.names {
            let path = self.pg_wal.join(name);
            let part = self.pg_wal.join(format!("{name}{PART}"));
            let mut f =
                std::fs::File::create(&part).ctx(|| format!("creating {}", part.display()))?;
            at.wal.read(name, &mut |b| f.write_all(b))?;
            super::wal::pad_segment(&f, name).ctx(|| format!("padding {}", part.display()))?;
            chown(&part, self.owner)?;
            std::fs::rename(&part, &path).ctx(|| format!("renaming {}", part.display()))?;
            let mark = self.dir.join(name);
            std::fs::write(&mark, "").ctx(|| format!("writing {}", mark.display()))?;
        }
        Ok(())
    }

    /// Tells a waiting `restore_command` that no more files will come.
    fn fail(&self) {
        let _ = std::fs::write(self.dir.join(STAGING_FAILED), "");
    }
}

/// Gives `path` to the server's user and group.
fn chown(path: &Path, (uid, gid): (u32, u32)) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).ctx(|| format!("chown {}", path.display()))
}

/// The server's major version, from the data directory's `PG_VERSION`.
fn major_version(dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join("PG_VERSION")).ok()?;
    text.trim().split('.').next()?.parse().ok()
}

/// How the restored data directory is started in recovery.
struct Recovery<'a> {
    dir: &'a Path,
    /// The server's user and group.
    owner: (u32, u32),
    /// The server can sync the data directory with one `syncfs` (PostgreSQL 14 on).
    syncfs: bool,
}

impl Recovery<'_> {
    /// `recovery.signal` and the recovery settings: the time and the timeline to follow
    /// to it; `None` replays all the WAL there is (the timeline the staged history leads
    /// to).
    fn write(&self, target: Option<(DateTime<Utc>, u32)>) -> Result<()> {
        let dir = self.dir;
        let mut conf = format!("restore_command = '{}'\n", restore_command());
        if let Some((t, timeline)) = target {
            conf.push_str(&format!(
                "recovery_target_time = '{}'\nrecovery_target_action = 'promote'\n\
                 recovery_target_timeline = '{timeline}'\n",
                t.format("%Y-%m-%d %H:%M:%S%.6f+00")
            ));
        }
        // The base backup was unpacked without fsync, so recovery begins by syncing the
        // whole data directory: one syncfs of its file system, not an fsync per file,
        // which took longer than the replay itself (2.2 s against 3.8 s for a 2-million-
        // row database and three minutes of WAL).
        if self.syncfs {
            conf.push_str("recovery_init_sync_method = syncfs\n");
        }
        // The base backup's own settings stay; ours come last, so they win.
        let auto = dir.join("postgresql.auto.conf");
        let kept: String = std::fs::read_to_string(&auto)
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                !RECOVERY_SETTINGS
                    .iter()
                    .any(|k| l.trim_start().starts_with(k))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        for (path, text) in [
            (auto, kept + &conf),
            (dir.join("recovery.signal"), String::new()),
        ] {
            std::fs::write(&path, text).ctx(|| format!("writing {}", path.display()))?;
            chown(&path, self.owner)?;
        }
        Ok(())
    }
}

/// Waits until the server has left recovery (its `recovery.signal` gone, in the data
/// directory at `host`) and accepts connections: `true`; `false` when it stopped because
/// the WAL ended before the target; an error for any other stop. No login: a restored
/// server may not know the credentials drctl has.
fn wait_promoted(docker: &Docker, container: &str, host: &Path) -> Result<bool> {
    let t0 = Instant::now();
    let mut looked = None::<Instant>;
    while t0.elapsed() < RECOVERY_TIMEOUT {
        // The signal file is looked at often (a stat on this host); the container, which
        // takes a request to the daemon, every half second or once the file is gone.
        let signalled = host.join("recovery.signal").exists();
        if !signalled || looked.is_none_or(|t| t.elapsed() >= Duration::from_millis(500)) {
            looked = Some(Instant::now());
            let info = docker.container(container)?;
            if info.status != "running" && info.status != "restarting" {
                let logs = docker.last_logs(container, 40);
                if logs.contains(TARGET_NOT_REACHED) {
                    return Ok(false);
                }
                return Err(Error::Failed(format!(
                    "PostgreSQL in container {container} stopped during recovery: {}",
                    logs.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
                )));
            }
            let promoted = !signalled
                && docker
                    .run(container, &["pg_isready", "-q"], &[], None)
                    .is_ok_and(|o| o.exit_code == Some(0));
            if promoted {
                return Ok(true);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(Error::Failed(format!(
        "PostgreSQL in container {container} was still recovering after {}s",
        RECOVERY_TIMEOUT.as_secs()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `restore_command` as PostgreSQL would, in `dir`, for file `name`.
    fn run_restore_command(dir: &Path, name: &str) -> std::process::Output {
        let cmd = restore_command()
            .replace("%f", name)
            .replace("%p", "pg_wal/RECOVERYXLOG")
            .replace("%%", "%");
        Command::new("sh")
            .args(["-c", &cmd])
            .current_dir(dir)
            .output()
            .unwrap()
    }

    #[test]
    fn restore_command_waits_for_a_file_to_be_staged_and_stops_recovery_when_staging_fails() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join(STAGING);
        std::fs::create_dir_all(dir.path().join("pg_wal")).unwrap();
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(staging.join(STAGED_NAMES), "000000010000000000000003\nA\n").unwrap();

        // Not among the names: missing at once, as the end of an archive is.
        let t0 = Instant::now();
        let o = run_restore_command(dir.path(), "000000010000000000000009");
        assert_eq!(o.status.code(), Some(1));
        assert!(t0.elapsed() < Duration::from_secs(2));

        // Among them: waited for until it is marked staged, then left to the server to
        // read from pg_wal (status 1), never copied.
        let late = staging.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(600));
            std::fs::write(late.join("000000010000000000000003"), b"").unwrap();
        });
        let t0 = Instant::now();
        let o = run_restore_command(dir.path(), "000000010000000000000003");
        let waited = t0.elapsed();
        writer.join().unwrap();
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(waited >= Duration::from_millis(600), "{waited:?}");
        assert!(!dir.path().join("pg_wal/RECOVERYXLOG").exists());

        // Staging failed: recovery stops (exit status above 125), not ends.
        std::fs::write(staging.join(STAGING_FAILED), "").unwrap();
        let o = run_restore_command(dir.path(), "A");
        assert_eq!(o.status.code(), Some(255));
    }
}
