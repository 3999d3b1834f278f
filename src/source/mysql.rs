//! MySQL and MariaDB: `mariadb-dump`/`mysqldump` per database with
//! `--single-transaction` (a consistent InnoDB view without locking writers), routines,
//! triggers and events; on MariaDB also the accounts (`--system=users`).

use super::{
    container_of, dump_file_name, exec_stream, password_from_file, Prepared, SnapshotFiles, Target,
};
use crate::config::SourceDef;
use crate::docker::{ContainerInfo, Docker};
use crate::error::{Error, Result};
use crate::repo::point::SourceRecord;

/// The file holding accounts and grants (MariaDB only).
pub const USERS_FILE: &str = "users.grants.sql";
/// The last line of a finished dump.
const DUMP_MARKER: &str = "-- Dump completed";
/// Schemas of the server itself.
const SYSTEM_SCHEMAS: [&str; 4] = ["information_schema", "performance_schema", "sys", "mysql"];

/// The dump tool and the client in this container (MariaDB names first).
struct Tools {
    dump: String,
    client: String,
}

fn tools(docker: &Docker, container: &str) -> Result<Tools> {
    let find = |names: &str| -> Result<String> {
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
    };
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

fn query(
    docker: &Docker,
    container: &str,
    client: &str,
    user: &str,
    env: &[(String, String)],
    sql: &str,
) -> Result<String> {
    docker.run_ok(container, &[client, "-u", user, "-N", "-B", "-e", sql], env)
}

/// The first column of the first row of `sql` in `db`, as root with the container's
/// own credentials (a drill's scratch server); the server's error text when it fails.
pub fn scalar(docker: &Docker, container: &str, db: &str, sql: &str) -> Result<String> {
    let info = docker.running_container(container)?;
    let (user, env) = credentials(None, &info)?;
    let tools = tools(docker, container)?;
    let out = docker.run_ok(
        container,
        &[&tools.client, "-u", &user, "-N", "-B", "-D", db, "-e", sql],
        &env,
    )?;
    Ok(out
        .lines()
        .next()
        .unwrap_or("")
        .split('\t')
        .next()
        .unwrap_or("")
        .to_string())
}

/// Whether the server answers on TCP (an image's init phase runs without networking).
pub fn ready(docker: &Docker, container: &str) -> bool {
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

/// `'text'` as an SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// `` `name` `` as an SQL identifier.
fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// Checks the server and plans one dump per database, plus the accounts on MariaDB.
pub fn backup(docker: &Docker, def: &SourceDef, rec: &mut SourceRecord) -> Result<Prepared> {
    let container = container_of(def)?;
    let info = docker.running_container(container)?;
    super::record_container(rec, &info);
    let tools = tools(docker, container)?;
    let (user, env) = credentials(Some(def), &info)?;
    rec.server_version = Some(query(
        docker,
        container,
        &tools.client,
        &user,
        &env,
        "SELECT VERSION()",
    )?);
    rec.tool_versions.insert(
        tools.dump.clone(),
        docker.run_ok(container, &[&tools.dump, "--version"], &[])?,
    );
    let present: Vec<String> = query(
        docker,
        container,
        &tools.client,
        &user,
        &env,
        "SHOW DATABASES",
    )?
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
            "--databases",
        ]);
        cmd.push(db.clone());
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

/// Tables in a database, or `None` when it does not exist.
fn database_state(
    docker: &Docker,
    container: &str,
    client: &str,
    user: &str,
    env: &[(String, String)],
    db: &str,
) -> Result<Option<u64>> {
    let exists = query(
        docker,
        container,
        client,
        user,
        env,
        &format!(
            "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = {}",
            literal(db)
        ),
    )?;
    if exists.trim() == "0" {
        return Ok(None);
    }
    let n = query(
        docker,
        container,
        client,
        user,
        env,
        &format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = {}",
            literal(db)
        ),
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
    let tools = tools(docker, &target.container)?;
    let (user, env) = credentials(target.def, &info)?;
    rec.databases
        .iter()
        .map(|db| {
            super::plan_database(
                db,
                database_state(docker, &target.container, &tools.client, &user, &env, db)?,
                "tables",
                target,
            )
        })
        .collect()
}

/// Loads the accounts, then each database, into the target container.
pub fn restore(
    docker: &Docker,
    rec: &SourceRecord,
    target: &Target<'_>,
    files: &SnapshotFiles<'_>,
) -> Result<Vec<String>> {
    let container = target.container.as_str();
    let info = docker.running_container(container)?;
    let tools = tools(docker, container)?;
    let (user, env) = credentials(target.def, &info)?;
    let mut warnings = Vec::new();
    if files.files.contains_key(USERS_FILE) {
        // Accounts that exist are kept as they are (`CREATE USER IF NOT EXISTS`); `--force`
        // lets the rest load when one grant names something missing. The statements for
        // the account this restore connects as are left out: their `GRANT ... IDENTIFIED
        // BY PASSWORD` would set the target's password to the source's and lock the rest
        // of the restore (and a drill's checks) out. The file is small: grants only.
        let mut sql = Vec::new();
        files.stream(USERS_FILE, |b| {
            sql.extend_from_slice(b);
            Ok(())
        })?;
        let own = format!("`{user}`@");
        let kept: String = String::from_utf8_lossy(&sql)
            .lines()
            .filter(|l| !l.contains(&own))
            .map(|l| format!("{l}\n"))
            .collect();
        let out = docker.run(
            container,
            &[&tools.client, "-u", &user, "--force"],
            &env,
            Some(kept.as_bytes()),
        );
        match out {
            Ok(o) if o.exit_code == Some(0) => {}
            Ok(o) => warnings.push(format!("accounts: {}", o.stderr.trim())),
            Err(e) => warnings.push(format!("accounts: {e}")),
        }
    }
    for db in &rec.databases {
        if database_state(docker, container, &tools.client, &user, &env, db)?.is_some() {
            query(
                docker,
                container,
                &tools.client,
                &user,
                &env,
                &format!("DROP DATABASE {}", ident(db)),
            )?;
        }
        files.feed(
            docker,
            container,
            &dump_file_name(db),
            &[&tools.client, "-u", &user],
            &env,
        )?;
    }
    Ok(warnings)
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
