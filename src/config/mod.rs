//! Stack definitions: the `schedules/*.toml` files that say what each stack backs up,
//! when, and against which recovery targets; `drill` reads the `restore-drills/*.toml` files.
//!
//! Every error names the file, line and column, whether TOML rejected the syntax or drctl
//! rejected a value (an unknown kind or key, a cron expression that never fires, a
//! duration it cannot read or that is out of range, a glob that does not compile).

mod compose;
pub mod drill;
pub mod notify;

pub use compose::ComposeDef;
pub use notify::{EmailDef, NotifyDef, TelegramDef};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{TimeZone, Utc};
use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};
use crate::retention::KeepPolicy;
use crate::settings::{config_error, line_col, read_config_text};
use crate::timespec::parse_duration;

/// The directory of stack files when drctl.toml does not name one.
pub const DEFAULT_SCHEDULES_DIR: &str = "/etc/drctl/schedules";

pub use crate::repo::point::SourceKind;

/// One source of a stack, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceDef {
    /// Unique within the stack.
    pub name: Spanned<String>,
    /// postgres, mysql, redis or volume.
    pub kind: SourceKind,
    /// The database's container.
    pub container: Option<Spanned<String>>,
    /// Databases to dump; default: every non-template database.
    #[serde(default)]
    pub databases: Vec<String>,
    /// Database user; default from the container's environment.
    pub user: Option<String>,
    /// File holding the password; default from the container's environment.
    pub password_file: Option<PathBuf>,
    /// Host path of a volume source.
    pub path: Option<Spanned<String>>,
    /// Named Docker volume of a volume source.
    pub volume: Option<Spanned<String>>,
    /// Containers stopped while this source is read.
    #[serde(default)]
    pub stop: Vec<String>,
    /// How long a stopped container gets to shut down cleanly before it is killed
    /// (default 30s): `docker stop`'s grace.
    pub stop_grace: Option<Spanned<String>>,
    /// Containers paused while this source is read.
    #[serde(default)]
    pub pause: Vec<String>,
    /// Glob patterns left out of a volume source.
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
    /// A schedule for this source alone (cron expression).
    pub schedule: Option<Spanned<String>>,
    /// PostgreSQL: also take a physical base backup (`pg_basebackup`) with each run, the
    /// start of a point-in-time restore.
    pub pitr: Option<Spanned<bool>>,
    /// With `pitr`: the most WAL the server may keep for drctl's replication slot while
    /// the archive is behind (`max_slot_wal_keep_size`); past it the server drops what
    /// was not archived rather than fill its disk. Default 2GiB.
    pub wal_keep_limit: Option<Spanned<String>>,
}

/// One stack, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackDef {
    /// Cron expression (5 fields, minute first; 6 with seconds).
    pub schedule: Option<Spanned<String>>,
    /// Time zone of the schedule (IANA name); default UTC.
    pub timezone: Option<Spanned<String>>,
    /// Recovery point objective: the oldest a recovery point may be.
    pub rpo: Option<Spanned<String>>,
    /// Recovery time objective: the longest a restore may take.
    pub rto: Option<Spanned<String>>,
    /// The sources backed up together as one recovery point.
    #[serde(default)]
    pub source: Vec<SourceDef>,
    /// How much history `drctl forget` keeps.
    pub keep: Option<Spanned<KeepDef>>,
    /// Commands run before and after each scheduled or manual run.
    #[serde(default)]
    pub hook: Vec<HookDef>,
    /// Who hears of each run's start and outcome.
    pub notify: Option<NotifyDef>,
    /// The Compose project its containers belong to (`drctl recover` starts it).
    pub compose: Option<ComposeDef>,
    /// Stacks recovered before this one: those whose services it uses (a shared
    /// database server, the network it joins).
    #[serde(default)]
    pub depends_on: Vec<Spanned<String>>,
}

/// How long a stopped container gets to shut down cleanly, unless its source says.
pub const DEFAULT_STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

impl SourceDef {
    /// The grace a container in `stop` gets to shut down.
    pub fn stop_grace(&self) -> std::time::Duration {
        self.stop_grace
            .as_ref()
            .and_then(|g| parse_duration(g.get_ref()).ok())
            .and_then(|d| d.to_std().ok())
            .unwrap_or(DEFAULT_STOP_GRACE)
    }

    /// Whether it takes base backups for point-in-time restores.
    pub fn pitr(&self) -> bool {
        self.pitr.as_ref().is_some_and(|p| *p.get_ref())
    }

    /// Whether `drctl archive` streams its log continuously: a PostgreSQL source's WAL
    /// or a MariaDB/MySQL source's binary log, with `pitr` (a server with binary logging
    /// off records why it cannot be restored to a time instead).
    pub fn archives_log(&self) -> bool {
        self.pitr() && matches!(self.kind, SourceKind::Postgres | SourceKind::Mysql)
    }

    /// The bound on WAL kept for the archive's slot, in bytes (checked when loaded).
    pub fn wal_keep_limit(&self) -> u64 {
        self.wal_keep_limit
            .as_ref()
            .and_then(|l| crate::human::parse_bytes(l.get_ref()).ok())
            .unwrap_or(DEFAULT_WAL_KEEP_LIMIT)
    }
}

/// The default bound on the WAL a server keeps for drctl's slot.
pub const DEFAULT_WAL_KEEP_LIMIT: u64 = 2 << 30;

/// `[stack.NAME.keep]`: the retention policy of a stack's recovery points, as written.
pub type KeepDef = KeepPolicy<Spanned<String>>;

impl KeepDef {
    /// The policy to apply; `within` was checked when the file was loaded.
    pub fn policy(&self) -> KeepPolicy {
        self.map_within(|w| parse_duration(w.get_ref()).ok())
    }
}

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookWhen {
    /// Before the sources are read; a failure can stop the run.
    Pre,
    /// After the run, whatever its outcome (in `DRCTL_STATUS`).
    Post,
}

/// What a failing hook does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// The run fails (a pre hook: before anything is read).
    Abort,
    /// A warning; the run goes on.
    Continue,
}

/// `[[stack.NAME.hook]]`: a command run by `/bin/sh -c`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookDef {
    /// `pre` or `post`.
    pub when: HookWhen,
    /// The shell command.
    pub command: String,
    /// Killed after this long (default 5m).
    pub timeout: Option<Spanned<String>>,
    /// Default: `abort` for pre hooks, `continue` for post hooks.
    pub on_failure: Option<OnFailure>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StackFile {
    #[serde(default)]
    stack: BTreeMap<Spanned<String>, StackDef>,
}

impl Stack {
    /// The stacks it names in `depends_on`.
    pub fn depends_on(&self) -> Vec<String> {
        self.def
            .depends_on
            .iter()
            .map(|d| d.get_ref().clone())
            .collect()
    }
}

/// A stack with the file it came from.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The stack's name.
    pub name: String,
    /// Its definition.
    pub def: StackDef,
    /// The file that defines it.
    pub file: PathBuf,
    /// Where its name is written: `FILE:LINE:COLUMN`.
    pub place: String,
    /// The drill files that name it, carried with its recovery points.
    pub drill_files: Vec<PathBuf>,
}

/// Parses a 5-field (minute first) or 6-field (seconds first) cron expression.
pub fn parse_cron(expr: &str) -> std::result::Result<cron::Schedule, String> {
    let fields = expr.split_whitespace().count();
    let full = match fields {
        5 => {
            let mut f: Vec<String> = expr.split_whitespace().map(str::to_string).collect();
            f[4] = unix_weekdays(&f[4])?;
            format!("0 {}", f.join(" "))
        }
        6 | 7 => expr.to_string(),
        n => return Err(format!("a cron expression has 5 fields, this one has {n}")),
    };
    let schedule = cron::Schedule::from_str(&full).map_err(|e| e.to_string())?;
    check_fires(&schedule)?;
    Ok(schedule)
}

/// An expression can be valid and still name no real time (`0 0 30 2 *`). It must fire
/// within 28 years of a fixed date: the Gregorian cycle of weekdays and leap years, so
/// that every combination of day, month and weekday comes round, and the verdict does
/// not depend on the day of the check.
fn check_fires(schedule: &cron::Schedule) -> std::result::Result<(), String> {
    const FROM_YEAR: i32 = 2025;
    const YEARS: i32 = 28;
    let from = Utc
        .with_ymd_and_hms(FROM_YEAR, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date");
    let until = Utc
        .with_ymd_and_hms(FROM_YEAR + YEARS, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date");
    match schedule.after(&from).next() {
        Some(t) if t < until => Ok(()),
        _ => Err(format!(
            "never fires: no time from {FROM_YEAR} to {} matches it",
            FROM_YEAR + YEARS
        )),
    }
}

/// The glob an exclude pattern becomes under a backed-up path `base` (escaped): with a
/// `/` it matches from the path's top (`cache/**`), without one a name at any depth.
pub fn exclude_glob(base: &str, pattern: &str) -> std::result::Result<globset::Glob, String> {
    let base = base.trim_end_matches('/');
    let full = if pattern.contains('/') {
        format!("{base}/{}", pattern.trim_start_matches('/'))
    } else {
        format!("{base}/**/{pattern}")
    };
    globset::GlobBuilder::new(&full)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("exclude pattern {pattern:?}: {}", e.kind()))
}

/// A name that becomes a directory or a file name (a stack's, a source's, a drill's):
/// not empty, no `/`, not `.` or `..`, no spaces or control characters.
pub fn check_name(what: &str, name: &str) -> std::result::Result<(), String> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', ' '])
        || name.chars().any(char::is_control)
    {
        return Err(format!(
            "invalid {what} name {name:?}: a name is not empty, has no '/', space or control character, and is not . or .."
        ));
    }
    Ok(())
}

/// Unix cron counts weekdays 0-7 from Sunday (0 and 7 both Sunday); the cron crate counts
/// 1-7 from Sunday. Rewrites the numbers of a day-of-week field; names pass through.
fn unix_weekdays(field: &str) -> std::result::Result<String, String> {
    let day = |d: &str| -> std::result::Result<u32, String> {
        match d.parse::<u32>() {
            Ok(n) if n <= 7 => Ok(n % 7 + 1),
            _ => Err(format!("day of week {d:?} is not 0-7")),
        }
    };
    let is_num = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mut items = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        let mapped = match range.split_once('-') {
            // A range ending on Sunday as 7 (`5-7`) wraps in the crate's numbering.
            Some((a, "7")) if is_num(a) => {
                let a = day(a)?;
                items.push("1".to_string());
                if a == 1 {
                    "1".to_string()
                } else {
                    format!("{a}-7")
                }
            }
            Some((a, b)) if is_num(a) && is_num(b) => format!("{}-{}", day(a)?, day(b)?),
            None if is_num(range) => day(range)?.to_string(),
            _ => range.to_string(),
        };
        items.push(match step {
            Some(s) => format!("{mapped}/{s}"),
            None => mapped,
        });
    }
    Ok(items.join(","))
}

fn at(file: &Path, text: &str, offset: usize, msg: impl std::fmt::Display) -> Error {
    config_error(file, text, offset, msg)
}

/// `FILE:LINE:COLUMN` of a byte offset.
pub(crate) fn place(file: &Path, text: &str, offset: usize) -> String {
    let (line, col) = line_col(text, offset);
    format!("{}:{line}:{col}", file.display())
}

/// Reads a duration of a configuration file; `positive`: zero cannot work there.
pub(crate) fn check_duration(
    d: &Spanned<String>,
    positive: bool,
) -> std::result::Result<chrono::Duration, String> {
    let v = parse_duration(d.get_ref())?;
    if positive && v <= chrono::Duration::zero() {
        return Err(format!("duration {:?} must be longer than 0s", d.get_ref()));
    }
    Ok(v)
}

/// Parses and validates one stack file.
pub fn parse_stack_file(file: &Path, text: &str) -> Result<Vec<Stack>> {
    let parsed: StackFile = toml::from_str(text)
        .map_err(|e| at(file, text, e.span().map_or(0, |s| s.start), e.message()))?;
    let mut out = Vec::new();
    for (name, def) in parsed.stack {
        let err = |s: &std::ops::Range<usize>, msg: String| at(file, text, s.start, msg);
        let name_span = name.span();
        let name = name.into_inner();
        check_name("stack", &name).map_err(|m| err(&name_span, m))?;
        check_stack_settings(&def, &err)?;
        check_sources(&name, &def.source, &err)?;
        out.push(Stack {
            name,
            def,
            file: file.to_path_buf(),
            place: place(file, text, name_span.start),
            drill_files: Vec::new(),
        });
    }
    Ok(out)
}

/// Makes the error for a span of the stack file being checked (`FILE:LINE:COLUMN: ...`).
type ErrAt<'a> = &'a dyn Fn(&std::ops::Range<usize>, String) -> Error;

/// Checks a stack's own settings, each error at its place in the file: the schedules
/// (its sources' too), the time zone, the durations, the notify URLs and the keep policy.
fn check_stack_settings(def: &StackDef, err: ErrAt<'_>) -> Result<()> {
    for expr in def
        .schedule
        .iter()
        .chain(def.source.iter().filter_map(|s| s.schedule.as_ref()))
    {
        parse_cron(expr.get_ref())
            .map_err(|e| err(&expr.span(), format!("schedule {:?}: {e}", expr.get_ref())))?;
    }
    if let Some(tz) = &def.timezone {
        tz.get_ref()
            .parse::<chrono_tz::Tz>()
            .map_err(|_| err(&tz.span(), format!("unknown time zone {:?}", tz.get_ref())))?;
    }
    // Zero cannot work as a target or a timeout; `within` may keep just the newest.
    let positive = [&def.rpo, &def.rto]
        .into_iter()
        .flatten()
        .chain(def.hook.iter().filter_map(|h| h.timeout.as_ref()))
        .chain(def.notify.as_ref().and_then(|n| n.timeout.as_ref()))
        .map(|d| (d, true));
    let within = def
        .keep
        .as_ref()
        .and_then(|k| k.get_ref().within.as_ref())
        .map(|d| (d, false));
    for (d, positive) in positive.chain(within) {
        check_duration(d, positive).map_err(|m| err(&d.span(), m))?;
    }
    if let Some(n) = &def.notify {
        n.check().map_err(|(span, m)| err(&span, m))?;
    }
    if let Some(c) = &def.compose {
        c.check().map_err(|(span, m)| err(&span, m))?;
    }
    for d in &def.depends_on {
        check_name("stack", d.get_ref()).map_err(|m| err(&d.span(), m))?;
    }
    if let Some(k) = &def.keep {
        if k.get_ref().policy().is_empty() {
            return Err(err(
                &k.span(),
                "keep has no rule: set last, daily, ...".into(),
            ));
        }
    }
    Ok(())
}

/// Checks the sources of stack `stack` in file order: names valid and unique within the
/// stack, then each one's own settings.
fn check_sources(stack: &str, sources: &[SourceDef], err: ErrAt<'_>) -> Result<()> {
    let mut names = std::collections::HashSet::new();
    for s in sources {
        check_name("source", s.name.get_ref()).map_err(|m| err(&s.name.span(), m))?;
        if !names.insert(s.name.get_ref().clone()) {
            return Err(err(
                &s.name.span(),
                format!("stack {stack} has two sources named {}", s.name.get_ref()),
            ));
        }
        check_source(s, err)?;
    }
    Ok(())
}

/// Checks one source: what its kind needs (a container for a database dump, one absolute
/// path or one volume for a volume), its exclude globs, and stop or pause, not both.
fn check_source(s: &SourceDef, err: ErrAt<'_>) -> Result<()> {
    match s.kind {
        SourceKind::Postgres | SourceKind::Mysql | SourceKind::Redis => {
            if let Some(x) = s.exclude.first() {
                return Err(err(&x.span(), "exclude is for volume sources".to_string()));
            }
            if s.container.is_none() {
                return Err(err(
                    &s.name.span(),
                    format!("source {} needs a container", s.name.get_ref()),
                ));
            }
            if let Some(p) = s.path.as_ref().or(s.volume.as_ref()) {
                return Err(err(
                    &p.span(),
                    "path and volume are for volume sources".to_string(),
                ));
            }
        }
        SourceKind::Volume => match (&s.path, &s.volume) {
            (None, None) => {
                return Err(err(
                    &s.name.span(),
                    format!(
                        "volume source {} needs a path or a volume",
                        s.name.get_ref()
                    ),
                ))
            }
            (Some(_), Some(v)) => {
                return Err(err(
                    &v.span(),
                    "give a path or a volume, not both".to_string(),
                ))
            }
            (Some(p), None) if !p.get_ref().starts_with('/') => {
                return Err(err(
                    &p.span(),
                    format!("path {:?} is not absolute", p.get_ref()),
                ))
            }
            _ => {}
        },
    }
    if let Some(p) = s.pitr.as_ref().filter(|p| *p.get_ref()) {
        if !matches!(s.kind, SourceKind::Postgres | SourceKind::Mysql) {
            return Err(err(
                &p.span(),
                format!(
                    "pitr is for postgres and mysql sources; source {} is {}",
                    s.name.get_ref(),
                    s.kind.name()
                ),
            ));
        }
    }
    if let Some(l) = &s.wal_keep_limit {
        if !s.pitr() {
            return Err(err(
                &l.span(),
                format!(
                    "wal_keep_limit needs pitr = true (source {})",
                    s.name.get_ref()
                ),
            ));
        }
        match crate::human::parse_bytes(l.get_ref()) {
            Ok(n) if n >= 64 << 20 => {}
            Ok(_) => {
                return Err(err(
                    &l.span(),
                    "wal_keep_limit must be at least 64MiB".into(),
                ))
            }
            Err(m) => return Err(err(&l.span(), m)),
        }
    }
    for x in &s.exclude {
        exclude_glob("/", x.get_ref()).map_err(|m| err(&x.span(), m))?;
    }
    if let Some(g) = &s.stop_grace {
        check_duration(g, true).map_err(|m| err(&g.span(), m))?;
        if s.stop.is_empty() {
            return Err(err(
                &g.span(),
                "stop_grace without stop: it is the grace of the containers in stop".into(),
            ));
        }
    }
    if !s.stop.is_empty() && !s.pause.is_empty() {
        return Err(err(
            &s.name.span(),
            format!("source {}: stop or pause, not both", s.name.get_ref()),
        ));
    }
    Ok(())
}

/// Loads every `*.toml` of a directory, in name order; a stack defined twice is an error.
pub fn load_stacks(dir: &Path) -> Result<Vec<Stack>> {
    load_named(dir, "stack", parse_stack_file, |s: &Stack| {
        (&s.name, &s.place)
    })
}

/// Parses every `*.toml` of `dir` in name order with `parse`, refusing a `what` whose name
/// (from `key`, with its place) two definitions share: both places are named.
pub(crate) fn load_named<T>(
    dir: &Path,
    what: &str,
    mut parse: impl FnMut(&Path, &str) -> Result<Vec<T>>,
    key: impl Fn(&T) -> (&str, &str),
) -> Result<Vec<T>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::Config(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut out: Vec<T> = Vec::new();
    for f in files {
        let text = read_config_text(&f)?;
        for item in parse(&f, &text)? {
            let (name, place) = key(&item);
            if let Some(prev) = out.iter().find(|p| key(p).0 == name) {
                return Err(Error::Config(format!(
                    "{place}: {what} {name} is already defined at {}",
                    key(prev).1
                )));
            }
            out.push(item);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> std::result::Result<Vec<Stack>, String> {
        parse_stack_file(Path::new("s.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_valid_stack_parses() {
        let stacks = check(
            r#"
[stack.web]
schedule = "*/15 * * * *"
timezone = "Europe/Moscow"
rpo = "15m"
rto = "1h"

[[stack.web.source]]
name = "db"
kind = "postgres"
container = "web-db"
databases = ["shop"]

[[stack.web.source]]
name = "files"
kind = "volume"
path = "/mnt/data/web/files"
stop = ["web-app"]
exclude = ["cache/**"]
"#,
        )
        .unwrap();
        assert_eq!(stacks[0].name, "web");
        assert_eq!(stacks[0].def.source.len(), 2);
        assert_eq!(stacks[0].def.source[1].kind, SourceKind::Volume);
    }

    #[test]
    fn errors_name_line_and_column() {
        let cases = [
            ("[stack.a]\nschedule = \"*/15 * * *\"\n", "s.toml:2:12", "5 fields"),
            ("[stack.a]\nschedule = \"99 * * * *\"\n", "s.toml:2:12", "schedule"),
            ("[stack.a]\nrpo = \"soon\"\n", "s.toml:2:7", "cannot read duration"),
            ("[stack.a]\ntimezone = \"Mars/Base\"\n", "s.toml:2:12", "unknown time zone"),
            ("[stack.a]\n[[stack.a.source]]\nname = \"x\"\nkind = \"oracle\"\n", "s.toml:4:8", "unknown variant"),
            ("[stack.a]\n[[stack.a.source]]\nname = \"x\"\nkind = \"volume\"\n", "s.toml:3:8", "needs a path or a volume"),
            ("[stack.a]\n[[stack.a.source]]\nname = \"x\"\nkind = \"postgres\"\n", "s.toml:3:8", "needs a container"),
            ("[stack.a]\nbogus = 1\n", "s.toml:2:1", "unknown field"),
            ("[stack.a]\n[[stack.a.source]]\nname = \"x\"\nkind = \"volume\"\npath = \"rel/dir\"\n", "s.toml:5:8", "not absolute"),
        ];
        for (text, pos, what) in cases {
            let err = check(text).unwrap_err();
            assert!(
                err.contains(pos) && err.contains(what),
                "{text:?} gave {err}"
            );
        }
    }

    #[test]
    fn weekdays_count_from_sunday_zero_as_in_unix_cron() {
        use chrono::{Datelike, TimeZone, Utc, Weekday};
        let from = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap(); // a Wednesday
        let next = |e: &str| {
            parse_cron(e)
                .unwrap()
                .after(&from)
                .next()
                .unwrap()
                .weekday()
        };
        assert_eq!(next("0 3 * * 0"), Weekday::Sun);
        assert_eq!(next("0 3 * * 7"), Weekday::Sun);
        assert_eq!(next("0 3 * * 1"), Weekday::Mon);
        assert_eq!(next("0 3 * * 6"), Weekday::Sat);
        assert_eq!(next("0 3 * * 1-5"), Weekday::Thu);
        assert_eq!(next("0 3 * * 5-7"), Weekday::Fri);
        assert_eq!(next("0 3 * * SUN"), Weekday::Sun);
        assert!(parse_cron("0 3 * * 8").is_err());
    }

    #[test]
    fn cron_takes_five_or_six_fields() {
        assert!(parse_cron("0 0 * * *").is_ok());
        assert!(parse_cron("30 0 0 * * *").is_ok());
        assert!(parse_cron("* *").is_err());
    }
}
