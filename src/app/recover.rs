//! `recover`: a new host from the repository URL and the key file alone. Today it lists
//! what the repository holds and puts drctl's configuration back as the points carry it;
//! the stacks themselves are then restored with `drctl restore STACK`.

use std::io::Write;
use std::path::Path;

use serde_json::json;

use crate::cli::RecoverArgs;
use crate::error::{Error, IoContext, Result};
use crate::repo::point::PointEntry;
use crate::timespec::parse_time;

use super::{local_time, out, print_json, App};

impl App {
    pub(super) fn recover(&self, a: &RecoverArgs) -> Result<()> {
        let at =
            a.at.as_deref()
                .map(|t| parse_time(t, self.now))
                .transpose()?;
        let session = self.open()?;
        let catalog = session.catalog();
        let known = catalog.point_stacks()?;
        let names: Vec<String> = if a.list || a.all {
            known.clone()
        } else {
            a.stacks.clone()
        };
        if names.is_empty() && !a.list {
            return Err(Error::Usage(
                "name the stacks to recover, or --all (--list shows them)".into(),
            ));
        }
        // Each stack's newest point at or before the time.
        let mut chosen: Vec<(String, PointEntry, usize)> = Vec::new();
        for name in &names {
            if !known.contains(name) {
                return Err(Error::Usage(format!(
                    "the repository has no recovery point of stack {name} (it has: {})",
                    known.join(", ")
                )));
            }
            let points = catalog.points(name)?;
            let count = points.len();
            let newest = points
                .into_iter()
                .rev()
                .find(|e| at.is_none_or(|t| e.point.time <= t))
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "stack {name} has no recovery point at or before --at"
                    ))
                })?;
            chosen.push((name.clone(), newest, count));
        }
        if a.list {
            return self.print_recoverable(&chosen);
        }
        let Some(dir) = &a.config_to else {
            return Err(Error::Usage(
                "recover puts drctl's configuration back with --config-to DIR; restore each \
                 stack after it with `drctl restore STACK` (a whole-host recovery that also \
                 starts the Compose projects is not built yet)"
                    .into(),
            ));
        };
        for (name, e, _) in &chosen {
            if e.point.config.is_empty() {
                eprintln!(
                    "warning: the point of stack {name} of {} carries no configuration \
                     (written by a drctl before 0.1 carried it)",
                    local_time(&e.point.time)
                );
            }
            for f in &e.point.config {
                let target = dir.join(&f.path);
                let written = write_carried(dir, &f.path, &f.text)?;
                eprintln!(
                    "{} {} (stack {name}, point {} of {})",
                    if written {
                        "wrote"
                    } else {
                        "kept the existing"
                    },
                    target.display(),
                    e.id.short(),
                    local_time(&e.point.time)
                );
            }
        }
        Ok(())
    }

    fn print_recoverable(&self, chosen: &[(String, PointEntry, usize)]) -> Result<()> {
        if self.json {
            let v: Vec<_> = chosen
                .iter()
                .map(|(name, e, count)| {
                    json!({
                        "stack": name,
                        "points": count,
                        "newest": e.id.to_string(),
                        "time": e.point.time,
                        "complete": e.point.complete(),
                        "sources": e.point.sources.iter().map(|s| &s.name).collect::<Vec<_>>(),
                        "config": e.point.config.iter().map(|f| &f.path).collect::<Vec<_>>(),
                    })
                })
                .collect();
            return print_json(&json!(v));
        }
        let mut text = format!(
            "{:<24} {:>6}  {:<19}  {:<9}  {}\n",
            "STACK", "POINTS", "NEWEST", "STATE", "SOURCES / CONFIGURATION CARRIED"
        );
        for (name, e, count) in chosen {
            let sources: Vec<&str> = e.point.sources.iter().map(|s| s.name.as_str()).collect();
            text.push_str(&format!(
                "{:<24} {:>6}  {:<19}  {:<9}  {}; {}\n",
                name,
                count,
                local_time(&e.point.time),
                if e.point.complete() {
                    "complete"
                } else {
                    "partial"
                },
                sources.join(", "),
                if e.point.config.is_empty() {
                    "no configuration".to_string()
                } else {
                    e.point
                        .config
                        .iter()
                        .map(|f| f.path.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ));
        }
        out(&text)
    }
}

/// Writes a carried file at `rel` under `dir` where none is; `false` when one is there
/// already (an operator's file is never replaced). Only `schedules/NAME.toml` and
/// `restore-drills/NAME.toml` are written: anything else in a point is refused.
fn write_carried(dir: &Path, rel: &str, text: &str) -> Result<bool> {
    let parts: Vec<&str> = rel.split('/').collect();
    let plain = |n: &str| !n.is_empty() && n != "." && n != ".." && !n.contains('\\');
    let ok = matches!(parts.as_slice(), [d, name]
        if (*d == "schedules" || *d == "restore-drills") && plain(name) && name.ends_with(".toml"));
    if !ok {
        return Err(Error::Damage(format!(
            "a recovery point carries a configuration file named {rel:?}; only \
             schedules/NAME.toml and restore-drills/NAME.toml are written"
        )));
    }
    let target = dir.join(rel);
    let target = target.as_path();
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).ctx(|| format!("creating {}", parent.display()))?;
    }
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(target)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(Error::io(format!("creating {}", target.display()), e)),
    };
    f.write_all(text.as_bytes())
        .ctx(|| format!("writing {}", target.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stack_and_drill_files_are_written_and_none_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            "../x.toml",
            "/etc/cron.d/x.toml",
            "schedules/../../x.toml",
            "schedules/a/b.toml",
            "schedules/x.sh",
            "other/x.toml",
        ] {
            let e = write_carried(dir.path(), bad, "x").unwrap_err();
            assert!(e.to_string().contains("only"), "{bad}: {e}");
        }
        assert!(write_carried(dir.path(), "schedules/shop.toml", "one").unwrap());
        assert!(!write_carried(dir.path(), "schedules/shop.toml", "two").unwrap());
        let kept = std::fs::read_to_string(dir.path().join("schedules/shop.toml")).unwrap();
        assert_eq!(kept, "one");
    }
}
