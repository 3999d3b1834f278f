//! PostgreSQL: `pg_dump --create` per database (plain SQL: it deduplicates well between
//! runs and restores with `psql`) plus `pg_dumpall --globals-only` for roles, all run in
//! the server's own container so the tools match the server.

mod label;
pub mod pitr;
pub mod wal;

use std::sync::{Arc, Mutex};

use label::{BaseStart, LabelTap};

use super::database::{dump_file_name, Login, LoginAt, SqlServer};
use super::{
    container_of, exec_stream, password_from_file, BackupJob, DatabaseDriver, Prepared, ReplayJob,
    Replayed, ServerFor, SnapshotFiles,
};
use crate::config::SourceDef;
use crate::docker::{self, ContainerInfo, Docker};
use crate::error::{Error, Result};
use crate::repo::point::{BaseBackup, SourceRecord};

/// The file holding roles and tablespaces.
pub const GLOBALS_FILE: &str = "globals.roles.sql";
/// The last line pg_dump writes; a dump without it was cut short.
const DUMP_MARKER: &str = "-- PostgreSQL database dump complete";
/// The last line pg_dumpall writes.
const DUMPALL_MARKER: &str = "-- PostgreSQL database cluster dump complete";

/// The base backup's file in the snapshot.
pub const BASE_FILE: &str = "base.tar";
/// The server's own tool writes the data directory as one tar to stdout after an
/// immediate checkpoint, with the WAL that makes it consistent (`-X fetch`: streaming
/// WAL is not possible to stdout), or without it (`-X none`) when the archive is live and
/// holds that WAL anyway. A restore to a time replays the archive's WAL from the base's
/// start in both cases. With its own WAL the tar alone (`restore --to DIR`) still starts
/// a server, which is worth its segments when nothing else is storing them; while the
/// archive runs they would be stored twice, and the server sends them as whole 16 MiB
/// segments after the data (`-X fetch` took 1.09 and 1.19 times as long as `-X none` in
/// two runs of `scripts/bench-pitr.sh` on a 2-million-row database).
fn base_backup_command(wal_in_archive: bool) -> Vec<String> {
    let wal = if wal_in_archive { "none" } else { "fetch" };
    [
        "pg_basebackup",
        "-D",
        "-",
        "-F",
        "t",
        "-X",
        wal,
        "-c",
        "fast",
        "-l",
        "drctl base backup",
    ]
    .map(str::to_string)
    .to_vec()
}

/// How long the probe waits for the base backup to start before it runs anyway.
const BASE_FIRST_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The PostgreSQL kind.
pub struct Postgres;

/// psql for scripts: no psqlrc, unaligned tuples only, stop at the first error.
fn psql_cmd(db: &str) -> Vec<&str> {
    vec![
        "psql",
        "-X",
        "-A",
        "-t",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        db,
    ]
}

/// A server as drctl logs in to it: the tools' connection settings, passed through the
/// exec environment.
#[derive(Clone)]
struct Session {
    docker: Docker,
    container: String,
    user: String,
    env: Vec<(String, String)>,
}

impl Login<'_> for Session {
    /// As `POSTGRES_USER` and `POSTGRES_PASSWORD` say, unless configured.
    fn login(at: LoginAt<'_>, info: &ContainerInfo) -> Result<Session> {
        let (docker, container, def) = (at.docker, at.container, at.def);
        let user = def
            .and_then(|d| d.user.clone())
            .or_else(|| info.env_var("POSTGRES_USER").map(str::to_string))
            .unwrap_or_else(|| "postgres".into());
        let mut env = vec![("PGUSER".to_string(), user.clone())];
        let password = match password_from_file(def)? {
            Some(p) => Some(p),
            None => info.env_var("POSTGRES_PASSWORD").map(str::to_string),
        };
        if let Some(p) = password {
            env.push(("PGPASSWORD".into(), p));
        }
        Ok(Session {
            docker: docker.clone(),
            container: container.to_string(),
            user,
            env,
        })
    }
}

impl Session {
    fn psql(&self, db: &str, sql: &str) -> Result<String> {
        let mut cmd = psql_cmd(db);
        cmd.extend(["-c", sql]);
        self.docker.run_ok(&self.container, &cmd, &self.env)
    }

    /// Runs a psql script given on stdin, where `:'name'` and `:"name"` quote variables.
    fn psql_script(&self, db: &str, vars: &[(&str, &str)], script: &str) -> Result<String> {
        let mut cmd = psql_cmd(db);
        let defs: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for d in &defs {
            cmd.extend(["-v", d.as_str()]);
        }
        let out = self
            .docker
            .run(&self.container, &cmd, &self.env, Some(script.as_bytes()))?;
        if out.exit_code != Some(0) {
            return Err(Error::Failed(format!(
                "psql {}: {}",
                docker::exit_text(out.exit_code),
                docker::stderr_summary(&out.stderr)
            )));
        }
        Ok(out.text())
    }

    /// Runs several statements in one psql (one exec); their outputs follow each other.
    fn psql_multi(&self, sqls: &[&str]) -> Result<String> {
        let mut cmd = psql_cmd("postgres");
        for s in sqls {
            cmd.extend(["-c", s]);
        }
        self.docker.run_ok(&self.container, &cmd, &self.env)
    }
}

impl SqlServer for Session {
    const UNIT: &'static str = "relations";
    const SEPARATOR: char = '|';

    /// The roles, so that ownership and grants in the dumps resolve. Statements about the
    /// role drctl connects as are left out: replaying them would change its password to
    /// the one at backup time and lock drctl (and the application) out. Errors other than
    /// existing roles are warnings.
    fn load_server_objects(&self, files: &SnapshotFiles<'_>) -> Result<Vec<String>> {
        let globals = filter_own_role(&files.text(GLOBALS_FILE)?, &self.user);
        let out = self.docker.run(
            &self.container,
            &["psql", "-X", "-q", "-d", "postgres"],
            &self.env,
            Some(globals.as_bytes()),
        )?;
        Ok(out
            .stderr
            .lines()
            .filter(|l| l.contains("ERROR") && !l.contains("already exists"))
            .map(|line| format!("roles: {}", line.trim()))
            .collect())
    }

    /// Whether a database exists, and how many user relations it holds.
    fn database_state(&self, db: &str) -> Result<Option<u64>> {
        let exists = self.psql_script(
            "template1",
            &[("db", db)],
            "SELECT count(*) FROM pg_database WHERE datname = :'db';\n",
        )?;
        if exists.trim() != "1" {
            return Ok(None);
        }
        let n = self.psql(
            db,
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'",
        )?;
        Ok(Some(n.trim().parse().unwrap_or(0)))
    }

    fn drop_database(&self, db: &str) -> Result<()> {
        self.psql_script(
            // Not the database being dropped: `postgres` itself may be restored.
            "template1",
            &[("db", db)],
            "DROP DATABASE :\"db\" WITH (FORCE);\n",
        )?;
        Ok(())
    }

    fn load_dump(&self, files: &SnapshotFiles<'_>, name: &str) -> Result<()> {
        files.feed(
            &self.docker,
            &self.container,
            name,
            &[
                "psql",
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                "template1",
            ],
            &self.env,
        )?;
        Ok(())
    }

    fn query_in(&self, db: &str, sql: &str) -> Result<String> {
        self.psql(db, sql)
    }
}

impl DatabaseDriver for Postgres {
    fn open<'a>(&self, at: LoginAt<'a>) -> ServerFor<'a> {
        Ok(Box::new(Session::open(at)?))
    }

    /// Checks the server and plans one dump per database plus the globals.
    fn dump(
        &self,
        docker: &Docker,
        job: &BackupJob<'_>,
        rec: &mut SourceRecord,
    ) -> Result<Prepared> {
        let def = job.def;
        let container = container_of(def)?;
        let session = Session::for_backup(docker, def, rec)?;
        let pitr = def.pitr();
        let env = session.env.clone();
        let run_probe = move || probe(&session, pitr);
        // The probe's two execs, started first, delayed the base backup's start by a
        // tenth of a second (0.12-0.15 s after drctl started, against 0.02 s when it went
        // first): the probe waits until the base backup has started, or could not.
        let (base_started, base_first) = std::sync::mpsc::channel::<()>();
        // With the databases named, nothing the dumps need waits for the probe: it runs
        // alongside them (each exec costs a tenth of a second here), and is judged first
        // after them, so that its plainer message names a missing database.
        let (databases, checks, system) = if def.databases.is_empty() {
            let found = run_probe()?;
            let (databases, system) = (found.databases.clone(), found.system.clone());
            found.record(rec);
            (databases, None, system)
        } else {
            let wanted = def.databases.clone();
            let container = container.to_string();
            let checks: super::PendingChecks = std::thread::spawn(move || {
                if pitr {
                    let _ = base_first.recv_timeout(BASE_FIRST_WAIT);
                }
                let found = run_probe()?;
                if let Some(db) = wanted.iter().find(|db| !found.databases.contains(db)) {
                    return Err(Error::Failed(format!(
                        "database {db} does not exist in container {container}"
                    )));
                }
                Ok(Box::new(move |rec: &mut SourceRecord| found.record(rec)) as _)
            });
            (def.databases.clone(), Some(checks), None)
        };
        rec.databases = databases.clone();
        let mut streams = vec![exec_stream(
            docker,
            container,
            GLOBALS_FILE.into(),
            vec![
                "pg_dumpall".into(),
                "--globals-only".into(),
                "-l".into(),
                "postgres".into(),
            ],
            env.clone(),
            Some(DUMPALL_MARKER),
        )];
        for db in databases {
            streams.push(exec_stream(
                docker,
                container,
                dump_file_name(&db),
                vec![
                    "pg_dump".into(),
                    "--create".into(),
                    "--dbname".into(),
                    db.clone(),
                ],
                env.clone(),
                Some(DUMP_MARKER),
            ));
        }
        let mut finish = None;
        if pitr {
            let (stream, base) = base_backup(
                docker,
                container,
                (env, base_started),
                system,
                job.archive_live,
            );
            streams.push(stream);
            finish = Some(base);
        }
        Ok(Prepared {
            streams,
            checks,
            finish,
            ..Default::default()
        })
    }

    fn trial(&self, docker: &Docker, def: &SourceDef) -> Result<String> {
        let mut rec = SourceRecord::new(def.name.get_ref(), def.kind);
        let session = Session::for_backup(docker, def, &mut rec)?;
        let found = probe(&session, false)?;
        if let Some(db) = def.databases.iter().find(|d| !found.databases.contains(d)) {
            return Err(Error::Failed(format!(
                "database {db} does not exist in container {}",
                session.container
            )));
        }
        Ok(format!(
            "PostgreSQL {}, {} database(s)",
            found.server_version.unwrap_or_default(),
            found.databases.len()
        ))
    }

    fn scratch_credentials(&self, password: &str) -> Vec<String> {
        vec![format!("POSTGRES_PASSWORD={password}")]
    }

    fn data_dir(&self, env: &[String]) -> Option<String> {
        let pgdata = env
            .iter()
            .find_map(|kv| kv.strip_prefix("PGDATA="))
            .filter(|v| !v.is_empty());
        Some(pgdata.unwrap_or(pitr::DEFAULT_PGDATA).to_string())
    }

    fn replay_plan(&self, files: usize, to: &str) -> String {
        format!(
            "the server's whole data directory will be replaced by this base backup and \
             {files} archived WAL file(s) replayed to {to}"
        )
    }

    fn replay_to(&self, job: &ReplayJob<'_>) -> Result<Replayed> {
        pitr::restore(job)
    }

    /// Accepting TCP connections: an image's init phase listens on its socket only, so
    /// this waits for the real server.
    fn port(&self) -> u16 {
        5432
    }

    fn ready(&self, docker: &Docker, container: &str) -> bool {
        docker
            .run(
                container,
                &["pg_isready", "-q", "-h", "127.0.0.1"],
                &[],
                None,
            )
            .is_ok_and(|o| o.exit_code == Some(0))
    }
}

/// What the probe of a server found.
struct Probed {
    server_version: Option<String>,
    /// PostgreSQL's `system_identifier`, asked for a base backup.
    system: Option<String>,
    pg_dump_version: String,
    /// Databases that take connections, templates left out.
    databases: Vec<String>,
}

impl Probed {
    fn record(self, rec: &mut SourceRecord) {
        rec.server_version = self.server_version;
        if let Some(base) = rec.base.as_mut() {
            base.system = self.system;
        }
        // pg_dumpall comes from the same package as pg_dump.
        rec.tool_versions
            .insert("pg_dump".into(), self.pg_dump_version);
    }
}

/// The base backup's stream, and what records it once the stream has gone by: where it
/// starts in the WAL, from the label at the head of its tar.
/// `started` is dropped once the exec has started (or failed to).
fn base_backup(
    docker: &Docker,
    container: &str,
    (env, started): (Vec<(String, String)>, std::sync::mpsc::Sender<()>),
    system: Option<String>,
    wal_in_archive: bool,
) -> (super::StreamFile, super::Finish) {
    let mut stream = exec_stream(
        docker,
        container,
        BASE_FILE.into(),
        base_backup_command(wal_in_archive),
        env,
        None,
    );
    let found: Arc<Mutex<Option<BaseStart>>> = Arc::default();
    let (open, tap) = (stream.open, found.clone());
    stream.open = Box::new(move || {
        let opened = open();
        drop(started);
        opened.map(|r| Box::new(LabelTap::new(r, tap)) as Box<dyn std::io::Read + Send>)
    });
    let finish = Box::new(move |rec: &mut SourceRecord| {
        let start =
            found.lock().unwrap().take().ok_or_else(|| {
                Error::Failed("the base backup ended before its backup_label".into())
            })?;
        rec.base = Some(BaseBackup {
            file: BASE_FILE.into(),
            timeline: start.timeline,
            wal_start: start.wal_start,
            system,
            ended: None,
            wal_in_archive,
        });
        Ok(())
    });
    (stream, finish)
}

/// The server's version and databases and pg_dump's version, and for a base backup its
/// database system; the two execs run at once.
fn probe(session: &Session, with_system: bool) -> Result<Probed> {
    let (probe, version) = std::thread::scope(|s| {
        let version = s.spawn(|| {
            session
                .docker
                .run_ok(&session.container, &["pg_dump", "--version"], &[])
        });
        let mut sqls = vec!["SHOW server_version"];
        if with_system {
            sqls.push("SELECT system_identifier FROM pg_control_system()");
        }
        sqls.push(
            "SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY 1",
        );
        let probe = session.psql_multi(&sqls);
        (probe, version.join().expect("probe thread"))
    });
    let probe = probe?;
    let mut lines = probe.lines().map(str::to_string).filter(|l| !l.is_empty());
    Ok(Probed {
        server_version: lines.next(),
        system: if with_system { lines.next() } else { None },
        pg_dump_version: version?,
        databases: lines.collect(),
    })
}

/// Removes `CREATE ROLE user;` and `ALTER ROLE user ...` lines for the connecting role.
fn filter_own_role(sql: &str, user: &str) -> String {
    let quoted = if user
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        user.to_string()
    } else {
        format!("\"{}\"", user.replace('"', "\"\""))
    };
    let create = format!("CREATE ROLE {quoted};");
    let alter = format!("ALTER ROLE {quoted} ");
    sql.lines()
        .filter(|l| *l != create && !l.starts_with(&alter))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_role_statements_are_left_out() {
        let sql = "CREATE ROLE postgres;\nALTER ROLE postgres WITH SUPERUSER PASSWORD 'x';\nCREATE ROLE app;\nALTER ROLE app WITH LOGIN;\n";
        assert_eq!(
            filter_own_role(sql, "postgres"),
            "CREATE ROLE app;\nALTER ROLE app WITH LOGIN;\n"
        );
        assert!(filter_own_role("CREATE ROLE \"Admin\";\n", "Admin").is_empty());
    }
}
