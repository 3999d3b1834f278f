//! MySQL and MariaDB: `mariadb-dump`/`mysqldump` per database with
//! `--single-transaction` (a consistent InnoDB view without locking writers), routines,
//! triggers and events; on MariaDB also the accounts (`--system=users`).
//!
//! With `pitr = true` and row-based binary logging on, each dump records where its
//! snapshot lies in the binary log (`--master-data=2`), the dumps are a base backup, the
//! archive stores the binary log as it is written ([`binlog`]), and a restore to a time
//! loads the dumps and replays the log from there ([`replay`]).

pub mod binlog;
mod replay;

use super::database::{dump_file_name, Login, LoginAt, SqlServer};
use super::{
    container_of, exec_stream, password_from_file, BackupJob, DatabaseDriver, Prepared, ReplayJob,
    Replayed, ServerFor, SnapshotFiles,
};
use crate::config::SourceDef;
use crate::docker::{ContainerInfo, Docker};
use crate::error::{Error, Result};
use crate::repo::point::{BaseBackup, SourceRecord};

/// The file holding accounts and grants (MariaDB only).
pub const USERS_FILE: &str = "users.grants.sql";
/// The last line of a finished dump.
const DUMP_MARKER: &str = "-- Dump completed";
/// Schemas of the server itself.
const SYSTEM_SCHEMAS: [&str; 4] = ["information_schema", "performance_schema", "sys", "mysql"];

/// The MySQL and MariaDB kind.
pub struct Mysql;

/// The dump tool and the client in this container (MariaDB names first).
struct Tools {
    dump: String,
    client: String,
}

/// The first of `names` (space-separated) the container has.
fn find_tool(docker: &Docker, container: &str, names: &str) -> Result<String> {
    let path = docker.run_ok(
        container,
        &[
            "sh",
            "-c",
            &format!("for t in {names}; do command -v $t && exit 0; done; exit 1"),
        ],
        &[],
    )?;
    Ok(path.rsplit('/').next().unwrap_or(&path).to_string())
}

fn tools(docker: &Docker, container: &str) -> Result<Tools> {
    let find = |names: &str| find_tool(docker, container, names);
    Ok(Tools {
        dump: find("mariadb-dump mysqldump").map_err(|_| {
            Error::Failed(format!(
                "container {container} has neither mariadb-dump nor mysqldump"
            ))
        })?,
        client: find("mariadb mysql").map_err(|_| {
            Error::Failed(format!(
                "container {container} has neither mariadb nor mysql"
            ))
        })?,
    })
}

/// The user and the exec environment carrying the password.
fn credentials(
    def: Option<&SourceDef>,
    info: &ContainerInfo,
) -> Result<(String, Vec<(String, String)>)> {
    let user = def
        .and_then(|d| d.user.clone())
        .unwrap_or_else(|| "root".into());
    let password = match password_from_file(def)? {
        Some(p) => Some(p),
        None if user == "root" => info
            .env_var("MARIADB_ROOT_PASSWORD")
            .or_else(|| info.env_var("MYSQL_ROOT_PASSWORD"))
            .map(str::to_string),
        None => [
            ("MARIADB_USER", "MARIADB_PASSWORD"),
            ("MYSQL_USER", "MYSQL_PASSWORD"),
        ]
        .iter()
        .find(|(u, _)| info.env_var(u) == Some(user.as_str()))
        .and_then(|(_, p)| info.env_var(p))
        .map(str::to_string),
    };
    let mut env = Vec::new();
    if let Some(p) = password {
        env.push(("MYSQL_PWD".to_string(), p));
    }
    Ok((user, env))
}

/// A server as drctl logs in to it, with the container's tools.
struct Session<'a> {
    docker: &'a Docker,
    container: &'a str,
    tools: Tools,
    user: String,
    env: Vec<(String, String)>,
}

impl<'a> Login<'a> for Session<'a> {
    /// With the container's own client tools, as its root password variables say.
    fn login(at: LoginAt<'a>, info: &ContainerInfo) -> Result<Session<'a>> {
        let (docker, container, def) = (at.docker, at.container, at.def);
        let tools = tools(docker, container)?;
        let (user, env) = credentials(def, info)?;
        Ok(Session {
            docker,
            container,
            tools,
            user,
            env,
        })
    }
}

impl<'a> Session<'a> {
    /// Runs a statement; its rows without the header, columns split by tabs.
    fn query(&self, sql: &str) -> Result<String> {
        self.run(&["-N", "-B", "-e", sql])
    }

    /// The first of `names` (space-separated) the container has.
    fn find_tool(&self, names: &str) -> Result<String> {
        find_tool(self.docker, self.container, names)
            .map_err(|_| Error::Failed(format!("container {} has none of {names}", self.container)))
    }

    /// Runs the client with `args`.
    fn run(&self, args: &[&str]) -> Result<String> {
        let mut cmd = vec![self.tools.client.as_str(), "-u", &self.user];
        cmd.extend(args);
        self.docker.run_ok(self.container, &cmd, &self.env)
    }
}

impl SqlServer for Session<'_> {
    const UNIT: &'static str = "tables";
    const SEPARATOR: char = '\t';

    /// The accounts, when the snapshot has them (MariaDB). Accounts that exist are kept as
    /// they are (`CREATE USER IF NOT EXISTS`); `--force` lets the rest load when one grant
    /// names something missing. The statements for the account this restore connects as
    /// are left out: their `GRANT ... IDENTIFIED BY PASSWORD` would set the target's
    /// password to the source's and lock the rest of the restore (and a drill's checks)
    /// out. The file is small: grants only.
    fn load_server_objects(&self, files: &SnapshotFiles<'_>) -> Result<Vec<String>> {
        if !files.files.contains_key(USERS_FILE) {
            return Ok(Vec::new());
        }
        let own = format!("`{}`@", self.user);
        let kept: String = files
            .text(USERS_FILE)?
            .lines()
            .filter(|l| !l.contains(&own))
            .map(|l| format!("{l}\n"))
            .collect();
        let out = self.docker.run(
            self.container,
            &[&self.tools.client, "-u", &self.user, "--force"],
            &self.env,
            Some(kept.as_bytes()),
        );
        Ok(match out {
            Ok(o) if o.exit_code == Some(0) => Vec::new(),
            Ok(o) => vec![format!("accounts: {}", o.stderr.trim())],
            Err(e) => vec![format!("accounts: {e}")],
        })
    }

    /// Whether a database exists, and how many tables it holds.
    fn database_state(&self, db: &str) -> Result<Option<u64>> {
        let count = |what: &str, column: &str| {
            self.query(&format!(
                "SELECT COUNT(*) FROM information_schema.{what} WHERE {column} = {}",
                literal(db)
            ))
        };
        if count("schemata", "schema_name")?.trim() == "0" {
            return Ok(None);
        }
        let n = count("tables", "table_schema")?;
        Ok(Some(n.trim().parse().unwrap_or(0)))
    }

    fn drop_database(&self, db: &str) -> Result<()> {
        self.query(&format!("DROP DATABASE {}", ident(db)))?;
        Ok(())
    }

    fn load_dump(&self, files: &SnapshotFiles<'_>, name: &str) -> Result<()> {
        files.feed(
            self.docker,
            self.container,
            name,
            &[&self.tools.client, "-u", &self.user],
            &self.env,
        )?;
        Ok(())
    }

    fn query_in(&self, db: &str, sql: &str) -> Result<String> {
        self.run(&["-N", "-B", "-D", db, "-e", sql])
    }
}

/// Why a server cannot be restored to a time between its dumps, from `@@log_bin` and
/// `@@binlog_format`: what to change when binary logging is off (the official images'
/// default) or not row-based; `None` when its binary log can be archived.
fn binlog_state(vars: &str, container: &str) -> Option<String> {
    let mut v = vars.split_whitespace();
    Some(match (v.next(), v.next()) {
        (Some("0"), _) | (None, _) => format!(
            "binary logging is off in container {container}: add --log-bin \
             --binlog-format=ROW --server-id=1 to its command (in compose: command: \
             [\"--log-bin\", \"--binlog-format=ROW\", \"--server-id=1\"]); until then a \
             restore reaches only the dumps"
        ),
        (_, Some(format)) if format != "ROW" => format!(
            "binlog_format is {format} in container {container}: set --binlog-format=ROW; \
             until then a restore reaches only the dumps"
        ),
        _ => return None,
    })
}

/// Where the binary log is before the dumps start, as the base backup's start: each
/// dump's own position (its header) is at or after it, so the archive kept from here on
/// covers every dump.
fn base_position(session: &Session<'_>) -> Result<BaseBackup> {
    let out = session.query(&format!("{}; SHOW MASTER STATUS", binlog::SYSTEM_QUERY))?;
    let (file, pos) = binlog::file_rows(&out).into_iter().next().ok_or_else(|| {
        Error::Failed(format!(
            "container {}: SHOW MASTER STATUS gave no binary log position",
            session.container
        ))
    })?;
    Ok(BaseBackup {
        file: String::new(),
        timeline: 1,
        wal_start: format!("{file}:{pos}"),
        system: binlog::parse_system(&out),
        ended: None,
        wal_in_archive: false,
    })
}

/// `'text'` as an SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// `` `name` `` as an SQL identifier.
fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

impl DatabaseDriver for Mysql {
    fn open<'a>(&self, at: LoginAt<'a>) -> ServerFor<'a> {
        Ok(Box::new(Session::open(at)?))
    }

    fn trial(&self, docker: &Docker, def: &SourceDef) -> Result<String> {
        let container = container_of(def)?;
        let mut rec = SourceRecord::new(def.name.get_ref(), def.kind);
        let session = Session::for_backup(docker, def, &mut rec)?;
        let version = session.query("SELECT VERSION()")?;
        if def.pitr() {
            let vars = session.query("SELECT @@log_bin, @@binlog_format")?;
            if let Some(why) = binlog_state(&vars, container) {
                return Err(Error::Failed(why));
            }
        }
        let present = session.query("SHOW DATABASES")?;
        if let Some(db) = def
            .databases
            .iter()
            .find(|d| !present.lines().any(|l| l == d.as_str()))
        {
            return Err(Error::Failed(format!(
                "database {db} does not exist in container {container}"
            )));
        }
        Ok(format!("MariaDB/MySQL {}", version.trim()))
    }

    /// Checks the server and plans one dump per database, plus the accounts on MariaDB.
    fn dump(
        &self,
        docker: &Docker,
        job: &BackupJob<'_>,
        rec: &mut SourceRecord,
    ) -> Result<Prepared> {
        let def = job.def;
        let container = container_of(def)?;
        let session = Session::for_backup(docker, def, rec)?;
        let (tools, user, env) = (&session.tools, &session.user, &session.env);
        rec.server_version = Some(session.query("SELECT VERSION()")?);
        if def.pitr() {
            rec.pitr_unavailable = binlog_state(
                &session.query("SELECT @@log_bin, @@binlog_format")?,
                container,
            );
            if rec.pitr_unavailable.is_none() {
                rec.base = Some(base_position(&session)?);
            }
        }
        let position: &[&str] = if rec.base.is_some() {
            &["--master-data=2"]
        } else {
            &[]
        };
        rec.tool_versions.insert(
            tools.dump.clone(),
            docker.run_ok(container, &[&tools.dump, "--version"], &[])?,
        );
        let present: Vec<String> = session
            .query("SHOW DATABASES")?
            .lines()
            .map(str::to_string)
            .collect();
        let databases: Vec<String> = if def.databases.is_empty() {
            present
                .into_iter()
                .filter(|d| !SYSTEM_SCHEMAS.contains(&d.as_str()))
                .collect()
        } else {
            for db in &def.databases {
                if !present.contains(db) {
                    return Err(Error::Failed(format!(
                        "database {db} does not exist in container {container}"
                    )));
                }
            }
            def.databases.clone()
        };
        rec.databases = databases.clone();
        let base = |extra: &[&str]| -> Vec<String> {
            let mut cmd = vec![tools.dump.clone(), "-u".into(), user.clone()];
            cmd.extend(extra.iter().map(|s| s.to_string()));
            cmd
        };
        let mut streams = Vec::new();
        if tools.dump == "mariadb-dump" {
            streams.push(exec_stream(
                docker,
                container,
                USERS_FILE.into(),
                base(&["--system=users", "--insert-ignore", "--skip-add-locks"]),
                env.clone(),
                Some(DUMP_MARKER),
            ));
        }
        for db in databases {
            let mut cmd = base(&[
                "--single-transaction",
                "--routines",
                "--triggers",
                "--events",
                "--hex-blob",
                "--default-character-set=utf8mb4",
            ]);
            cmd.extend(position.iter().map(|s| s.to_string()));
            cmd.extend(["--databases".to_string(), db.clone()]);
            streams.push(exec_stream(
                docker,
                container,
                dump_file_name(&db),
                cmd,
                env.clone(),
                Some(DUMP_MARKER),
            ));
        }
        Ok(Prepared {
            streams,
            ..Default::default()
        })
    }

    fn scratch_credentials(&self, password: &str) -> Vec<String> {
        vec![
            format!("MARIADB_ROOT_PASSWORD={password}"),
            format!("MYSQL_ROOT_PASSWORD={password}"),
        ]
    }

    /// Answering on TCP: an image's init phase runs without networking.
    fn replay_plan(&self, files: usize, to: &str) -> String {
        format!(
            "the dumps will be loaded and {files} archived binary log file(s) replayed from \
             each dump's position to {to}"
        )
    }

    fn replay_to(&self, job: &ReplayJob<'_>) -> Result<Replayed> {
        replay::restore(job)
    }

    fn port(&self) -> u16 {
        3306
    }

    fn ready(&self, docker: &Docker, container: &str) -> bool {
        let Ok(info) = docker.running_container(container) else {
            return false;
        };
        let Ok((user, env)) = credentials(None, &info) else {
            return false;
        };
        let probe = format!(
            "for t in mariadb-admin mysqladmin; do command -v $t >/dev/null && exec $t ping -h 127.0.0.1 -u '{user}' --silent; done; exit 1"
        );
        docker
            .run(container, &["sh", "-c", &probe], &env, None)
            .is_ok_and(|o| o.exit_code == Some(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(literal("a'b\\c"), "'a''b\\\\c'");
        assert_eq!(ident("we`ird"), "`we``ird`");
    }
}
