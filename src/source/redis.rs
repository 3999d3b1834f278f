//! Redis: `BGSAVE`, wait until that save (not an older one) has finished, then stream the
//! RDB file out of the container. Restore stops the server, puts the RDB in its place and
//! starts it again, since Redis reads its RDB only at startup.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{container_of, password_from_file, Prepared, SnapshotFiles, StreamFile, Target};
use crate::config::SourceDef;
use crate::docker::{ContainerInfo, Docker, TarFile};
use crate::error::{Error, Result};
use crate::repo::point::SourceRecord;

/// The snapshot's one file.
pub const RDB_FILE: &str = "dump.rdb";
/// The longest a BGSAVE may take.
const SAVE_TIMEOUT: Duration = Duration::from_secs(3600);

fn credentials(def: Option<&SourceDef>, info: &ContainerInfo) -> Result<Vec<(String, String)>> {
    let password = match password_from_file(def)? {
        Some(p) => Some(p),
        // The official image has no password variable: compose files pass
        // `--requirepass` on the command line instead.
        None => info
            .env_var("REDIS_PASSWORD")
            .map(str::to_string)
            .or_else(|| super::secrets::requirepass(&info.cmd))
            .or_else(|| super::secrets::requirepass(&info.entrypoint)),
    };
    Ok(password
        .map(|p| vec![("REDISCLI_AUTH".to_string(), p)])
        .unwrap_or_default())
}

/// Runs redis-cli; Redis reports errors on stdout with exit 0, so those are caught here.
fn cli(
    docker: &Docker,
    container: &str,
    user: Option<&str>,
    env: &[(String, String)],
    args: &[&str],
) -> Result<String> {
    let mut cmd = vec!["redis-cli", "--no-raw"];
    if let Some(u) = user {
        cmd.extend(["--user", u]);
    }
    cmd.extend(args);
    let out = docker.run_ok(container, &cmd, env)?;
    let first = out.lines().next().unwrap_or("");
    if first.starts_with("(error)")
        || first.starts_with("ERR")
        || first.contains("NOAUTH")
        || first.contains("WRONGPASS")
    {
        return Err(Error::Failed(format!(
            "redis-cli {}: {}",
            args[0],
            first.trim_start_matches("(error) ")
        )));
    }
    Ok(out)
}

/// `INFO` output as key/value pairs.
fn info(
    docker: &Docker,
    container: &str,
    user: Option<&str>,
    env: &[(String, String)],
    section: &str,
) -> Result<HashMap<String, String>> {
    let out = cli(docker, container, user, env, &["INFO", section])?;
    Ok(out
        .lines()
        .filter_map(|l| l.trim_matches('"').split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

fn config_get(
    docker: &Docker,
    container: &str,
    user: Option<&str>,
    env: &[(String, String)],
    key: &str,
) -> Result<String> {
    let mut cmd = vec!["redis-cli", "--raw"];
    if let Some(u) = user {
        cmd.extend(["--user", u]);
    }
    cmd.extend(["CONFIG", "GET", key]);
    let out = docker.run_ok(container, &cmd, env)?;
    out.lines()
        .nth(1)
        .map(str::to_string)
        .ok_or_else(|| Error::Failed(format!("redis-cli CONFIG GET {key}: {}", out.trim())))
}

/// Keys in all databases, with the container's own credentials (a drill's scratch
/// server).
pub fn key_count(docker: &Docker, container: &str) -> Result<u64> {
    let cinfo = docker.running_container(container)?;
    let env = credentials(None, &cinfo)?;
    Ok(info(docker, container, None, &env, "keyspace")?
        .values()
        .filter_map(|v| {
            v.split(',')
                .next()?
                .strip_prefix("keys=")?
                .parse::<u64>()
                .ok()
        })
        .sum())
}

/// Whether the server answers PING (and has loaded its data).
pub fn ready(docker: &Docker, container: &str) -> bool {
    let Ok(cinfo) = docker.running_container(container) else {
        return false;
    };
    let Ok(env) = credentials(None, &cinfo) else {
        return false;
    };
    cli(docker, container, None, &env, &["PING"]).is_ok_and(|o| o.contains("PONG"))
}

/// Saves a fresh RDB and plans to stream it.
pub fn backup(docker: &Docker, def: &SourceDef, rec: &mut SourceRecord) -> Result<Prepared> {
    let container = container_of(def)?;
    let cinfo = docker.running_container(container)?;
    super::record_container(rec, &cinfo);
    let env = credentials(Some(def), &cinfo)?;
    let user = def.user.as_deref();
    let server = info(docker, container, user, &env, "server")?;
    rec.server_version = server.get("redis_version").cloned();
    rec.tool_versions.insert(
        "redis-cli".into(),
        docker.run_ok(container, &["redis-cli", "--version"], &[])?,
    );
    let before = info(docker, container, user, &env, "persistence")?;
    let saves = |i: &HashMap<String, String>| -> (u64, u64) {
        let n = |k: &str| i.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        (n("rdb_saves"), n("rdb_last_save_time"))
    };
    let started = Instant::now();
    // A save already running began before this backup: wait for it, then start ours.
    loop {
        let out = cli(docker, container, user, &env, &["BGSAVE"]);
        match out {
            Ok(_) => break,
            Err(e)
                if e.to_string().contains("already in progress")
                    && started.elapsed() < SAVE_TIMEOUT =>
            {
                std::thread::sleep(Duration::from_millis(200))
            }
            Err(e) => return Err(e),
        }
    }
    let (saves0, time0) = saves(&before);
    loop {
        let now = info(docker, container, user, &env, "persistence")?;
        let (n, t) = saves(&now);
        let idle = now.get("rdb_bgsave_in_progress").map(String::as_str) == Some("0");
        // Redis 7 counts saves; older servers only give the time of the last one.
        if idle && (n > saves0 || (n == 0 && t > time0)) {
            if now.get("rdb_last_bgsave_status").map(String::as_str) != Some("ok") {
                return Err(Error::Failed(
                    "BGSAVE failed; see the Redis server's log".into(),
                ));
            }
            break;
        }
        if started.elapsed() > SAVE_TIMEOUT {
            return Err(Error::Failed("BGSAVE did not finish within an hour".into()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let dir = config_get(docker, container, user, &env, "dir")?;
    let file = config_get(docker, container, user, &env, "dbfilename")?;
    let path = format!("{}/{}", dir.trim_end_matches('/'), file);
    rec.path = Some(path.clone());
    let stream: StreamFile = super::exec_stream(
        docker,
        container,
        RDB_FILE.into(),
        vec!["cat".into(), path],
        Vec::new(),
        None,
    );
    Ok(Prepared {
        streams: vec![stream],
        ..Default::default()
    })
}

/// Refuses a server that holds keys unless forced, and one whose AOF would win over the RDB.
pub fn check_target(
    docker: &Docker,
    _rec: &SourceRecord,
    target: &Target<'_>,
) -> Result<Vec<String>> {
    let cinfo = docker.running_container(&target.container)?;
    let env = credentials(target.def, &cinfo)?;
    let user = target.def.and_then(|d| d.user.as_deref());
    let aof = config_get(docker, &target.container, user, &env, "appendonly")?;
    if aof == "yes" {
        return Err(Error::Usage(format!(
            "Redis in container {} has appendonly=yes: it would load its AOF instead of the restored RDB; turn AOF off for the restore",
            target.container
        )));
    }
    let keys: u64 = info(docker, &target.container, user, &env, "keyspace")?
        .values()
        .filter_map(|v| {
            v.split(',')
                .next()?
                .strip_prefix("keys=")?
                .parse::<u64>()
                .ok()
        })
        .sum();
    if keys > 0 && !target.force {
        return Err(Error::Usage(format!(
            "Redis in container {} holds {keys} keys; pass --force to replace them",
            target.container
        )));
    }
    Ok(vec![format!(
        "Redis in container {} will be restarted with the restored data",
        target.container
    )])
}

/// Stops the server, writes the RDB where it reads it, starts it and waits until loaded.
pub fn restore(
    docker: &Docker,
    _rec: &SourceRecord,
    target: &Target<'_>,
    files: &SnapshotFiles<'_>,
) -> Result<Vec<String>> {
    let container = target.container.as_str();
    let cinfo = docker.running_container(container)?;
    let env = credentials(target.def, &cinfo)?;
    let user = target.def.and_then(|d| d.user.as_deref());
    let dir = config_get(docker, container, user, &env, "dir")?;
    let file = config_get(docker, container, user, &env, "dbfilename")?;
    let owner = docker.run_ok(container, &["stat", "-c", "%u %g", &dir], &[])?;
    let mut ids = owner
        .split_whitespace()
        .map(|v| v.parse::<u32>().unwrap_or(0));
    let (uid, gid) = (ids.next().unwrap_or(0), ids.next().unwrap_or(0));
    let node = files.node(RDB_FILE)?;
    let tar = TarFile {
        name: file,
        size: node.size,
        mode: 0o644,
        uid,
        gid,
        mtime: chrono::Utc::now().timestamp(),
    };
    docker.stop(container, Duration::from_secs(30))?;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let upload = docker.upload_file(container, &dir, &tar, rx)?;
    let streamed = files.stream(RDB_FILE, |b| {
        tx.blocking_send(bytes::Bytes::copy_from_slice(b))
            .map_err(|_| std::io::Error::other("the upload into the container stopped"))
    });
    drop(tx);
    let uploaded = docker.runtime().block_on(upload);
    // Start it again whatever happened: a stopped cache is worse than a stale one.
    let started = docker.start(container);
    streamed?;
    uploaded.map_err(|e| Error::Failed(format!("upload: {e}")))??;
    started?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match cli(docker, container, user, &env, &["PING"]) {
            Ok(out) if out.contains("PONG") => break,
            _ if Instant::now() > deadline => {
                return Err(Error::Failed(format!(
                    "Redis in container {container} did not come back within 2 minutes"
                )))
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    Ok(Vec::new())
}
