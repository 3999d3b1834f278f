//! A restore to a point in time: the base backup written into the target container's
//! data directory (on this host, through the volume that holds it), the archived WAL
//! staged beside it, and the server started in recovery up to the time, then promoted.
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

/// Where the archived WAL is staged, inside the data directory (`restore_command` runs
/// there); removed once the server is promoted.
const STAGING: &str = "drctl_restore_wal";
/// What PostgreSQL says when the WAL ends before the recovery target.
const TARGET_NOT_REACHED: &str = "recovery ended before configured recovery target was reached";
/// How long recovery may take.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(3600);

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
    std::os::unix::fs::chown(&host, Some(owner.0), Some(owner.1))
        .ctx(|| format!("chown {}", host.display()))?;
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o700))
        .ctx(|| format!("chmod {}", host.display()))?;
    if target.scratch {
        trust_local(&host)?;
    }
    stage_wal(at, &host.join(STAGING), owner)?;
    write_recovery(&host, Some((at.time, at.timeline)), owner)?;
    docker.start(container)?;
    if !wait_promoted(docker, container, &host)? {
        // No transaction after the time in the archive: all of it is the state at the time.
        write_recovery(&host, None, owner)?;
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
    session.psql_multi(&[
        "ALTER SYSTEM RESET restore_command",
        "ALTER SYSTEM RESET recovery_target_time",
        "ALTER SYSTEM RESET recovery_target_action",
        "ALTER SYSTEM RESET recovery_target_timeline",
        "SELECT pg_reload_conf()",
    ])?;
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

/// Writes every archived WAL file into `dir`, owned by the server's user.
fn stage_wal(at: PointInTime<'_>, dir: &Path, (uid, gid): (u32, u32)) -> Result<()> {
    std::fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))
        .ctx(|| format!("chown {}", dir.display()))?;
    for name in at.wal.names() {
        let path = dir.join(&name);
        let mut f = std::fs::File::create(&path).ctx(|| format!("creating {}", path.display()))?;
        at.wal.read(&name, &mut |b| f.write_all(b))?;
        super::wal::pad_segment(&f, &name).ctx(|| format!("padding {}", path.display()))?;
        std::os::unix::fs::chown(&path, Some(uid), Some(gid))
            .ctx(|| format!("chown {}", path.display()))?;
    }
    Ok(())
}

/// `recovery.signal` and the recovery settings: the time and the timeline to follow to
/// it; `None` replays all the WAL there is (the timeline the staged history leads to).
fn write_recovery(
    dir: &Path,
    target: Option<(DateTime<Utc>, u32)>,
    (uid, gid): (u32, u32),
) -> Result<()> {
    let mut conf = format!("restore_command = 'cp {STAGING}/%f \"%p\"'\n");
    if let Some((t, timeline)) = target {
        conf.push_str(&format!(
            "recovery_target_time = '{}'\nrecovery_target_action = 'promote'\n\
             recovery_target_timeline = '{timeline}'\n",
            t.format("%Y-%m-%d %H:%M:%S%.6f+00")
        ));
    }
    // The base backup's own settings stay; ours come last, so they win.
    let auto = dir.join("postgresql.auto.conf");
    let kept: String = std::fs::read_to_string(&auto)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            ![
                "restore_command",
                "recovery_target_time",
                "recovery_target_action",
                "recovery_target_timeline",
            ]
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
        std::os::unix::fs::chown(&path, Some(uid), Some(gid))
            .ctx(|| format!("chown {}", path.display()))?;
    }
    Ok(())
}

/// Waits until the server has left recovery (its `recovery.signal` gone, in the data
/// directory at `host`) and accepts connections: `true`; `false` when it stopped because
/// the WAL ended before the target; an error for any other stop. No login: a restored
/// server may not know the credentials drctl has.
fn wait_promoted(docker: &Docker, container: &str, host: &Path) -> Result<bool> {
    let t0 = Instant::now();
    while t0.elapsed() < RECOVERY_TIMEOUT {
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
        let promoted = !host.join("recovery.signal").exists()
            && docker
                .run(container, &["pg_isready", "-q"], &[], None)
                .is_ok_and(|o| o.exit_code == Some(0));
        if promoted {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    Err(Error::Failed(format!(
        "PostgreSQL in container {container} was still recovering after {}s",
        RECOVERY_TIMEOUT.as_secs()
    )))
}
