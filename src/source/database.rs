//! What the database kinds share: every [`DatabaseDriver`] is a [`SourceDriver`] that
//! needs the Docker daemon, writes its dump files to a directory instead when the
//! restore asks for one, and loads them otherwise; and the steps PostgreSQL and MySQL
//! take alike for each database ([`SqlServer`]).

use super::{
    hold, need_docker, BackupJob, DatabaseDriver, Loaded, Prepared, ReplayJob, RestoreJob, Server,
    SnapshotFiles, SnapshotReader, SourceDriver, Target,
};
use crate::config::SourceDef;
use crate::docker::{ContainerInfo, Docker};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repo::point::SourceRecord;

impl<T: DatabaseDriver> SourceDriver for T {
    fn database(&self) -> Option<&dyn DatabaseDriver> {
        Some(self)
    }

    fn backup_needs_docker(&self, _def: &SourceDef) -> bool {
        true
    }

    fn backup(&self, job: BackupJob<'_>, rec: &mut SourceRecord) -> Result<Prepared> {
        self.dump(need_docker(job.docker)?, &job, rec)
    }

    fn restore_needs_docker(&self, _rec: &SourceRecord, target: &Target<'_>) -> bool {
        target.dir.is_none()
    }

    fn check_target(&self, job: RestoreJob<'_>) -> Result<Vec<String>> {
        let (docker, rec, target) = (job.docker, job.rec, job.target);
        if let Some(dir) = &target.dir {
            return Ok(vec![format!(
                "dump files will be written to {}",
                dir.display()
            )]);
        }
        let docker = need_docker(docker)?;
        if job.replay {
            if let Some(line) = plan_stopped_replay(self, docker, target)? {
                return Ok(vec![line]);
            }
        }
        self.open(target.login(docker))?.plan(rec, target)
    }

    fn restore(
        &self,
        job: RestoreJob<'_>,
        _ledger: &dyn hold::Ledger,
        snapshot: &dyn SnapshotReader,
        progress: &Progress,
    ) -> Result<Loaded> {
        let (docker, rec, target) = (job.docker, job.rec, job.target);
        let files = SnapshotFiles {
            reader: snapshot,
            files: snapshot
                .root()?
                .into_iter()
                .map(|n| (n.os_name().to_string_lossy().into_owned(), n))
                .collect(),
            progress,
        };
        let total = files.files.values().map(|n| n.size).sum();
        progress.set_total(total);
        let loaded = match (&target.dir, target.at) {
            (Some(dir), _) => Loaded {
                bytes: files.write_to(dir)?,
                warnings: Vec::new(),
                replayed_to: None,
            },
            (None, Some(at)) => {
                let replayed = self.replay_to(&ReplayJob {
                    docker: need_docker(docker)?,
                    rec,
                    target,
                    files: &files,
                    at,
                })?;
                Loaded {
                    bytes: total,
                    warnings: replayed.notes,
                    replayed_to: replayed.last_transaction,
                }
            }
            (None, None) => Loaded {
                warnings: self
                    .open(target.login(need_docker(docker)?))?
                    .load(rec, &files)?,
                bytes: total,
                replayed_to: None,
            },
        };
        progress.finish();
        Ok(loaded)
    }
}

/// A SQL server logged in to through `docker exec`, as the steps PostgreSQL and MySQL
/// share see it.
pub(super) trait SqlServer {
    /// What [`SqlServer::database_state`] counts, for the plan ("relations", "tables").
    const UNIT: &'static str;
    /// What separates the columns of [`SqlServer::query_in`]'s output.
    const SEPARATOR: char;

    /// Objects a database holds, or `None` when it does not exist.
    fn database_state(&self, db: &str) -> Result<Option<u64>>;

    /// Drops a database that exists.
    fn drop_database(&self, db: &str) -> Result<()>;

    /// Loads one dump file of the snapshot.
    fn load_dump(&self, files: &SnapshotFiles<'_>, name: &str) -> Result<()>;

    /// Loads what the server keeps beside its databases (roles, accounts) and the dumps
    /// refer to; what the operator should know.
    fn load_server_objects(&self, files: &SnapshotFiles<'_>) -> Result<Vec<String>>;

    /// The rows `sql` gives in `db`, one a line.
    fn query_in(&self, db: &str, sql: &str) -> Result<String>;
}

impl<T: SqlServer> Server for T {
    /// The first column of the first row of `sql` in `db`.
    fn scalar(&self, db: &str, sql: &str) -> Result<String> {
        let out = self.query_in(db, sql)?;
        Ok(out
            .lines()
            .next()
            .unwrap_or("")
            .split(T::SEPARATOR)
            .next()
            .unwrap_or("")
            .to_string())
    }

    /// What a restore will do to each database of the record.
    fn plan(&self, rec: &SourceRecord, target: &Target<'_>) -> Result<Vec<String>> {
        rec.databases
            .iter()
            .map(|db| plan_database(db, self.database_state(db)?, T::UNIT, target))
            .collect()
    }

    /// Loads the server-wide objects, then replaces each database of the record with its
    /// dump: dropped when it exists, then loaded.
    fn load(&self, rec: &SourceRecord, files: &SnapshotFiles<'_>) -> Result<Vec<String>> {
        let warnings = self.load_server_objects(files)?;
        for db in &rec.databases {
            if self.database_state(db)?.is_some() {
                self.drop_database(db)?;
            }
            self.load_dump(files, &dump_file_name(db))?;
        }
        Ok(warnings)
    }
}

/// The snapshot file name of a database's dump: readable, and safe for any name a
/// database server accepts (a dot is escaped, so no database collides with the
/// `*.roles.sql`-style files that hold server-wide objects).
pub fn dump_file_name(database: &str) -> String {
    let mut out = String::new();
    for b in database.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push_str(".sql");
    out
}

/// A restore to a time that replaces the server's data directory needs no running
/// server: a stopped one (a restore that failed half-way leaves it so) is planned from
/// its data directory, which must be empty unless forced. `None`: the server runs, or
/// the kind replays onto a running one (plan it as for a load).
fn plan_stopped_replay<T: DatabaseDriver>(
    kind: &T,
    docker: &Docker,
    target: &Target<'_>,
) -> Result<Option<String>> {
    let info = docker.container(&target.container)?;
    let env: Vec<String> = info.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let Some(dir) = kind.data_dir(&env).filter(|_| info.status != "running") else {
        return Ok(None);
    };
    let holds_data = info
        .host_path(&dir)
        .and_then(|p| std::fs::read_dir(p).ok())
        .is_some_and(|mut entries| entries.next().is_some());
    if holds_data && !target.force {
        return Err(Error::Usage(format!(
            "the server in container {} is stopped and its data directory {dir} holds data; \
             pass --force to replace it",
            target.container
        )));
    }
    Ok(Some(format!(
        "the server in container {} is stopped: its data directory {dir} will be replaced",
        target.container
    )))
}

/// What a restore will do to one database, given how many objects (`unit`) it holds
/// now (`None`: it does not exist); a database holding data is refused unless forced.
fn plan_database(db: &str, state: Option<u64>, unit: &str, target: &Target<'_>) -> Result<String> {
    Ok(match state {
        Some(n) if n > 0 && !target.force => {
            return Err(Error::Usage(format!(
                "database {db} in container {} holds data ({n} {unit}); pass --force to replace it",
                target.container
            )))
        }
        Some(n) if n > 0 => format!("database {db} will be dropped and replaced"),
        Some(_) => format!("empty database {db} will be replaced"),
        None => format!("database {db} will be created"),
    })
}

/// A server as a kind logs in to it, through `docker exec` in its container.
pub(super) trait Login<'a>: Sized {
    /// Logs in as the source's configuration (`def`) says, else as the container's
    /// settings (`info`) do.
    fn login(at: LoginAt<'a>, info: &ContainerInfo) -> Result<Self>;

    /// Logs in to a source's running container for its backup, recording the container
    /// (image, command, environment without credentials) in `rec`.
    fn for_backup(docker: &'a Docker, def: &'a SourceDef, rec: &mut SourceRecord) -> Result<Self> {
        let container = super::container_of(def)?;
        let info = docker.running_container(container)?;
        super::record_container(rec, &info);
        Self::login(
            LoginAt {
                docker,
                container,
                def: Some(def),
            },
            &info,
        )
    }

    /// Logs in to the server of a running container.
    fn open(at: LoginAt<'a>) -> Result<Self> {
        let info = at.docker.running_container(at.container)?;
        Self::login(at, &info)
    }
}

/// Where a kind logs in to a server: the container, with the credentials of `def` (a
/// live server), else the container's own (a drill's scratch server).
pub struct LoginAt<'a> {
    pub docker: &'a Docker,
    pub container: &'a str,
    pub def: Option<&'a SourceDef>,
}

impl<'a> LoginAt<'a> {
    /// A configured source's container, with its credentials.
    pub fn source(docker: &'a Docker, def: &'a SourceDef) -> Result<LoginAt<'a>> {
        Ok(LoginAt {
            docker,
            container: super::container_of(def)?,
            def: Some(def),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_file_names_are_safe_and_distinct() {
        assert_eq!(dump_file_name("seller1"), "seller1.sql");
        assert_eq!(dump_file_name("a.b/c"), "a%2Eb%2Fc.sql");
        assert_ne!(dump_file_name("globals.roles"), "globals.roles.sql");
    }
}
