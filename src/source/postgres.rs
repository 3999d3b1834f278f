//! PostgreSQL: `pg_dump --create` per database (plain SQL: it deduplicates well between
//! runs and restores with `psql`) plus `pg_dumpall --globals-only` for roles, all run in
//! the server's own container so the tools match the server.

use super::{
    container_of, dump_file_name, exec_stream, password_from_file, Prepared, SnapshotFiles, Target,
};
use crate::config::SourceDef;
use crate::docker::{ContainerInfo, Docker};
use crate::error::{Error, Result};
use crate::repo::point::SourceRecord;

/// The file holding roles and tablespaces.
pub const GLOBALS_FILE: &str = "globals.roles.sql";
/// The last line pg_dump writes; a dump without it was cut short.
const DUMP_MARKER: &str = "-- PostgreSQL database dump complete";
/// The last line pg_dumpall writes.
const DUMPALL_MARKER: &str = "-- PostgreSQL database cluster dump complete";

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

/// Connection settings for the tools, passed through the exec environment.
fn credentials(
    def: Option<&SourceDef>,
    info: &ContainerInfo,
) -> Result<(String, Vec<(String, String)>)> {
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
    Ok((user, env))
}

fn psql(
    docker: &Docker,
    container: &str,
    env: &[(String, String)],
    db: &str,
    sql: &str,
) -> Result<String> {
    let mut cmd = psql_cmd(db);
    cmd.extend(["-c", sql]);
    docker.run_ok(container, &cmd, env)
}

/// Runs a psql script given on stdin, where `:'name'` and `:"name"` quote variables.
fn psql_script(
    docker: &Docker,
    container: &str,
    env: &[(String, String)],
    db: &str,
    vars: &[(&str, &str)],
    script: &str,
) -> Result<String> {
    let mut cmd = psql_cmd(db);
    let defs: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for d in &defs {
        cmd.extend(["-v", d.as_str()]);
    }
    let out = docker.run(container, &cmd, env, Some(script.as_bytes()))?;
    if out.exit_code != Some(0) {
        return Err(Error::Failed(format!(
            "psql {}: {}",
            super::docker::exit_text(out.exit_code),
            super::docker::stderr_summary(&out.stderr)
        )));
    }
    Ok(out.text())
}

/// Runs several statements in one psql (one exec); their outputs follow each other.
fn psql_multi(
    docker: &Docker,
    container: &str,
    env: &[(String, String)],
    sqls: &[&str],
) -> Result<String> {
    let mut cmd = psql_cmd("postgres");
    for s in sqls {
        cmd.extend(["-c", s]);
    }
    docker.run_ok(container, &cmd, env)
}

/// The first column of the first row of `sql` in `db`, with the container's own
/// credentials (a drill's scratch server); the server's error text when it fails.
pub fn scalar(docker: &Docker, container: &str, db: &str, sql: &str) -> Result<String> {
    let info = docker.running_container(container)?;
    let (_, env) = credentials(None, &info)?;
    let out = psql(docker, container, &env, db, sql)?;
    Ok(out
        .lines()
        .next()
        .unwrap_or("")
        .split('|')
        .next()
        .unwrap_or("")
        .to_string())
}

/// Whether the server accepts TCP connections (an image's init phase listens on its
/// socket only, so this waits for the real server).
pub fn ready(docker: &Docker, container: &str) -> bool {
    docker
        .run(
            container,
            &["pg_isready", "-q", "-h", "127.0.0.1"],
            &[],
            None,
        )
        .is_ok_and(|o| o.exit_code == Some(0))
}

/// Checks the server and plans one dump per database plus the globals.
pub fn backup(docker: &Docker, def: &SourceDef, rec: &mut SourceRecord) -> Result<Prepared> {
    let container = container_of(def)?;
    let info = docker.running_container(container)?;
    super::record_container(rec, &info);
    let (_, env) = credentials(Some(def), &info)?;
    let run_probe = {
        let (docker, container, env) = (docker.clone(), container.to_string(), env.clone());
        move || probe(&docker, &container, &env)
    };
    // With the databases named, nothing the dumps need waits for the probe: it runs
    // alongside them (each exec costs a tenth of a second here), and is judged first
    // after them, so that its plainer message names a missing database.
    let (databases, checks) = if def.databases.is_empty() {
        let found = run_probe()?;
        let databases = found.databases.clone();
        found.record(rec);
        (databases, None)
    } else {
        let wanted = def.databases.clone();
        let container = container.to_string();
        let checks: super::PendingChecks = std::thread::spawn(move || {
            let found = run_probe()?;
            if let Some(db) = wanted.iter().find(|db| !found.databases.contains(db)) {
                return Err(Error::Failed(format!(
                    "database {db} does not exist in container {container}"
                )));
            }
            Ok(Box::new(move |rec: &mut SourceRecord| found.record(rec)) as _)
        });
        (def.databases.clone(), Some(checks))
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
    Ok(Prepared {
        streams,
        checks,
        ..Default::default()
    })
}

/// What the probe of a server found.
struct Probed {
    server_version: Option<String>,
    pg_dump_version: String,
    /// Databases that take connections, templates left out.
    databases: Vec<String>,
}

impl Probed {
    fn record(self, rec: &mut SourceRecord) {
        rec.server_version = self.server_version;
        // pg_dumpall comes from the same package as pg_dump.
        rec.tool_versions
            .insert("pg_dump".into(), self.pg_dump_version);
    }
}

/// The server's version and databases and pg_dump's version; the two execs run at once.
fn probe(docker: &Docker, container: &str, env: &[(String, String)]) -> Result<Probed> {
    let (probe, version) = std::thread::scope(|s| {
        let version = s.spawn(|| docker.run_ok(container, &["pg_dump", "--version"], &[]));
        let probe = psql_multi(
            docker,
            container,
            env,
            &[
                "SHOW server_version",
                "SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY 1",
            ],
        );
        (probe, version.join().expect("probe thread"))
    });
    let probe = probe?;
    let mut lines = probe.lines().map(str::to_string).filter(|l| !l.is_empty());
    Ok(Probed {
        server_version: lines.next(),
        pg_dump_version: version?,
        databases: lines.collect(),
    })
}

/// Whether a database exists, and how many user relations it holds.
fn database_state(
    docker: &Docker,
    container: &str,
    env: &[(String, String)],
    db: &str,
) -> Result<Option<u64>> {
    let exists = psql_script(
        docker,
        container,
        env,
        "template1",
        &[("db", db)],
        "SELECT count(*) FROM pg_database WHERE datname = :'db';\n",
    )?;
    if exists.trim() != "1" {
        return Ok(None);
    }
    let n = psql(
        docker,
        container,
        env,
        db,
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'",
    )?;
    Ok(Some(n.trim().parse().unwrap_or(0)))
}

/// Checks what a restore would replace: refuses databases that hold data unless forced.
pub fn check_target(
    docker: &Docker,
    rec: &SourceRecord,
    target: &Target<'_>,
) -> Result<Vec<String>> {
    let info = docker.running_container(&target.container)?;
    let (_, env) = credentials(target.def, &info)?;
    rec.databases
        .iter()
        .map(|db| {
            super::plan_database(
                db,
                database_state(docker, &target.container, &env, db)?,
                "relations",
                target,
            )
        })
        .collect()
}

/// Loads roles, then each database, into the target container.
pub fn restore(
    docker: &Docker,
    rec: &SourceRecord,
    target: &Target<'_>,
    files: &SnapshotFiles<'_>,
) -> Result<Vec<String>> {
    let container = target.container.as_str();
    let info = docker.running_container(container)?;
    let (user, env) = credentials(target.def, &info)?;
    let mut warnings = Vec::new();
    // Roles first, so ownership and grants in the dumps resolve. Statements about the
    // role drctl connects as are left out: replaying them would change its password to
    // the one at backup time and lock drctl (and the application) out.
    let mut globals = Vec::new();
    files.stream(GLOBALS_FILE, |b| {
        globals.extend_from_slice(b);
        Ok(())
    })?;
    let globals = filter_own_role(&String::from_utf8_lossy(&globals), &user);
    let out = docker.run(
        container,
        &["psql", "-X", "-q", "-d", "postgres"],
        &env,
        Some(globals.as_bytes()),
    )?;
    for line in out
        .stderr
        .lines()
        .filter(|l| l.contains("ERROR") && !l.contains("already exists"))
    {
        warnings.push(format!("roles: {}", line.trim()));
    }
    for db in &rec.databases {
        if database_state(docker, container, &env, db)?.is_some() {
            psql_script(
                docker,
                container,
                &env,
                // Not the database being dropped: `postgres` itself may be restored.
                "template1",
                &[("db", db)],
                "DROP DATABASE :\"db\" WITH (FORCE);\n",
            )?;
        }
        files.feed(
            docker,
            container,
            &dump_file_name(db),
            &[
                "psql",
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                "template1",
            ],
            &env,
        )?;
    }
    Ok(warnings)
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
