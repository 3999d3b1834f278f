//! MariaDB/MySQL binary logs, read from the server's own files through `docker exec`, for
//! the continuous archive. `SHOW BINARY LOGS` says which files there are and how far each
//! is written: whole events of committed transactions, since the server writes a
//! transaction to its binary log at commit. `head -c` then reads exactly that much of a
//! file, so a stored copy of the file being written ends on an event boundary. Nothing
//! runs in the container between looks, and nothing is changed in the server: it keeps
//! its files as its own settings say (`binlog_expire_logs_seconds`), and a file removed
//! before drctl stored it is a gap the archive names.

use chrono::{DateTime, Utc};

use super::{binlog_state, Session};
use crate::config::SourceDef;
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::source::database::Login;
use crate::source::{exec_stream, LoginAt, StreamFile};

/// The server's binary log, as the archive reads it.
pub struct BinlogReader<'a> {
    session: Session<'a>,
    /// The directory the files are in (`@@log_bin_basename`'s).
    dir: String,
}

/// What one look at the server found.
pub struct Listing {
    /// The database system (see [`SYSTEM_QUERY`]).
    pub system: Option<String>,
    /// The files, oldest first, with how far each is written; the last one is being
    /// written.
    pub files: Vec<(String, u64)>,
}

/// Identifies the database system, for a server recreated empty under the same name
/// (which numbers its files from 1 again): when its system schema was created, as
/// PostgreSQL's `system_identifier` records when `initdb` ran.
pub(super) const SYSTEM_QUERY: &str =
    "SELECT CONCAT('system ', UNIX_TIMESTAMP(MIN(create_time))) FROM \
                            information_schema.tables WHERE table_schema = 'mysql' AND \
                            create_time IS NOT NULL";

/// The `file<TAB>number` rows of `SHOW BINARY LOGS` (the size) or `SHOW MASTER STATUS`
/// (the position) in a query's output, the system line and other rows left out.
pub(super) fn file_rows(out: &str) -> Vec<(String, u64)> {
    out.lines()
        .filter_map(|l| {
            let mut cols = l.split('\t');
            let name = cols.next()?.trim();
            let number = cols.next()?.trim().parse().ok()?;
            crate::pitr::parse_binlog(name)?;
            Some((name.to_string(), number))
        })
        .collect()
}

/// The database system from [`SYSTEM_QUERY`]'s output.
pub fn parse_system(out: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("system "))
        .filter(|s| !s.is_empty() && *s != "NULL")
        .map(str::to_string)
}

impl<'a> BinlogReader<'a> {
    /// Logs in to the source's running container; an error says what to change when
    /// binary logging is off or not row-based.
    pub fn open(docker: &'a Docker, def: &'a SourceDef) -> Result<BinlogReader<'a>> {
        let at = LoginAt::source(docker, def)?;
        let (container, session) = (at.container, Session::open(at)?);
        let out = session.query("SELECT @@log_bin, @@binlog_format, @@log_bin_basename")?;
        if let Some(why) = binlog_state(&out, container) {
            return Err(Error::Failed(why));
        }
        let basename = out.split_whitespace().nth(2).unwrap_or_default();
        let dir = match basename.rsplit_once('/') {
            Some((dir, _)) if !dir.is_empty() => dir.to_string(),
            _ => {
                // A relative basename is in the data directory.
                session.query("SELECT @@datadir")?.trim().to_string()
            }
        };
        Ok(BinlogReader { session, dir })
    }

    /// The server's files and its database system, in one login.
    pub fn list(&self) -> Result<Listing> {
        let out = self
            .session
            .query(&format!("{SYSTEM_QUERY}; SHOW BINARY LOGS"))?;
        Ok(Listing {
            system: parse_system(&out),
            files: file_rows(&out),
        })
    }

    /// When each of the finished files `names` was last written: the moment the server
    /// went on to the next one, so what a stored copy covers. Files it cannot read are
    /// left out. `find` gives the fraction of a second; an image without it has `stat`,
    /// whose whole seconds are earlier, never later.
    pub fn last_writes(&self, names: &[&str]) -> Result<Vec<(String, DateTime<Utc>)>> {
        let s = &self.session;
        let paths: Vec<String> = names.iter().map(|n| self.path(n)).collect();
        let paths = paths.iter().map(String::as_str);
        let find = ["find"].into_iter().chain(paths.clone()).chain([
            "-maxdepth",
            "0",
            "-type",
            "f",
            "-printf",
            "%f %T@\\n",
        ]);
        let out = s
            .docker
            .run(s.container, &find.collect::<Vec<_>>(), &[], None)?;
        let found = parse_last_writes(&out.text());
        if !found.is_empty() || out.exit_code == Some(0) {
            return Ok(found);
        }
        let stat = ["stat", "-c", "%n %Y"].into_iter().chain(paths);
        let out = s
            .docker
            .run(s.container, &stat.collect::<Vec<_>>(), &[], None)?;
        Ok(parse_last_writes(&out.text()))
    }

    /// A file's path in the container.
    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.dir.trim_end_matches('/'))
    }

    /// The first `size` bytes of a file, as a stream for the backup pipeline.
    pub fn stream(&self, name: &str, size: u64) -> StreamFile {
        let s = &self.session;
        exec_stream(
            s.docker,
            s.container,
            name.to_string(),
            vec![
                "head".into(),
                "-c".into(),
                size.to_string(),
                self.path(name),
            ],
            Vec::new(),
            None,
        )
    }
}

/// `NAME EPOCH` lines as `find -printf '%f %T@\\n'` prints them, or `PATH EPOCH` as
/// `stat -c '%n %Y'` does.
fn parse_last_writes(out: &str) -> Vec<(String, DateTime<Utc>)> {
    out.lines()
        .filter_map(|l| {
            let (path, t) = l.trim().split_once(' ')?;
            // `stat` names the path.
            let name = path.rsplit('/').next()?;
            crate::pitr::parse_binlog(name)?;
            Some((name.to_string(), crate::pitr::parse_epoch(t)?))
        })
        .collect()
}

/// Where a dump's consistent snapshot lies in the binary log, from the comment
/// `--master-data=2` writes at its top:
/// `-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000003', MASTER_LOG_POS=342;`
pub fn dump_position(head: &str) -> Option<(String, u64)> {
    let line = head
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("--") || l.starts_with("/*"))
        .find(|l| l.contains("MASTER_LOG_FILE="))?;
    let file = line.split("MASTER_LOG_FILE='").nth(1)?.split('\'').next()?;
    let pos = line.split("MASTER_LOG_POS=").nth(1)?;
    let pos: String = pos.chars().take_while(char::is_ascii_digit).collect();
    crate::pitr::parse_binlog(file)?;
    Some((file.to_string(), pos.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dumps_position_is_read_from_its_header_comment() {
        let head = "-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB\n--\n-- Host: localhost\n\
                    -- ------------------------------------------------------\n\
                    /*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n\n\
                    --\n-- Position to start replication or point-in-time recovery from\n--\n\n\
                    -- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000003', MASTER_LOG_POS=342;\n\n\
                    CREATE DATABASE shop;\n-- CHANGE MASTER TO MASTER_LOG_FILE='x.000009', MASTER_LOG_POS=1;\n";
        assert_eq!(dump_position(head), Some(("mysql-bin.000003".into(), 342)));
        // A statement before it: not the dump's header (a table's data is never read).
        assert_eq!(
            dump_position("CREATE TABLE t (a int);\n-- CHANGE MASTER TO MASTER_LOG_FILE='b.000001', MASTER_LOG_POS=4;\n"),
            None
        );
        assert_eq!(dump_position("-- MariaDB dump\n"), None);
    }

    #[test]
    fn last_writes_are_read_per_file_and_noise_is_left_out() {
        let out = "mysql-bin.000002 1764950012.2500000000\nfind: 'x': No such file\n\
                   mysql-bin.000003 nonsense\n";
        let got = parse_last_writes(out);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "mysql-bin.000002");
        assert_eq!(got[0].1.timestamp_millis(), 1_764_950_012_250);
        let got = parse_last_writes("/var/lib/mysql/mysql-bin.000004 1764950013\n");
        assert_eq!(got[0].0, "mysql-bin.000004");
        assert_eq!(got[0].1.timestamp(), 1_764_950_013);
    }

    #[test]
    fn the_system_is_read_from_its_query_line() {
        assert_eq!(
            parse_system("system 1764950000\nmysql-bin.000001\t330\n"),
            Some("1764950000".into())
        );
        assert_eq!(parse_system("system NULL\n"), None);
        assert_eq!(
            file_rows("system 1764950000\nmysql-bin.000001\t330\nmysql-bin.000002\t5120\tNo\n"),
            [
                ("mysql-bin.000001".to_string(), 330),
                ("mysql-bin.000002".to_string(), 5120)
            ]
        );
    }
}
