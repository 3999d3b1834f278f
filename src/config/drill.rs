//! Drill definitions: the `restore-drills/*.toml` files that say which stack to restore
//! into scratch resources, what must hold in the restored data, and against which
//! targets (the stack's RPO and RTO unless the drill is stricter).
//!
//! Errors name file, line and column, as for stack files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::config::{check_duration, check_name, parse_cron, place, SourceKind, Stack};
use crate::error::{Error, Result};
use crate::settings::config_error;

/// The directory of drill files when drctl.toml does not name one.
pub const DEFAULT_DRILLS_DIR: &str = "/etc/drctl/restore-drills";

/// One drill, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillDef {
    /// The stack whose recovery points it restores.
    pub stack: Spanned<String>,
    /// When `run --due` and the daemon run it (cron expression).
    pub schedule: Option<Spanned<String>>,
    /// Time zone of the schedule; default UTC.
    pub timezone: Option<Spanned<String>>,
    /// Recovery time objective; default the stack's.
    pub rto: Option<Spanned<String>>,
    /// Recovery point objective; default the stack's.
    pub rpo: Option<Spanned<String>>,
    /// `"random"`: restore to a random second of the recovery window (point-in-time
    /// sources replayed to it) instead of the newest point.
    pub at: Option<Spanned<String>>,
    /// What must hold in the restored data.
    #[serde(default)]
    pub check: Vec<CheckDef>,
}

/// `[[drill.NAME.check]]`: one of `sql`, `path` or `redis_keys`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckDef {
    /// The stack source it looks at.
    pub source: Spanned<String>,
    /// A query whose first column of the first row is compared.
    pub sql: Option<String>,
    /// The database the query runs in; default the source's first.
    pub database: Option<String>,
    /// `= N`, `>= N`, `<= N`, or a literal string, against the query's value.
    pub expect: Option<Spanned<String>>,
    /// The query returns a timestamp at most this old at the recovery point.
    pub fresher_than: Option<Spanned<String>>,
    /// A path inside a volume source that must exist (relative to the volume's top).
    pub path: Option<Spanned<String>>,
    /// At least this many files under `path`.
    pub min_files: Option<u64>,
    /// The key count of a Redis source, as `expect` reads it.
    pub redis_keys: Option<Spanned<String>>,
}

/// A value test: `= N`, `>= N`, `<= N`, or a literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Equal to the number.
    Eq(f64),
    /// At least.
    Ge(f64),
    /// At most.
    Le(f64),
    /// The text, exactly (trimmed).
    Text(String),
}

impl Expect {
    /// Reads `= 5`, `>= 1000`, `<= 3` or anything else as a literal.
    pub fn parse(s: &str) -> Expect {
        let s = s.trim();
        let num = |rest: &str| rest.trim().parse::<f64>().ok();
        for (op, make) in [
            (">=", Expect::Ge as fn(f64) -> Expect),
            ("<=", Expect::Le),
            ("=", Expect::Eq),
        ] {
            if let Some(n) = s.strip_prefix(op).and_then(num) {
                return make(n);
            }
        }
        Expect::Text(s.to_string())
    }

    /// Whether `value` passes.
    pub fn holds(&self, value: &str) -> bool {
        let v = value.trim();
        let n = v.parse::<f64>().ok();
        match self {
            Expect::Eq(x) => n == Some(*x),
            Expect::Ge(x) => n.is_some_and(|n| n >= *x),
            Expect::Le(x) => n.is_some_and(|n| n <= *x),
            Expect::Text(t) => v == t,
        }
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Eq(n) => write!(f, "= {n}"),
            Expect::Ge(n) => write!(f, ">= {n}"),
            Expect::Le(n) => write!(f, "<= {n}"),
            Expect::Text(t) => write!(f, "{t:?}"),
        }
    }
}

/// What a check tests, once validated.
#[derive(Debug, Clone)]
pub enum CheckKind {
    /// A query's value against an expectation.
    Sql {
        sql: String,
        database: Option<String>,
        expect: Expect,
    },
    /// A query's timestamp against the recovery point's time.
    Fresh {
        sql: String,
        database: Option<String>,
        within: chrono::Duration,
    },
    /// A path in a volume, with at least this many files under it.
    Path { path: String, min_files: u64 },
    /// The key count of a Redis source.
    RedisKeys { expect: Expect },
}

/// A validated check.
#[derive(Debug, Clone)]
pub struct Check {
    /// The stack source.
    pub source: String,
    /// What it tests.
    pub kind: CheckKind,
}

impl Check {
    /// A one-line name for reports (`db: SELECT count(*) FROM users >= 1000`).
    pub fn name(&self) -> String {
        let what = match &self.kind {
            CheckKind::Sql { sql, expect, .. } => format!("{sql} {expect}"),
            CheckKind::Fresh { sql, within, .. } => {
                format!(
                    "{sql} fresher than {}",
                    crate::timespec::format_duration(within)
                )
            }
            CheckKind::Path { path, min_files } => format!("{path} has >= {min_files} file(s)"),
            CheckKind::RedisKeys { expect } => format!("keys {expect}"),
        };
        format!("{}: {what}", self.source)
    }
}

/// A drill with the file it came from.
#[derive(Debug, Clone)]
pub struct Drill {
    /// The drill's name.
    pub name: String,
    /// The stack it restores.
    pub stack: String,
    /// Schedule expression, if any.
    pub schedule: Option<String>,
    /// Time zone of the schedule.
    pub timezone: chrono_tz::Tz,
    /// Targets; `None` falls back to the stack's.
    pub rto: Option<chrono::Duration>,
    /// See `rto`.
    pub rpo: Option<chrono::Duration>,
    /// The checks, in order.
    pub checks: Vec<Check>,
    /// Restores to a random time in the recovery window (`at = "random"`).
    pub at_random: bool,
    /// The file that defines it.
    pub file: PathBuf,
    /// Where its name is written: `FILE:LINE:COLUMN`.
    pub place: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrillFile {
    #[serde(default)]
    drill: BTreeMap<Spanned<String>, DrillDef>,
}

fn at(file: &Path, text: &str, offset: usize, msg: impl std::fmt::Display) -> Error {
    config_error(file, text, offset, msg)
}

/// Reads an expectation that can hold: `>=` and `<=` need a number, and no comparison
/// with NaN or infinity ever means what was meant.
fn check_expect(s: &str) -> std::result::Result<Expect, String> {
    let e = Expect::parse(s);
    match &e {
        Expect::Eq(n) | Expect::Ge(n) | Expect::Le(n) if !n.is_finite() => {
            Err(format!("expect {s:?}: the number is not finite"))
        }
        Expect::Text(t) if t.starts_with(">=") || t.starts_with("<=") => Err(format!(
            "expect {s:?}: >= and <= compare with a number (>= 1000)"
        )),
        _ => Ok(e),
    }
}

/// A check path names something inside the restored volume: relative, and never
/// climbing out of it with `..` (the drill also refuses links that lead out).
fn check_volume_path(path: &str) -> std::result::Result<String, String> {
    if path.starts_with('/') {
        return Err(format!(
            "path {path:?} is absolute; a check path is relative to the volume's top"
        ));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(format!("path {path:?} climbs out of the volume with '..'"));
    }
    if path.chars().any(char::is_control) {
        return Err(format!("path {path:?} has a control character"));
    }
    Ok(path.trim_end_matches('/').to_string())
}

/// A drill's `at`: `"random"` (true) or `"newest"`, the default.
fn random_at(at: &str) -> std::result::Result<bool, String> {
    match at {
        "random" => Ok(true),
        "newest" => Ok(false),
        other => Err(format!(
            "at {other:?}: a drill restores the \"newest\" point or a \"random\" time in the \
             recovery window (a fixed time is `drctl drill NAME --at TIME`)"
        )),
    }
}

/// One `[[drill.NAME.check]]`, against the stack it looks at.
fn parse_check(
    c: &CheckDef,
    stack: &Stack,
    err: &dyn Fn(std::ops::Range<usize>, String) -> Error,
) -> Result<Check> {
    let source = c.source.get_ref();
    let kind = stack
        .def
        .source
        .iter()
        .find(|s| s.name.get_ref() == source)
        .map(|s| s.kind)
        .ok_or_else(|| {
            err(
                c.source.span(),
                format!("stack {} has no source {source:?}", stack.name),
            )
        })?;
    let bad = |msg: &str| err(c.source.span(), format!("check on {source}: {msg}"));
    let checked = match (&c.sql, &c.path, &c.redis_keys) {
        (Some(sql), None, None) => {
            if !matches!(kind, SourceKind::Postgres | SourceKind::Mysql) {
                return Err(bad("sql is for postgres and mysql sources"));
            }
            match (&c.expect, &c.fresher_than) {
                (Some(e), None) => CheckKind::Sql {
                    sql: sql.clone(),
                    database: c.database.clone(),
                    expect: check_expect(e.get_ref()).map_err(|m| err(e.span(), m))?,
                },
                (None, Some(f)) => CheckKind::Fresh {
                    sql: sql.clone(),
                    database: c.database.clone(),
                    within: check_duration(f, true).map_err(|m| err(f.span(), m))?,
                },
                _ => return Err(bad("an sql check has expect or fresher_than")),
            }
        }
        (None, Some(path), None) => {
            if kind != SourceKind::Volume {
                return Err(bad("path is for volume sources"));
            }
            CheckKind::Path {
                path: check_volume_path(path.get_ref()).map_err(|m| err(path.span(), m))?,
                min_files: c.min_files.unwrap_or(0),
            }
        }
        (None, None, Some(e)) => {
            if kind != SourceKind::Redis {
                return Err(bad("redis_keys is for redis sources"));
            }
            CheckKind::RedisKeys {
                expect: check_expect(e.get_ref()).map_err(|m| err(e.span(), m))?,
            }
        }
        _ => return Err(bad("give exactly one of sql, path or redis_keys")),
    };
    if c.min_files.is_some() && c.path.is_none() {
        return Err(bad("min_files goes with path"));
    }
    if (c.expect.is_some() || c.fresher_than.is_some() || c.database.is_some()) && c.sql.is_none() {
        return Err(bad("expect, fresher_than and database go with sql"));
    }
    Ok(Check {
        source: source.clone(),
        kind: checked,
    })
}

/// Parses and validates one drill file against the configured stacks.
pub fn parse_drill_file(file: &Path, text: &str, stacks: &[Stack]) -> Result<Vec<Drill>> {
    let parsed: DrillFile = toml::from_str(text)
        .map_err(|e| at(file, text, e.span().map_or(0, |s| s.start), e.message()))?;
    let mut out = Vec::new();
    for (name, def) in parsed.drill {
        let err = |s: std::ops::Range<usize>, msg: String| at(file, text, s.start, msg);
        let name_span = name.span();
        let name = name.into_inner();
        check_name("drill", &name).map_err(|m| err(name_span.clone(), m))?;
        let stack = stacks
            .iter()
            .find(|s| s.name == *def.stack.get_ref())
            .ok_or_else(|| {
                err(
                    def.stack.span(),
                    format!(
                        "drill {name}: no stack {:?} is configured",
                        def.stack.get_ref()
                    ),
                )
            })?;
        if let Some(expr) = &def.schedule {
            parse_cron(expr.get_ref())
                .map_err(|e| err(expr.span(), format!("schedule {:?}: {e}", expr.get_ref())))?;
        }
        let timezone = match &def.timezone {
            Some(tz) => tz
                .get_ref()
                .parse::<chrono_tz::Tz>()
                .map_err(|_| err(tz.span(), format!("unknown time zone {:?}", tz.get_ref())))?,
            None => chrono_tz::UTC,
        };
        let duration = |d: &Spanned<String>| check_duration(d, true).map_err(|m| err(d.span(), m));
        let rto = def.rto.as_ref().map(duration).transpose()?;
        let rpo = def.rpo.as_ref().map(duration).transpose()?;
        let at_random = def
            .at
            .as_ref()
            .map(|a| random_at(a.get_ref()).map_err(|m| err(a.span(), m)))
            .transpose()?
            .unwrap_or(false);
        let checks = def
            .check
            .iter()
            .map(|c| parse_check(c, stack, &err))
            .collect::<Result<Vec<Check>>>()?;
        out.push(Drill {
            name,
            stack: stack.name.clone(),
            schedule: def.schedule.as_ref().map(|s| s.get_ref().clone()),
            timezone,
            rto,
            rpo,
            checks,
            at_random,
            file: file.to_path_buf(),
            place: place(file, text, name_span.start),
        });
    }
    Ok(out)
}

/// Loads every `*.toml` of a directory (none when it does not exist); a drill defined
/// twice is an error.
pub fn load_drills(dir: &Path, stacks: &[Stack]) -> Result<Vec<Drill>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    super::load_named(
        dir,
        "drill",
        |f, text| parse_drill_file(f, text, stacks),
        |d: &Drill| (&d.name, &d.place),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stacks() -> Vec<Stack> {
        crate::config::parse_stack_file(
            Path::new("s.toml"),
            "[stack.shop]\nrpo = \"1h\"\n\
             [[stack.shop.source]]\nname = \"db\"\nkind = \"postgres\"\ncontainer = \"c\"\n\
             [[stack.shop.source]]\nname = \"files\"\nkind = \"volume\"\npath = \"/srv\"\n\
             [[stack.shop.source]]\nname = \"cache\"\nkind = \"redis\"\ncontainer = \"r\"\n",
        )
        .unwrap()
    }

    fn check(text: &str) -> std::result::Result<Vec<Drill>, String> {
        parse_drill_file(Path::new("d.toml"), text, &stacks()).map_err(|e| e.to_string())
    }

    #[test]
    fn expectations_read_and_compare() {
        assert_eq!(Expect::parse(">= 1000"), Expect::Ge(1000.0));
        assert_eq!(Expect::parse("<=3"), Expect::Le(3.0));
        assert_eq!(Expect::parse("= 5"), Expect::Eq(5.0));
        assert_eq!(Expect::parse("ok"), Expect::Text("ok".into()));
        assert!(Expect::Ge(1000.0).holds("1000000\n"));
        assert!(!Expect::Ge(10_000_000.0).holds("1000000"));
        assert!(!Expect::Eq(1.0).holds("one"));
        assert!(Expect::Text("on".into()).holds(" on "));
    }

    #[test]
    fn a_full_drill_parses() {
        let d = check(
            "[drill.shop]\nstack = \"shop\"\nschedule = \"0 4 * * 0\"\nrto = \"30m\"\n\
             [[drill.shop.check]]\nsource = \"db\"\nsql = \"SELECT count(*) FROM t\"\nexpect = \">= 1\"\n\
             [[drill.shop.check]]\nsource = \"db\"\nsql = \"SELECT max(at) FROM t\"\nfresher_than = \"1d\"\n\
             [[drill.shop.check]]\nsource = \"files\"\npath = \"a/b\"\nmin_files = 2\n\
             [[drill.shop.check]]\nsource = \"cache\"\nredis_keys = \">= 1\"\n",
        )
        .unwrap();
        assert_eq!(d[0].checks.len(), 4);
        assert_eq!(d[0].rto, Some(chrono::Duration::minutes(30)));
        assert_eq!(d[0].rpo, None);
        assert_eq!(d[0].checks[3].name(), "cache: keys >= 1");
    }

    #[test]
    fn errors_name_the_place() {
        let e = check("[drill.x]\nstack = \"nope\"\n").unwrap_err();
        assert!(e.contains("d.toml:2:9") && e.contains("no stack"), "{e}");
        let e = check(
            "[drill.x]\nstack = \"shop\"\n[[drill.x.check]]\nsource = \"zz\"\nsql = \"x\"\nexpect = \"1\"\n",
        )
        .unwrap_err();
        assert!(e.contains("d.toml:4:10") && e.contains("no source"), "{e}");
        let e = check(
            "[drill.x]\nstack = \"shop\"\n[[drill.x.check]]\nsource = \"files\"\nsql = \"x\"\nexpect = \"1\"\n",
        )
        .unwrap_err();
        assert!(e.contains("sql is for postgres"), "{e}");
        let e =
            check("[drill.x]\nstack = \"shop\"\n[[drill.x.check]]\nsource = \"db\"\nsql = \"x\"\n")
                .unwrap_err();
        assert!(e.contains("expect or fresher_than"), "{e}");
        let e = check("[drill.x]\nstack = \"shop\"\nrto = \"soon\"\n").unwrap_err();
        assert!(e.contains("d.toml:3:7"), "{e}");
        for (path, why) in [
            ("/etc/shadow", "absolute"),
            ("../../etc", "climbs out"),
            ("a/../../b", "climbs out"),
        ] {
            let e = check(&format!(
                "[drill.x]\nstack = \"shop\"\n[[drill.x.check]]\nsource = \"files\"\npath = \"{path}\"\n"
            ))
            .unwrap_err();
            assert!(e.contains("d.toml:5:8") && e.contains(why), "{e}");
        }
        for bad in [">= many", "<= ", "= nan", ">= inf", "<= 1e400"] {
            let e = check(&format!(
                "[drill.x]\nstack = \"shop\"\n[[drill.x.check]]\nsource = \"cache\"\nredis_keys = \"{bad}\"\n"
            ))
            .unwrap_err();
            assert!(
                e.contains("d.toml:5:14") && e.contains("expect"),
                "{bad}: {e}"
            );
        }
        let e = check("[drill.x]\nstack = \"shop\"\nrto = \"0s\"\n").unwrap_err();
        assert!(
            e.contains("d.toml:3:7") && e.contains("longer than 0s"),
            "{e}"
        );
        let e = check("[drill.x]\nstack = \"shop\"\ncolour = 1\n").unwrap_err();
        assert!(
            e.contains("d.toml:3:1") && e.contains("unknown field"),
            "{e}"
        );
    }
}
