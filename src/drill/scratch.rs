//! A drill's scratch resources: one Docker network with no route out, throwaway database
//! servers on it (no published ports, throwaway credentials), and directories.
//!
//! Every container and network carries the label [`LABEL`] with the drill's run ID and
//! its owning process, and every directory lives under `<state dir>/drill-scratch/<run
//! ID>/`. That directory is made first and records the owning process too, so a drctl
//! killed mid-drill leaves a trace that the next drctl command finds cheaply ([`sweep`])
//! before it asks Docker for what carries the label. A labelled resource is a stray only
//! when its own owner is dead: a drctl with another data directory (another user, another
//! configuration) never takes a running drill's resources for strays.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::docker::{ContainerSpec, Docker};
use crate::error::{Error, Result};
use crate::repo::point::SourceRecord;
use crate::source::{self, secrets};

/// The label on every scratch container and network; its value is `<run ID>@<owner>`.
pub const LABEL: &str = "io.drctl.drill";
/// How long a scratch server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// The file in a run's scratch directory naming the process that owns it.
const OWNER_FILE: &str = "owner";

/// The scratch directory root of a data directory.
pub fn root(data_dir: &Path) -> PathBuf {
    data_dir.join("drill-scratch")
}

/// A started scratch database server.
pub struct ScratchServer {
    /// Container name.
    pub name: String,
    /// Image reference it runs.
    pub image: String,
    /// Things the operator should know (an image found only by its tag).
    pub warnings: Vec<String>,
}

/// The scratch resources of one drill run; removed on drop unless kept.
pub struct Scratch {
    docker: Option<Docker>,
    /// The run's ID (the label's value).
    pub run_id: String,
    /// `<data dir>/drill-scratch/<run ID>`.
    pub dir: PathBuf,
    network: Option<String>,
    containers: Vec<String>,
    /// Leave everything in place (`--keep`).
    pub keep: bool,
}

impl Scratch {
    /// Claims a run directory (recording this process) before anything else is made.
    pub fn new(data_dir: &Path, run_id: &str, docker: Option<Docker>) -> Result<Scratch> {
        let dir = root(data_dir).join(run_id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        std::fs::write(dir.join(OWNER_FILE), owner_token(std::process::id() as i32))
            .map_err(|e| Error::io(format!("writing {}", dir.display()), e))?;
        Ok(Scratch {
            docker,
            run_id: run_id.to_string(),
            dir,
            network: None,
            containers: Vec::new(),
            keep: false,
        })
    }

    fn docker(&self) -> Result<&Docker> {
        source::need_docker(self.docker.as_ref())
    }

    fn labels(&self) -> HashMap<String, String> {
        let owner = owner_token(std::process::id() as i32);
        HashMap::from([(LABEL.to_string(), format!("{}@{owner}", self.run_id))])
    }

    /// A directory for a volume source.
    pub fn directory(&self, source: &str) -> Result<PathBuf> {
        let d = self.dir.join("volumes").join(source);
        std::fs::create_dir_all(&d)
            .map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
        Ok(d)
    }

    /// The run's network: internal, so its containers reach nothing and nothing them.
    fn network(&mut self) -> Result<String> {
        if let Some(n) = &self.network {
            return Ok(n.clone());
        }
        let name = format!("drctl-drill-{}", self.run_id);
        self.docker()?
            .create_internal_network(&name, &self.labels())?;
        self.network = Some(name.clone());
        Ok(name)
    }

    /// Starts a server like the one a source was backed up from: the same image (by
    /// digest when the store still has it), entrypoint and command, with throwaway
    /// credentials, and waits until it accepts connections. For a restore that writes
    /// the server's data directory itself (`replayed`: a base backup replayed to a time)
    /// the container is only created: starting it would initialise a database that the
    /// restore then throws away.
    pub fn server(&mut self, rec: &SourceRecord, replayed: bool) -> Result<ScratchServer> {
        let db = source::driver(rec.kind)
            .database()
            .expect("volumes restore into directories");
        let network = self.network()?;
        let docker = self.docker()?.clone();
        let (image, warnings) = resolve_image(&docker, rec)?;
        let name = format!("drctl-drill-{}-{}", self.run_id, rec.name);
        let password = hex::encode(rand::random::<[u8; 16]>());
        let credentials = db.scratch_credentials(&password);
        // The original's configuration (PGDATA, POSTGRES_DB, MYSQL_DATABASE, ...), with
        // throwaway credentials instead of its own (which were never recorded); a
        // credential redacted from its command line becomes the throwaway one too, so
        // that drctl can log in to the server it started.
        let ours: Vec<&str> = credentials
            .iter()
            .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
            .collect();
        let mut env: Vec<String> = rec
            .environment
            .iter()
            .filter(|kv| kv.split_once('=').is_none_or(|(k, _)| !ours.contains(&k)))
            .cloned()
            .collect();
        env.extend(credentials.iter().cloned());
        let labels = self.labels();
        // The data directory on a volume of its own, as the official images declare it:
        // a restore to a point in time writes it from this host.
        let volumes: Vec<String> = db.data_dir(&env).into_iter().collect();
        let start = !replayed || volumes.is_empty();
        let spec = ContainerSpec {
            name: &name,
            image: &image,
            env,
            entrypoint: secrets::with_password(&rec.entrypoint, &password),
            cmd: secrets::with_password(&rec.command, &password),
            labels: &labels,
            network: &network,
            volumes,
        };
        // Recorded before it is started, so that a failed start is removed too.
        self.containers.push(name.clone());
        if !start {
            docker.create(spec, "scratch container")?;
            return Ok(ScratchServer {
                name,
                image,
                warnings,
            });
        }
        docker.create_and_start(spec, "scratch container")?;
        let deadline = Instant::now() + READY_TIMEOUT;
        while !db.ready(&docker, &name) {
            let info = docker.container(&name)?;
            if info.status != "running" || Instant::now() > deadline {
                let logs = docker.last_logs(&name, 10);
                return Err(Error::Failed(format!(
                    "scratch server {name} ({image}) did not start: {}{}",
                    if info.status == "running" {
                        format!("not ready after {}s", READY_TIMEOUT.as_secs())
                    } else {
                        format!("it is {}", info.status)
                    },
                    if logs.is_empty() {
                        String::new()
                    } else {
                        format!("; its last log lines:\n{logs}")
                    }
                )));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Ok(ScratchServer {
            name,
            image,
            warnings,
        })
    }

    /// Removes everything now (unless kept); errors are collected, not fatal.
    pub fn remove(&mut self) -> Vec<String> {
        if self.keep {
            return Vec::new();
        }
        let mut errors = Vec::new();
        if let Some(docker) = &self.docker {
            for c in self.containers.drain(..) {
                if let Err(e) = docker.remove_container(&c, "scratch container") {
                    errors.push(e.to_string());
                }
            }
            if let Some(n) = self.network.take() {
                if let Err(e) = docker.remove_network(&n, "scratch network") {
                    errors.push(e.to_string());
                }
            }
        }
        if self.dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(&self.dir) {
                errors.push(format!("removing {}: {e}", self.dir.display()));
            }
        }
        errors
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for e in self.remove() {
            eprintln!("warning: drill cleanup: {e}");
        }
    }
}

/// The image to start: the recorded digest when the daemon has it, else the recorded
/// name (with a warning when its digest has changed since the backup).
fn resolve_image(docker: &Docker, rec: &SourceRecord) -> Result<(String, Vec<String>)> {
    let name = rec.image.clone().unwrap_or_default();
    let digest = rec.image_digest.clone().unwrap_or_default();
    let repo = name
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
        .map_or(name.as_str(), |(r, _)| r);
    let mut candidates = Vec::new();
    if !digest.is_empty() {
        candidates.push(digest.clone());
        if !repo.is_empty() {
            candidates.push(format!("{repo}@{digest}"));
        }
    }
    for c in &candidates {
        if docker.image_exists(c) {
            return Ok((c.clone(), Vec::new()));
        }
    }
    if !name.is_empty() && docker.image_exists(&name) {
        let warning = (!digest.is_empty()).then(|| {
            format!(
                "{}: image {digest} recorded at backup time is gone; using {name} as it is now",
                rec.name
            )
        });
        return Ok((name, warning.into_iter().collect()));
    }
    Err(Error::Failed(format!(
        "{}: neither the recorded image {digest} nor {name} is on this Docker host; pull it first",
        rec.name
    )))
}

/// A process as `pid:start`, its start time (in clock ticks since boot) telling it from a
/// later process that got the same PID.
pub fn owner_token(pid: i32) -> String {
    match start_ticks(pid) {
        Some(t) => format!("{pid}:{t}"),
        None => pid.to_string(),
    }
}

/// Field 22 of `/proc/PID/stat`, read after the parenthesised command name, which may
/// itself hold spaces and parentheses.
fn start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after) = stat.rsplit_once(')')?;
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process a token names is alive and the same process.
pub fn alive(token: &str) -> bool {
    let (pid, start) = match token.trim().split_once(':') {
        Some((p, s)) => (p, s.parse::<u64>().ok()),
        None => (token.trim(), None),
    };
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let exists = pid > 0 && unsafe { libc::kill(pid, 0) } == 0;
    exists && start.is_none_or(|s| start_ticks(pid).is_none_or(|now| now == s))
}

/// Whether the run `run_id` is owned by a live process (its directory names one).
fn owned(data_dir: &Path, run_id: &str) -> bool {
    std::fs::read_to_string(root(data_dir).join(run_id).join(OWNER_FILE))
        .ok()
        .is_some_and(|s| alive(&s))
}

/// Whether a labelled resource belongs to a live drill: by the owner in its label, or,
/// for a label without one, by the run directory in this data directory.
fn labelled_owned(data_dir: &Path, value: &str) -> bool {
    match value.split_once('@') {
        Some((_, owner)) => alive(owner),
        None => owned(data_dir, value),
    }
}

/// Removes labelled containers and networks whose run no live process owns, directory or
/// not: a drctl killed while the daemon was creating a container leaves one that appears
/// only after [`sweep`] removed the run's directory. A drill, which asks Docker anyway,
/// calls this first. Returns what it removed.
pub fn sweep_strays(data_dir: &Path, docker: &Docker) -> Vec<String> {
    let mut removed = Vec::new();
    for (name, value) in docker.containers_with_label(LABEL) {
        if !labelled_owned(data_dir, &value)
            && docker.remove_container(&name, "scratch container").is_ok()
        {
            removed.push(format!("container {name}"));
        }
    }
    for (name, value) in docker.networks_with_label(LABEL) {
        if !labelled_owned(data_dir, &value)
            && docker.remove_network(&name, "scratch network").is_ok()
        {
            removed.push(format!("network {name}"));
        }
    }
    removed
}

/// Removes what killed drills left: run directories whose owner is dead, and the
/// containers and networks labelled with their run IDs. Cheap when nothing is left:
/// Docker is asked only when such a directory exists. Returns what it removed.
pub fn sweep(data_dir: &Path, docker: impl FnOnce() -> Option<Docker>) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root(data_dir)) else {
        return Vec::new();
    };
    let mut dead = Vec::new();
    for e in entries.flatten() {
        if !owned(data_dir, &e.file_name().to_string_lossy()) {
            dead.push(e.path());
        }
    }
    if dead.is_empty() {
        return Vec::new();
    }
    // Without Docker the directories stay, so that a later command retries.
    let Some(d) = docker() else {
        return Vec::new();
    };
    // Their owners are dead, so every labelled resource of their runs is a stray.
    let mut removed = sweep_strays(data_dir, &d);
    for path in dead {
        if std::fs::remove_dir_all(&path).is_ok() {
            removed.push(format!("directory {}", path.display()));
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_is_alive_only_as_the_same_process() {
        let me = owner_token(std::process::id() as i32);
        assert!(me.contains(':'), "{me}");
        assert!(alive(&me));
        // The same PID with another start time is a later process: the owner is dead.
        let (pid, start) = me.split_once(':').unwrap();
        let reborn = format!("{pid}:{}", start.parse::<u64>().unwrap() + 1);
        assert!(!alive(&reborn));
        assert!(!alive("2147483646:1"));
        assert!(!alive("not-a-pid"));
        // A label names its owner; one without names its run directory in this data dir.
        let dir = tempfile::tempdir().unwrap();
        assert!(labelled_owned(dir.path(), &format!("r1@{me}")));
        assert!(!labelled_owned(dir.path(), "r1@2147483646:1"));
        assert!(!labelled_owned(dir.path(), "r1"));
        let run = root(dir.path()).join("r1");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join(OWNER_FILE), &me).unwrap();
        assert!(labelled_owned(dir.path(), "r1"));
    }
}
