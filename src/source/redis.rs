//! Redis: `BGSAVE`, wait until that save (not an older one) has finished, then stream the
//! RDB file out of the container. Restore stops the server, puts the RDB in its place and
//! starts it again, since Redis reads its RDB only at startup.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::database::{Login, LoginAt};
use super::{
    container_of, password_from_file, BackupJob, DatabaseDriver, Prepared, Server, ServerFor,
    SnapshotFiles, StreamFile, Target,
};
use crate::config::SourceDef;
use crate::docker::{ContainerInfo, Docker, TarFile};
use crate::error::{Error, Result};
use crate::repo::point::SourceRecord;

/// The snapshot's one file.
pub const RDB_FILE: &str = "dump.rdb";
/// The longest a BGSAVE may take.
const SAVE_TIMEOUT: Duration = Duration::from_secs(3600);

/// The Redis kind.
pub struct Redis;

/// A server as drctl logs in to it: the user, and the exec environment carrying the
/// password.
struct Session<'a> {
    docker: &'a Docker,
    container: &'a str,
    user: Option<String>,
    env: Vec<(String, String)>,
}

impl<'a> Login<'a> for Session<'a> {
    /// With the password from the file, `REDIS_PASSWORD` or `--requirepass`.
    fn login(at: LoginAt<'a>, info: &ContainerInfo) -> Result<Session<'a>> {
        let (docker, container, def) = (at.docker, at.container, at.def);
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
        Ok(Session {
            docker,
            container,
            user: def.and_then(|d| d.user.clone()),
            env: password
                .map(|p| vec![("REDISCLI_AUTH".to_string(), p)])
                .unwrap_or_default(),
        })
    }
}

impl Server for Session<'_> {
    /// Keys in all databases.
    fn key_count(&self) -> Result<u64> {
        Ok(self
            .info("keyspace")?
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

    /// Refuses a server that holds keys unless forced, and one whose AOF would win over
    /// the RDB.
    fn plan(&self, _rec: &SourceRecord, target: &Target<'_>) -> Result<Vec<String>> {
        let session = self;
        if session.config_get("appendonly")? == "yes" {
            return Err(Error::Usage(format!(
                "Redis in container {} has appendonly=yes: it would load its AOF instead of the restored RDB; turn AOF off for the restore",
                target.container
            )));
        }
        let keys = session.key_count()?;
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

    /// Stops the server, writes the RDB where it reads it, starts it and waits until
    /// loaded.
    fn load(&self, _rec: &SourceRecord, files: &SnapshotFiles<'_>) -> Result<Vec<String>> {
        let (docker, container, session) = (self.docker, self.container, self);
        let (dir, file) = session.rdb_location()?;
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
        while !session.pong() {
            if Instant::now() > deadline {
                return Err(Error::Failed(format!(
                    "Redis in container {container} did not come back within 2 minutes"
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(Vec::new())
    }
}

impl<'a> Session<'a> {
    /// Runs redis-cli in `mode` (`--raw`, `--no-raw`) with `args`.
    fn run(&self, mode: &str, args: &[&str]) -> Result<String> {
        let mut cmd = vec!["redis-cli", mode];
        if let Some(u) = self.user.as_deref() {
            cmd.extend(["--user", u]);
        }
        cmd.extend(args);
        self.docker.run_ok(self.container, &cmd, &self.env)
    }

    /// Runs redis-cli; Redis reports errors on stdout with exit 0, so those are caught here.
    fn cli(&self, args: &[&str]) -> Result<String> {
        let out = self.run("--no-raw", args)?;
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
    fn info(&self, section: &str) -> Result<HashMap<String, String>> {
        let out = self.cli(&["INFO", section])?;
        Ok(out
            .lines()
            .filter_map(|l| l.trim_matches('"').split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect())
    }

    fn config_get(&self, key: &str) -> Result<String> {
        let out = self.run("--raw", &["CONFIG", "GET", key])?;
        out.lines()
            .nth(1)
            .map(str::to_string)
            .ok_or_else(|| Error::Failed(format!("redis-cli CONFIG GET {key}: {}", out.trim())))
    }

    /// Whether the server answers PING (and has loaded its data).
    fn pong(&self) -> bool {
        self.cli(&["PING"]).is_ok_and(|o| o.contains("PONG"))
    }

    /// Makes the server write a fresh RDB, and waits until that save has finished.
    fn bgsave(&self) -> Result<()> {
        let before = self.info("persistence")?;
        let saves = |i: &HashMap<String, String>| -> (u64, u64) {
            let n = |k: &str| i.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
            (n("rdb_saves"), n("rdb_last_save_time"))
        };
        let started = Instant::now();
        // A save already running began before this backup: wait for it, then start ours.
        loop {
            let out = self.cli(&["BGSAVE"]);
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
            let now = self.info("persistence")?;
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
        Ok(())
    }

    /// The directory the server keeps its RDB in, and the file's name there.
    fn rdb_location(&self) -> Result<(String, String)> {
        Ok((self.config_get("dir")?, self.config_get("dbfilename")?))
    }
}

impl DatabaseDriver for Redis {
    fn open<'a>(&self, at: LoginAt<'a>) -> ServerFor<'a> {
        Ok(Box::new(Session::open(at)?))
    }

    fn trial(&self, docker: &Docker, def: &SourceDef) -> Result<String> {
        let mut rec = SourceRecord::new(def.name.get_ref(), def.kind);
        let session = Session::for_backup(docker, def, &mut rec)?;
        let server = session.info("server")?;
        Ok(format!(
            "Redis {}",
            server.get("redis_version").cloned().unwrap_or_default()
        ))
    }

    /// Saves a fresh RDB and plans to stream it.
    fn dump(
        &self,
        docker: &Docker,
        job: &BackupJob<'_>,
        rec: &mut SourceRecord,
    ) -> Result<Prepared> {
        let def = job.def;
        let container = container_of(def)?;
        let session = Session::for_backup(docker, def, rec)?;
        let server = session.info("server")?;
        rec.server_version = server.get("redis_version").cloned();
        rec.tool_versions.insert(
            "redis-cli".into(),
            docker.run_ok(container, &["redis-cli", "--version"], &[])?,
        );
        session.bgsave()?;
        let (dir, file) = session.rdb_location()?;
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

    fn scratch_credentials(&self, password: &str) -> Vec<String> {
        vec![format!("REDIS_PASSWORD={password}")]
    }

    /// Answering PING (and having loaded its data), with the container's own credentials.
    fn port(&self) -> u16 {
        6379
    }

    fn ready(&self, docker: &Docker, container: &str) -> bool {
        Session::open(LoginAt {
            docker,
            container,
            def: None,
        })
        .is_ok_and(|s| s.pong())
    }
}
