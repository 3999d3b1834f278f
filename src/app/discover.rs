//! `discover`: stack and drill files proposed from the running Compose projects.

use std::path::Path;

use crate::cli::DiscoverArgs;
use crate::config;
use crate::discover::{self, SourceProposal};
use crate::docker::Docker;
use crate::error::{Error, IoContext, Result};

use super::{out, App};

impl App {
    pub(super) fn discover(&self, a: &DiscoverArgs) -> Result<()> {
        let docker = Docker::connect(self.rt.clone())?;
        let containers = docker.running_containers()?;
        let networks = docker
            .networks_with_label(discover::PROJECT)
            .into_iter()
            .collect();
        let proposal = discover::propose(&containers, &networks, &holds_sqlite);
        if !proposal.outside.is_empty() {
            eprintln!(
                "note: not in a Compose project, not proposed: {}",
                proposal.outside.join(", ")
            );
        }
        if proposal.stacks.is_empty() {
            eprintln!("note: no running Compose project found");
            return Ok(());
        }
        let nonempty = |s: &SourceProposal| {
            let dir = match (&s.path, &s.volume) {
                (Some(p), _) => Some(p.into()),
                (None, Some(v)) => docker.volume_path(v).ok(),
                _ => None,
            };
            dir.and_then(|d: std::path::PathBuf| std::fs::read_dir(d).ok())
                .is_some_and(|mut e| e.next().is_some())
        };
        let Some(dir) = &a.write else {
            let mut text = String::new();
            for (i, s) in proposal.stacks.iter().enumerate() {
                text.push_str(&format!(
                    "# ---- schedules/{}.toml\n{}\n# ---- restore-drills/{}.toml\n{}\n",
                    s.name,
                    discover::render_stack(s, i),
                    s.name,
                    discover::render_drill(s, &nonempty)
                ));
            }
            return out(&text);
        };
        for (i, s) in proposal.stacks.iter().enumerate() {
            let file = dir.join("schedules").join(format!("{}.toml", s.name));
            if file.exists() {
                let text = crate::settings::read_config_text(&file)?;
                let existing = config::parse_stack_file(&file, &text)?
                    .into_iter()
                    .find(|st| st.name == s.name)
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "{} exists but defines no stack {}; not touching it",
                            file.display(),
                            s.name
                        ))
                    })?;
                let changes = discover::changes(&existing, s);
                if changes.is_empty() {
                    eprintln!("{}: unchanged", file.display());
                }
                for c in changes {
                    eprintln!("{}: {c}", file.display());
                }
                continue;
            }
            write_new(&file, &discover::render_stack(s, i))?;
            eprintln!("wrote {}", file.display());
            let drill = dir.join("restore-drills").join(format!("{}.toml", s.name));
            if !drill.exists() {
                write_new(&drill, &discover::render_drill(s, &nonempty))?;
                eprintln!("wrote {}", drill.display());
            }
        }
        Ok(())
    }
}

/// Creates `path` with `text`; never replaces a file (an operator's edits).
fn write_new(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).ctx(|| format!("creating {}", parent.display()))?;
    }
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .ctx(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())
        .ctx(|| format!("writing {}", path.display()))
}

/// Whether a directory holds a SQLite file within two levels.
fn holds_sqlite(dir: &Path) -> bool {
    fn walk(dir: &Path, depth: u32) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        entries.flatten().any(|e| {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => depth > 0 && walk(&p, depth - 1),
                Ok(t) if t.is_file() => p
                    .extension()
                    .is_some_and(|x| x == "sqlite" || x == "sqlite3" || x == "db"),
                _ => false,
            }
        })
    }
    walk(dir, 2)
}
