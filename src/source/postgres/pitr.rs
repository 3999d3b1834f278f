//! A restore to a point in time: the base backup written into the target container's
//! data directory (on this host, through the volume that holds it), the archived WAL
//! staged straight into its `pg_wal`, and the server started in recovery up to the time,
//! then promoted.
//!
//! The server stops at the first transaction that committed after the time. When the
//! archive holds none (nothing was written between the time and the archive's end), the
//! server reports that it ran out of WAL before the target; all the WAL there is then
//! is exactly the state at the time, so it replays all of it instead.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{Login, Session};
use crate::docker::Docker;
use crate::error::{Error, IoContext, Result};
use crate::pitr::parse_epoch;
use crate::safe_fs::{Dir, Kind};
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
const RECOVERY_SETTINGS: [&str; 6] = [
    "restore_command",
    "recovery_target_time",
    "recovery_target_action",
    "recovery_target_timeline",
    SYNC_METHOD,
    BUFFERS,
];
/// A scratch server's buffers for the replay (see [`replay_buffers`]).
const BUFFERS: &str = "shared_buffers";
/// How recovery syncs the data directory first; PostgreSQL 14 on.
const SYNC_METHOD: &str = "recovery_init_sync_method";

/// The recovery settings a server of the `major` version knows: an older one refuses to
/// start with, or to reset, a setting it does not know. The buffers only when drctl
/// sets them (a scratch server): a live server's own setting stays as it was.
fn recovery_settings(major: Option<u32>, buffers: bool) -> impl Iterator<Item = &'static str> {
    RECOVERY_SETTINGS
        .into_iter()
        .filter(move |k| *k != SYNC_METHOD || major >= Some(14))
        .filter(move |k| *k != BUFFERS || buffers)
}

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
    let data = DataDir::open(&host)?;
    // The directory itself is the server's too (a volume never started is root's), and
    // private, as PostgreSQL insists.
    std::os::unix::fs::fchown(&data.dir, Some(data.owner.0), Some(data.owner.1))
        .ctx(|| format!("chown {}", host.display()))?;
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o700))
        .ctx(|| format!("chmod {}", host.display()))?;
    if target.scratch {
        trust_local(&data)?;
    }
    let staging = Staging::prepare(at, &data)?;
    let recovery = Recovery {
        data: &data,
        major: major_version(&data)?,
        buffers: target
            .scratch
            .then(|| replay_buffers(files.node(&base.file).map_or(0, |n| n.size), mem_total())),
    };
    recovery.write(Some((at.time, at.timeline)))?;
    // Replay begins as the first files arrive, while the rest are staged.
    docker.start(container)?;
    if let Err(e) = staging.fill(at) {
        staging.fail();
        let _ = docker.stop(container, Duration::from_secs(30));
        return Err(e);
    }
    if !wait_promoted(docker, container, &data)? {
        // No transaction after the time in the archive: all of it is the state at the time.
        recovery.write(None)?;
        docker.start(container)?;
        if !wait_promoted(docker, container, &data)? {
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
    let mut reset: Vec<String> = recovery_settings(recovery.major, recovery.buffers.is_some())
        .map(|k| format!("ALTER SYSTEM RESET {k}"))
        .collect();
    reset.push("SELECT pg_reload_conf()".into());
    session.psql_multi(&reset.iter().map(String::as_str).collect::<Vec<_>>())?;
    data.dir
        .remove(OsStr::new(STAGING))
        .ctx(|| "removing the staged WAL's marks".to_string())?;
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

/// Lets local (socket) connections in without a password, ahead of the backup's own
/// rules: the scratch server's throwaway credentials are not in the restored roles.
fn trust_local(data: &DataDir) -> Result<()> {
    let text = data.read("pg_hba.conf")?.ok_or_else(|| {
        Error::Failed(format!(
            "the base backup has no pg_hba.conf in {}",
            data.path.display()
        ))
    })?;
    data.write("pg_hba.conf", &format!("local all all trust\n{text}"))
}

/// Empties the data directory (the target's, which a restore replaces); a link in it is
/// removed itself.
fn clear_dir(dir: &Path) -> Result<()> {
    let what = || format!("emptying {}", dir.display());
    let d = Dir::open(dir).ctx(what)?;
    for (name, _) in d.entries().ctx(what)? {
        d.remove(&name)
            .ctx(|| format!("removing {}", dir.join(&name).display()))?;
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

/// The unpacked data directory as this host reaches it. Every file in it is opened
/// relative to one handle and never through a link: the base backup holds what the
/// server had (a `pg_hba.conf -> /etc/postgresql/15/main/pg_hba.conf` link, say), and a
/// restore runs as root on this host, where the same path is another file.
struct DataDir {
    dir: Dir,
    path: PathBuf,
    /// The server's user and group: those of `PG_VERSION`.
    owner: (u32, u32),
}

impl DataDir {
    fn open(path: &Path) -> Result<DataDir> {
        let dir = Dir::open(path).ctx(|| format!("opening {}", path.display()))?;
        let mut data = DataDir {
            dir,
            path: path.to_path_buf(),
            owner: (0, 0),
        };
        data.refuse_link("PG_VERSION")?;
        let st = data
            .dir
            .stat(OsStr::new("PG_VERSION"))
            .ctx(|| format!("reading {}", path.join("PG_VERSION").display()))?;
        data.owner = (st.st_uid, st.st_gid);
        Ok(data)
    }

    /// Fails, naming it and where it leads, when `name` is a link.
    fn refuse_link(&self, name: &str) -> Result<()> {
        if self.dir.kind(OsStr::new(name)).ok().flatten() != Some(Kind::Symlink) {
            return Ok(());
        }
        let to = self
            .dir
            .read_link(OsStr::new(name))
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_default();
        Err(Error::Failed(format!(
            "{name} in the restored data directory {} is a symbolic link (to {to}): drctl \
             does not read or write through a link in what it restores",
            self.path.display()
        )))
    }

    /// The text of the regular file `name`; `None` when there is none.
    fn read(&self, name: &str) -> Result<Option<String>> {
        self.refuse_link(name)?;
        let what = || format!("reading {}", self.path.join(name).display());
        let mut f = match self.dir.open_file(OsStr::new(name)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).ctx(what),
        };
        if !f.metadata().ctx(what)?.is_file() {
            return Err(Error::Failed(format!("{}: not a regular file", what())));
        }
        crate::safe_fs::clear_nonblock(f.as_fd()).ctx(what)?;
        let mut text = String::new();
        f.read_to_string(&mut text).ctx(what)?;
        Ok(Some(text))
    }

    /// Writes `name` anew, the server's: a new file renamed over whatever stood there,
    /// so that a link there is replaced, not followed.
    fn write(&self, name: &str, text: &str) -> Result<()> {
        new_file(&self.dir, name, self.owner, &mut |f| {
            f.write_all(text.as_bytes())
        })
        .ctx(|| format!("writing {}", self.path.join(name).display()))
    }
}

/// Creates `name` in `dir` under a name the server ignores, fills it, gives it to
/// `owner` and renames it into place, so that nobody reads half of it.
fn new_file(
    dir: &Dir,
    name: &str,
    (uid, gid): (u32, u32),
    fill: &mut dyn FnMut(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let part = format!("{name}{PART}");
    dir.remove(OsStr::new(&part))?;
    let mut f = dir.create_file(OsStr::new(&part), true)?;
    fill(&mut f)?;
    std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
    dir.rename(OsStr::new(&part), OsStr::new(name))
}

/// The staging directory of the archived WAL.
struct Staging {
    /// Where the names and the marks are.
    dir: Dir,
    /// The server's WAL directory, where the files go.
    pg_wal: Dir,
    owner: (u32, u32),
    /// The files to stage, in replay order: what `STAGED_NAMES` lists.
    names: Vec<String>,
}

impl Staging {
    /// Creates it, the server's, with the names of the files to come.
    fn prepare(at: PointInTime<'_>, data: &DataDir) -> Result<Self> {
        let what = || format!("creating {}", data.path.join(STAGING).display());
        data.dir.mkdir(OsStr::new(STAGING), 0o700, true).ctx(what)?;
        let dir = data.dir.open_dir(OsStr::new(STAGING)).ctx(what)?;
        std::os::unix::fs::fchown(&dir, Some(data.owner.0), Some(data.owner.1)).ctx(what)?;
        data.refuse_link("pg_wal")?;
        let pg_wal = data
            .dir
            .open_dir(OsStr::new("pg_wal"))
            .ctx(|| format!("opening {}", data.path.join("pg_wal").display()))?;
        let names = at.wal.names();
        let listed: String = names.iter().map(|n| format!("{n}\n")).collect();
        new_file(&dir, STAGED_NAMES, data.owner, &mut |f| {
            f.write_all(listed.as_bytes())
        })
        .ctx(what)?;
        Ok(Staging {
            dir,
            pg_wal,
            owner: data.owner,
            names,
        })
    }

    /// Writes every archived WAL file into `pg_wal`, in replay order, each under a name
    /// the server ignores and then renamed, so that the server never reads half a file;
    /// then marks it staged.
    fn fill(&self, at: PointInTime<'_>) -> Result<()> {
        for name in &self.names {
            let mut read = Ok(());
            let staged = new_file(&self.pg_wal, name, self.owner, &mut |f| {
                read = at.wal.read(name, &mut |b| f.write_all(b));
                match read {
                    Ok(()) => super::wal::pad_segment(f, name),
                    Err(_) => Err(std::io::Error::other("the archive could not be read")),
                }
            });
            // The archive's own error, when that was it.
            read?;
            staged.ctx(|| format!("staging pg_wal/{name}"))?;
            self.dir
                .create_file(OsStr::new(name), false)
                .ctx(|| format!("marking pg_wal/{name} staged"))?;
        }
        Ok(())
    }

    /// Tells a waiting `restore_command` that no more files will come.
    fn fail(&self) {
        let _ = self.dir.create_file(OsStr::new(STAGING_FAILED), false);
    }
}

/// The server's major version, from the data directory's `PG_VERSION`.
fn major_version(data: &DataDir) -> Result<Option<u32>> {
    let text = data.read("PG_VERSION")?.unwrap_or_default();
    Ok(text.trim().split('.').next().and_then(|v| v.parse().ok()))
}

/// How the restored data directory is started in recovery.
struct Recovery<'a> {
    data: &'a DataDir,
    /// The server's major version.
    major: Option<u32>,
    /// `shared_buffers` for the replay, in MiB: a scratch server's (see
    /// [`replay_buffers`]); a live one keeps its own.
    buffers: Option<u64>,
}

/// The shared buffers, in MiB, a scratch server replays with: room for the whole
/// database (`base_bytes`, what its base backup holds) twice over, as the WAL may grow
/// it, but at most a quarter of this
/// host's memory (`mem_bytes`), and never below PostgreSQL's default. With the default
/// 128 MiB, a 2-million-row pgbench database (300 MiB) does not fit, and replay writes
/// out and reads back pages all along: of 2 GB of WAL, 9.4 and 8.7 s of replay (2.1 and
/// 2.0 s of it system time) against 7.9 and 7.6 s (1.0 s) with 1 GiB. The drill's
/// server is thrown away afterwards; a restore into a live container leaves the
/// server's own setting alone.
fn replay_buffers(base_bytes: u64, mem_bytes: Option<u64>) -> u64 {
    const DEFAULT_MIB: u64 = 128;
    let want = base_bytes.saturating_mul(2).div_ceil(1 << 20);
    let cap = mem_bytes.map_or(DEFAULT_MIB, |m| (m >> 20) / 4);
    want.min(cap).max(DEFAULT_MIB)
}

/// This host's memory, from `/proc/meminfo`.
fn mem_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib << 10)
}

impl Recovery<'_> {
    /// `recovery.signal` and the recovery settings: the time and the timeline to follow
    /// to it; `None` replays all the WAL there is (the timeline the staged history leads
    /// to).
    fn write(&self, target: Option<(DateTime<Utc>, u32)>) -> Result<()> {
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
        if recovery_settings(self.major, false).any(|k| k == SYNC_METHOD) {
            conf.push_str(&format!("{SYNC_METHOD} = syncfs\n"));
        }
        if let Some(mib) = self.buffers {
            conf.push_str(&format!("{BUFFERS} = '{mib}MB'\n"));
        }
        // The base backup's own settings stay; ours come last, so they win.
        let kept: String = self
            .data
            .read("postgresql.auto.conf")?
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                !recovery_settings(self.major, self.buffers.is_some())
                    .any(|k| l.trim_start().starts_with(k))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        self.data.write("postgresql.auto.conf", &(kept + &conf))?;
        self.data.write("recovery.signal", "")
    }
}

/// Waits until the server has left recovery (its `recovery.signal` gone, in the data
/// directory) and accepts connections: `true`; `false` when it stopped because
/// the WAL ended before the target; an error for any other stop. No login: a restored
/// server may not know the credentials drctl has.
fn wait_promoted(docker: &Docker, container: &str, data: &DataDir) -> Result<bool> {
    let t0 = Instant::now();
    let mut looked = None::<Instant>;
    while t0.elapsed() < RECOVERY_TIMEOUT {
        // The signal file is looked at often (a stat on this host); the container, which
        // takes a request to the daemon, every half second or once the file is gone.
        let signalled = data
            .dir
            .kind(OsStr::new("recovery.signal"))
            .map_or(true, |k| k.is_some());
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
    fn a_server_is_given_and_reset_only_the_recovery_settings_it_knows() {
        let known = |major| recovery_settings(Some(major), true).collect::<Vec<_>>();
        assert!(!known(13).contains(&SYNC_METHOD));
        assert!(known(13).contains(&"recovery_target_time"));
        assert!(known(14).contains(&SYNC_METHOD) && known(17).contains(&SYNC_METHOD));
        assert_eq!(known(16).len(), RECOVERY_SETTINGS.len());
        assert!(!recovery_settings(None, true).any(|k| k == SYNC_METHOD));
        // A live server's buffers are its own: neither set nor reset.
        assert!(recovery_settings(Some(16), true).any(|k| k == BUFFERS));
        assert!(!recovery_settings(Some(16), false).any(|k| k == BUFFERS));
    }

    #[test]
    fn a_scratch_server_replays_with_room_for_its_database_within_a_quarter_of_memory() {
        const MIB: u64 = 1 << 20;
        let gib16 = Some(16 << 30);
        assert_eq!(replay_buffers(300 * MIB, gib16), 600);
        assert_eq!(replay_buffers(300 * MIB + 1, gib16), 601);
        // Never below PostgreSQL's default, never above a quarter of the host.
        assert_eq!(replay_buffers(10 * MIB, gib16), 128);
        assert_eq!(replay_buffers(40 << 30, gib16), 4096);
        assert_eq!(replay_buffers(300 * MIB, Some(1024 * MIB)), 256);
        assert_eq!(replay_buffers(300 * MIB, Some(512 * MIB)), 128);
        assert_eq!(replay_buffers(300 * MIB, None), 128);
        assert!(mem_total().is_some_and(|m| m > 0));
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
