//! `drctl discover`: stack files proposed from what runs, one per Compose project.
//!
//! The proposal is a pure function of the containers as Docker describes them (their
//! Compose labels, images, command lines, environments and mounts), so it is tested
//! without a daemon. A database server becomes a dump source of its kind, recognised by
//! its image, its command line or the environment its image reads; every other
//! container's bind mounts and named volumes become volume sources, unless the project
//! directory (its own source: compose files, overrides, `.env`) already holds them.
//! Credentials stay where they are: drctl reads them from the container at run time, and
//! the proposal only says where.

mod render;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use render::{render_drill, render_stack};

use crate::config::{SourceKind, Stack};
use crate::docker::ContainerInfo;

/// Compose's labels; `PROJECT` is on its networks and volumes too.
pub const PROJECT: &str = "com.docker.compose.project";
const SERVICE: &str = "com.docker.compose.service";
const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
const CONFIG_FILES: &str = "com.docker.compose.project.config_files";

/// What discovery proposes.
#[derive(Debug, Default)]
pub struct Proposal {
    /// One per Compose project, by name.
    pub stacks: Vec<StackProposal>,
    /// Running containers in no Compose project: named, not proposed.
    pub outside: Vec<String>,
}

/// A proposed stack: one Compose project.
#[derive(Debug, Clone)]
pub struct StackProposal {
    /// The project's name, as a stack name.
    pub name: String,
    /// Whether its name says production (tighter schedule and targets).
    pub production: bool,
    /// The sources, databases first.
    pub sources: Vec<SourceProposal>,
    /// What was looked at and left out, with why (comments in the file).
    pub notes: Vec<String>,
    /// The Compose project, when its directory is known: `[stack.NAME.compose]`.
    pub compose: Option<ComposeProposal>,
    /// The projects (stacks) whose networks its containers join: recovered before it.
    pub depends_on: Vec<String>,
}

/// The Compose project of a proposed stack.
#[derive(Debug, Clone, PartialEq)]
pub struct ComposeProposal {
    /// The project's name.
    pub project: String,
    /// Its directory.
    pub dir: String,
    /// Its compose files, as Compose recorded them.
    pub files: Vec<String>,
}

/// A proposed source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceProposal {
    /// Its name within the stack.
    pub name: String,
    /// Its kind.
    pub kind: SourceKind,
    /// The database container.
    pub container: Option<String>,
    /// A host directory (bind mount, project directory).
    pub path: Option<String>,
    /// A named volume.
    pub volume: Option<String>,
    /// Containers paused while it is read (one holding a SQLite file).
    pub pause: Vec<String>,
    /// A comment for the operator: where credentials come from, what it holds.
    pub comment: String,
}

/// Proposes stacks for `containers`; `network_projects` names the Compose project that
/// made each network (a container on another project's network depends on that
/// project); `has_sqlite` says whether a host directory holds a SQLite file (then its
/// container is paused while it is read).
pub fn propose(
    containers: &[ContainerInfo],
    network_projects: &BTreeMap<String, String>,
    has_sqlite: &dyn Fn(&Path) -> bool,
) -> Proposal {
    let mut projects: BTreeMap<String, Vec<&ContainerInfo>> = BTreeMap::new();
    let mut outside = Vec::new();
    for c in containers {
        match c.labels.get(PROJECT) {
            Some(p) => projects.entry(p.clone()).or_default().push(c),
            None => outside.push(c.name.clone()),
        }
    }
    let stacks = projects
        .iter()
        .map(|(project, members)| {
            let mut s = propose_stack(project, members, has_sqlite);
            let mut deps: Vec<String> = members
                .iter()
                .flat_map(|c| &c.networks)
                .filter_map(|n| network_projects.get(n))
                .filter(|p| *p != project && projects.contains_key(*p))
                .map(|p| stack_name(p))
                .collect();
            deps.sort();
            deps.dedup();
            s.depends_on = deps;
            s
        })
        .collect();
    Proposal { stacks, outside }
}

fn propose_stack(
    project: &str,
    members: &[&ContainerInfo],
    has_sqlite: &dyn Fn(&Path) -> bool,
) -> StackProposal {
    let name = stack_name(project);
    let mut sources: Vec<SourceProposal> = Vec::new();
    let mut notes = Vec::new();
    let working_dir = members
        .iter()
        .find_map(|c| c.labels.get(WORKING_DIR))
        .filter(|d| d.starts_with('/'))
        .cloned();
    // Databases first: a dump source each.
    for c in members {
        if let Some((kind, comment)) = database(c) {
            let service = service_of(c);
            sources.push(SourceProposal {
                name: unique_name(&sources, &service),
                kind,
                container: Some(c.name.clone()),
                path: None,
                volume: None,
                pause: Vec::new(),
                comment,
            });
            if !c.mounts.is_empty() {
                notes.push(format!(
                    "the data directory of {} is not read as files: its dumps are consistent",
                    c.name
                ));
            }
        }
    }
    let mut seen: Vec<String> = Vec::new();
    for c in members.iter().filter(|c| database(c).is_none()) {
        let service = service_of(c);
        let mut data: Vec<(String, Mounted)> = Vec::new();
        for (dest, mounted) in mounts_of(c) {
            let key = mounted.key();
            if seen.contains(&key) {
                continue;
            }
            if let Some(why) = leave_out(&dest, &mounted, working_dir.as_deref()) {
                notes.push(format!("{} {}: {why}", c.name, mounted.describe()));
                continue;
            }
            seen.push(key);
            data.push((dest, mounted));
        }
        for (dest, mounted) in &data {
            let base = if data.len() == 1 {
                service.clone()
            } else {
                format!("{service}-{}", last_component(dest))
            };
            let (path, volume, host) = match mounted {
                Mounted::Bind(p) => (Some(p.display().to_string()), None, Some(p.clone())),
                Mounted::Volume(v, p) => (None, Some(v.clone()), Some(p.clone())),
            };
            let sqlite = host.as_deref().is_some_and(has_sqlite);
            sources.push(SourceProposal {
                name: unique_name(&sources, &base),
                kind: SourceKind::Volume,
                container: None,
                path,
                volume,
                pause: if sqlite {
                    vec![c.name.clone()]
                } else {
                    Vec::new()
                },
                comment: if sqlite {
                    format!(
                        "{dest} of {}; it holds a SQLite file: paused while read",
                        c.name
                    )
                } else {
                    format!("{dest} of {}", c.name)
                },
            });
        }
    }
    let files = members
        .iter()
        .find_map(|c| c.labels.get(CONFIG_FILES))
        .map(|f| f.split(',').map(str::to_string).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(dir) = &working_dir {
        for f in files.iter().filter(|f| !Path::new(f).starts_with(dir)) {
            notes.push(format!(
                "compose file {f} lies outside the project directory: add it as a source"
            ));
        }
        sources.push(SourceProposal {
            name: unique_name(&sources, "compose"),
            kind: SourceKind::Volume,
            container: None,
            path: Some(dir.clone()),
            volume: None,
            pause: Vec::new(),
            comment: "the Compose project: compose files, overrides, .env".into(),
        });
    }
    StackProposal {
        production: name.contains("prod"),
        compose: working_dir.map(|dir| ComposeProposal {
            project: project.to_string(),
            dir,
            files,
        }),
        name,
        sources,
        notes,
        depends_on: Vec::new(),
    }
}

/// What a mount brings in from the host.
#[derive(Debug, Clone)]
enum Mounted {
    Bind(PathBuf),
    /// A named volume and where it lives on this host.
    Volume(String, PathBuf),
}

impl Mounted {
    fn key(&self) -> String {
        match self {
            Mounted::Bind(p) => p.display().to_string(),
            Mounted::Volume(v, _) => format!("volume:{v}"),
        }
    }

    fn describe(&self) -> String {
        match self {
            Mounted::Bind(p) => p.display().to_string(),
            Mounted::Volume(v, _) => format!("volume {v}"),
        }
    }
}

fn mounts_of(c: &ContainerInfo) -> Vec<(String, Mounted)> {
    c.mounts
        .iter()
        .map(|(dest, host)| {
            let named = c.named_volumes.iter().find(|(d, _)| d == dest);
            let m = match named {
                Some((_, v)) => Mounted::Volume(v.clone(), host.clone()),
                None => Mounted::Bind(host.clone()),
            };
            (dest.clone(), m)
        })
        .collect()
}

/// Why a mount is no data source, if it is not.
fn leave_out(dest: &str, m: &Mounted, working_dir: Option<&str>) -> Option<&'static str> {
    let system = ["/proc", "/sys", "/dev", "/run", "/var/run"];
    let under = |p: &str, roots: &[&str]| {
        roots
            .iter()
            .any(|r| Path::new(p).starts_with(r) && !r.is_empty())
    };
    if dest.ends_with("docker.sock") || under(dest, &system) {
        return Some("a socket or system path, not data");
    }
    if matches!(dest, "/etc/localtime" | "/etc/timezone") {
        return Some("the host's clock settings");
    }
    if let Mounted::Bind(p) = m {
        let host = p.display().to_string();
        if under(&host, &system) {
            return Some("a socket or system path, not data");
        }
        if working_dir.is_some_and(|d| Path::new(&host).starts_with(d)) {
            return Some("inside the project directory, which is a source of its own");
        }
        if p.is_file() {
            return Some("a single file: add it to the project directory or as a source");
        }
    }
    None
}

/// The kind of database server a container runs, and where its credentials come from.
fn database(c: &ContainerInfo) -> Option<(SourceKind, String)> {
    let image = c
        .image
        .rsplit('/')
        .next()
        .unwrap_or("")
        .split([':', '@'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let command: Vec<String> = c
        .entrypoint
        .iter()
        .chain(&c.cmd)
        .map(|w| w.rsplit('/').next().unwrap_or(w).to_ascii_lowercase())
        .collect();
    let says = |needles: &[&str]| {
        needles
            .iter()
            .any(|n| image.contains(n) || command.iter().any(|w| w.contains(n)))
    };
    let has_env = |keys: &[&str]| keys.iter().any(|k| c.env.contains_key(*k));
    if says(&["postgres", "postgis", "timescale"])
        || has_env(&["POSTGRES_PASSWORD", "POSTGRES_PASSWORD_FILE"])
    {
        return Some((
            SourceKind::Postgres,
            "every database and the roles; credentials from the container's POSTGRES_* \
             environment"
                .into(),
        ));
    }
    if says(&["mariadb", "mysql", "percona"])
        || has_env(&[
            "MARIADB_ROOT_PASSWORD",
            "MYSQL_ROOT_PASSWORD",
            "MARIADB_ROOT_PASSWORD_FILE",
            "MYSQL_ROOT_PASSWORD_FILE",
        ])
    {
        return Some((
            SourceKind::Mysql,
            "every database; credentials from the container's MARIADB_*/MYSQL_* environment".into(),
        ));
    }
    if says(&["redis", "valkey", "keydb"]) {
        let comment = if crate::source::secrets::requirepass(&c.cmd).is_some() {
            "an RDB snapshot; the password from the container's --requirepass"
        } else {
            "an RDB snapshot"
        };
        return Some((SourceKind::Redis, comment.into()));
    }
    None
}

fn service_of(c: &ContainerInfo) -> String {
    source_name(c.labels.get(SERVICE).unwrap_or(&c.name))
}

/// A stack name drctl accepts: letters, digits, `-`, `_`, `.`.
fn stack_name(project: &str) -> String {
    let s: String = project
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.') {
                ch
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches(['-', '.']).to_string();
    if s.is_empty() {
        "stack".into()
    } else {
        s
    }
}

fn source_name(raw: &str) -> String {
    stack_name(&raw.to_ascii_lowercase())
}

fn last_component(dest: &str) -> String {
    source_name(
        dest.trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("data"),
    )
}

fn unique_name(taken: &[SourceProposal], base: &str) -> String {
    let free = |n: &str| !taken.iter().any(|s| s.name == n);
    if free(base) {
        return base.to_string();
    }
    (2..)
        .map(|i| format!("{base}-{i}"))
        .find(|n| free(n))
        .expect("a free name")
}

/// What changed since a stack file was written: new containers or mounts that are no
/// source of it, and sources whose container or path nothing runs or mounts any more.
pub fn changes(existing: &Stack, proposed: &StackProposal) -> Vec<String> {
    let mut out = Vec::new();
    let same = |def: &crate::config::SourceDef, p: &SourceProposal| {
        def.kind == p.kind
            && match p.kind {
                SourceKind::Volume => {
                    def.path.as_ref().map(|x| x.get_ref()) == p.path.as_ref()
                        && def.volume.as_ref().map(|x| x.get_ref()) == p.volume.as_ref()
                }
                _ => def.container.as_ref().map(|x| x.get_ref()) == p.container.as_ref(),
            }
    };
    for p in &proposed.sources {
        if !existing.def.source.iter().any(|d| same(d, p)) {
            out.push(format!(
                "stack {}: new, not yet a source: {} ({})",
                existing.name,
                p.container
                    .clone()
                    .or_else(|| p.path.clone())
                    .or_else(|| p.volume.as_ref().map(|v| format!("volume {v}")))
                    .unwrap_or_default(),
                p.kind.name()
            ));
        }
    }
    for d in &existing.def.source {
        if !proposed.sources.iter().any(|p| same(d, p)) {
            out.push(format!(
                "stack {}: source {} matches nothing running now ({})",
                existing.name,
                d.name.get_ref(),
                d.container
                    .as_ref()
                    .map(|c| format!("container {}", c.get_ref()))
                    .or_else(|| d.path.as_ref().map(|p| p.get_ref().clone()))
                    .or_else(|| d.volume.as_ref().map(|v| format!("volume {}", v.get_ref())))
                    .unwrap_or_default()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;
