//! A MariaDB/MySQL restore to a time: the dumps loaded as for any restore, then each
//! database's binary log replayed from its dump's position up to the time, by the
//! container's own `mariadb-binlog`/`mysqlbinlog` piped into its client. The archived
//! files are staged in the container's `/tmp` for the replay and removed after it.
//!
//! Binary log events carry whole seconds, so the replay stops before the first event of
//! the second `T` lies in: every transaction before that second is replayed, none after
//! `T` is, and a transaction the stop cuts in two is never committed (the client rolls it
//! back when its input ends).

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use super::binlog::dump_position;
use super::Session;
use crate::error::{Error, Result};
use crate::source::database::{dump_file_name, Login};
use crate::source::Server;
use crate::source::{PointInTime, ReplayJob, Replayed};

/// Where the archived files are staged in the container.
const STAGING: &str = "/tmp/drctl-binlog-replay";
/// How much of a dump's top is read for its position.
const HEAD_BYTES: usize = 64 * 1024;

/// Loads the dumps into the target's server, then replays the binary log up to `at`.
pub fn restore(job: &ReplayJob<'_>) -> Result<Replayed> {
    let (rec, files, at) = (job.rec, job.files, job.at);
    let mut starts = Vec::new();
    for db in &rec.databases {
        let name = dump_file_name(db);
        let head = files.head(&name, HEAD_BYTES)?;
        let start = dump_position(&head).ok_or_else(|| {
            Error::Damage(format!(
                "the dump {name} of source {} records no binary log position",
                rec.name
            ))
        })?;
        starts.push((db, start));
    }
    let session = Session::open(job.target.login(job.docker))?;
    let mut notes = session.load(rec, files)?;
    let binlog_tool = session.find_tool("mariadb-binlog mysqlbinlog")?;
    let staged = stage(&session, at)?;
    let stop = stop_datetime(at.time);
    let mut last: Option<DateTime<Utc>> = None;
    let replayed = starts.iter().try_for_each(|(db, (file, pos))| {
        let from: Vec<&String> = staged.iter().skip_while(|n| *n != file).collect();
        if from.is_empty() {
            return Err(Error::Failed(format!(
                "database {db}: its dump's binary log file {file} is not in the archive"
            )));
        }
        let t = replay_database(&session, &binlog_tool, db, *pos, &from, &stop)?;
        last = last.max(t);
        Ok(())
    });
    let removed = session
        .docker
        .run_ok(session.container, &["rm", "-rf", STAGING], &[]);
    replayed?;
    removed?;
    notes.push(format!(
        "replayed the binary log to {}: the last transaction replayed was at {}",
        crate::timespec::local_time(&at.time),
        last.map_or("(none after the dumps)".into(), |t| {
            t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        })
    ));
    Ok(Replayed {
        last_transaction: last,
        notes,
    })
}

/// `--stop-datetime`: the start of the second `t` lies in (the tool reads it as UTC).
fn stop_datetime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Copies the replay's files into the container, in order; their names.
fn stage(session: &Session<'_>, at: PointInTime<'_>) -> Result<Vec<String>> {
    let (docker, container) = (session.docker, session.container);
    docker.run_ok(container, &["mkdir", "-p", STAGING], &[])?;
    let mut names = Vec::new();
    for name in at.wal.names() {
        let path = format!("{STAGING}/{name}");
        let mut writer = docker.feed(container, &["sh", "-c", "cat > \"$0\"", &path], &[])?;
        let fed = at.wal.read(&name, &mut |b| writer.write(b));
        let out = writer.finish()?;
        fed?;
        if out.exit_code != Some(0) {
            return Err(Error::Failed(format!(
                "staging {name} in container {container}: {}",
                crate::docker::stderr_summary(&out.stderr)
            )));
        }
        names.push(name);
    }
    Ok(names)
}

/// Replays one database's events from `pos` in the first file to `stop`, piped into the
/// client; the time of the last transaction replayed. The tool's exit code is kept
/// beside the pipe (the container's `sh` has no `pipefail`).
fn replay_database(
    session: &Session<'_>,
    tool: &str,
    db: &str,
    pos: u64,
    files: &[&String],
    stop: &str,
) -> Result<Option<DateTime<Utc>>> {
    let quoted: Vec<String> = files
        .iter()
        .map(|f| shell_quote(&format!("{STAGING}/{f}")))
        .collect();
    let last_file = format!("{STAGING}/last-{}", dump_file_name(db));
    // A commit's header line: `#261120 10:07:31 server id 1  end_log_pos 900 ... Xid = 41`.
    let script = format!(
        "({tool} --database={db} --start-position={pos} --stop-datetime={stop} {files}; \
         echo $? > {STAGING}/rc) | awk '/^#[0-9][0-9][0-9][0-9][0-9][0-9] .*Xid = / \
         {{ last = $1 \" \" $2 }} {{ print }} END {{ print last > \"{last_file}\" }}' | \
         {client} -u {user}; rc=$?; [ \"$(cat {STAGING}/rc)\" = 0 ] || exit 90; exit $rc",
        db = shell_quote(db),
        stop = shell_quote(stop),
        files = quoted.join(" "),
        client = session.tools.client,
        user = shell_quote(&session.user),
    );
    let mut env = session.env.clone();
    env.push(("TZ".into(), "UTC".into()));
    let out = session
        .docker
        .run(session.container, &["sh", "-c", &script], &env, None)?;
    match out.exit_code {
        Some(0) => {}
        Some(90) => {
            return Err(Error::Failed(format!(
                "{tool} could not read the archived binary log of database {db}: {}",
                crate::docker::stderr_summary(&out.stderr)
            )))
        }
        code => {
            return Err(Error::Failed(format!(
                "replaying the binary log into database {db}: {} {}: {}",
                session.tools.client,
                crate::docker::exit_text(code),
                crate::docker::stderr_summary(&out.stderr)
            )))
        }
    }
    let last = session
        .docker
        .run_ok(session.container, &["cat", &last_file], &[])?;
    Ok(parse_header_time(last.trim()))
}

/// A binary log header's time (`#261120 10:07:31`, the hour space-padded), read as UTC.
fn parse_header_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.strip_prefix('#')?;
    let (date, time) = text.split_once(' ')?;
    let t = NaiveDateTime::parse_from_str(&format!("{date} {}", time.trim()), "%y%m%d %H:%M:%S")
        .ok()?;
    Some(Utc.from_utc_datetime(&t))
}

/// `'text'` for `sh`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_times_and_the_stop_are_whole_seconds_in_utc() {
        let t = parse_header_time("#261120  9:07:31").unwrap();
        assert_eq!(t, Utc.with_ymd_and_hms(2026, 11, 20, 9, 7, 31).unwrap());
        assert_eq!(parse_header_time(""), None);
        let at = Utc.with_ymd_and_hms(2026, 11, 20, 10, 7, 32).unwrap()
            + chrono::Duration::milliseconds(700);
        assert_eq!(stop_datetime(at), "2026-11-20 10:07:32");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
