//! A host drill's scratch: each stack's Compose project run again under another project
//! name, from its restored files, with nothing that reaches the live host.
//!
//! Compose itself renders the project (`config`), and the rendering is rewritten before
//! the scratch project is created from it: no published port, no fixed container name,
//! no host network or PID namespace, every network internal (one that another drilled
//! project made points at that project's scratch network), named volumes the scratch
//! project's own, bind mounts of restored data pointing at their scratch copies, and
//! every other host path left out (a Docker socket would let the drill touch the live
//! stacks). Everything carries the drill's label, by which it is all removed after.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::config::ComposeDef;
use crate::docker::compose::{Compose, Project};
use crate::docker::Docker;
use crate::drill::scratch::{alive, owner_token};
use crate::error::{Error, IoContext, Result};

/// The label on everything a host drill creates; its value is the drill's id.
pub const LABEL: &str = "drctl.host-drill";

/// Compose's labels on what it creates.
const PROJECT: &str = "com.docker.compose.project";
const SERVICE: &str = "com.docker.compose.service";

/// The file in a host drill's directory naming the process that runs it.
const OWNER_FILE: &str = "owner";

/// Host paths a scratch container may still mount: read-only clock settings.
const HARMLESS: [&str; 2] = ["/etc/localtime", "/etc/timezone"];

/// One host drill's scratch resources.
pub struct HostScratch {
    /// The drill's id (the label's value, the prefix of its project names).
    pub id: String,
    /// Its directory: each stack's project files and volumes.
    pub root: PathBuf,
    /// Live project name to scratch project name, for every drilled stack.
    projects: BTreeMap<String, String>,
    /// The scratch projects created: name and compose file, for `down`.
    created: std::sync::Mutex<Vec<(String, String)>>,
}

/// A scratch project, once created: what `up -d` and `down` run against.
pub struct ScratchProject {
    /// Its name.
    pub name: String,
    /// The directory its files were restored into.
    pub dir: PathBuf,
    /// The rewritten compose file.
    pub files: Vec<String>,
}

impl ScratchProject {
    /// The project as Compose takes it.
    pub fn project(&self) -> Project<'_> {
        Project {
            name: &self.name,
            dir: &self.dir,
            files: &self.files,
        }
    }
}

impl HostScratch {
    /// A new scratch under `state_dir` for these live projects.
    pub fn new<'a>(state_dir: &Path, live_projects: impl Iterator<Item = &'a str>) -> HostScratch {
        let id = format!("drctl-hd-{:08x}", rand::random::<u32>());
        let projects = live_projects
            .map(|p| (p.to_string(), format!("{id}-{p}")))
            .collect();
        HostScratch {
            root: state_dir.join("host-drills").join(&id),
            id,
            projects,
            created: Default::default(),
        }
    }

    /// Makes its directory, owned by this process (so that a later drill can tell a
    /// killed one's leftovers from a running one's).
    pub fn start(&self) -> Result<()> {
        std::fs::create_dir_all(&self.root).ctx(|| format!("creating {}", self.root.display()))?;
        let owner = owner_token(std::process::id() as i32);
        let file = self.root.join(OWNER_FILE);
        std::fs::write(&file, owner).ctx(|| format!("writing {}", file.display()))
    }

    /// Where a stack's project files are restored.
    pub fn project_dir(&self, stack: &str) -> PathBuf {
        self.root.join(stack).join("project")
    }

    /// Where a stack's volume source (a host directory) is restored.
    pub fn volume_dir(&self, stack: &str, source: &str) -> PathBuf {
        self.root.join(stack).join("volumes").join(source)
    }

    /// The scratch project of a live one.
    pub fn project_name(&self, live: &str) -> Option<&str> {
        self.projects.get(live).map(String::as_str)
    }

    /// Renders the live project from its restored files, rewrites it (see the module),
    /// and creates it without starting it. `binds` maps restored live directories to
    /// their scratch copies. Returns the project and what was left out.
    pub fn create(
        &self,
        compose: &Compose,
        stack: &str,
        def: &ComposeDef,
        binds: &[(PathBuf, PathBuf)],
    ) -> Result<(ScratchProject, Vec<String>)> {
        let live_dir = Path::new(def.dir());
        let dir = self.project_dir(stack);
        let files: Vec<String> = def
            .files
            .iter()
            .map(|f| {
                let f = Path::new(f.get_ref());
                let rel = f.strip_prefix(live_dir).unwrap_or(f);
                dir.join(rel).display().to_string()
            })
            .collect();
        let scratch_name = self
            .project_name(def.project())
            .ok_or_else(|| Error::Failed(format!("project {} is not drilled", def.project())))?
            .to_string();
        let rendered = compose.render(&Project {
            name: &scratch_name,
            dir: &dir,
            files: &files,
        })?;
        let config: Value = serde_yaml::from_str(&rendered).map_err(|e| {
            Error::Failed(format!(
                "Compose's rendering of project {}: {e}",
                def.project()
            ))
        })?;
        let mut all_binds = binds.to_vec();
        all_binds.push((live_dir.to_path_buf(), dir.clone()));
        let rules = Rewrite {
            id: &self.id,
            projects: &self.projects,
            binds: &all_binds,
        };
        let (config, notes) = rules.apply(config);
        let file = self.root.join(stack).join("compose.drill.json");
        let text = serde_json::to_string_pretty(&config).expect("JSON values serialise");
        std::fs::write(&file, text).ctx(|| format!("writing {}", file.display()))?;
        let project = ScratchProject {
            name: scratch_name,
            dir,
            files: vec![file.display().to_string()],
        };
        self.created
            .lock()
            .expect("not poisoned")
            .push((project.name.clone(), project.files[0].clone()));
        compose.run(&project.project(), &["up", "--no-start"])?;
        Ok((project, notes))
    }

    /// The scratch container of the live container `live` (the same service of the
    /// scratch project).
    pub fn container(&self, docker: &Docker, live: &str) -> Result<String> {
        let info = docker.container(live)?;
        let (Some(project), Some(service)) = (info.labels.get(PROJECT), info.labels.get(SERVICE))
        else {
            return Err(Error::Failed(format!(
                "container {live} is not part of a Compose project"
            )));
        };
        let scratch = self.project_name(project).ok_or_else(|| {
            Error::Failed(format!(
                "project {project} of container {live} is not drilled"
            ))
        })?;
        docker
            .containers_labelled(&[
                format!("{PROJECT}={scratch}"),
                format!("{SERVICE}={service}"),
            ])
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::Failed(format!(
                    "the scratch project has no container of service {service}"
                ))
            })
    }

    /// Removes every scratch project, then anything else with the drill's label, then the
    /// directory; what could not be removed.
    pub fn remove(&self, compose: Option<&Compose>, docker: Option<&Docker>) -> Vec<String> {
        let mut left = Vec::new();
        if let Some(c) = compose {
            let created = self.created.lock().expect("not poisoned").clone();
            // Dependents first: their containers hold the networks of the others.
            for (scratch, file) in created.iter().rev() {
                let files = vec![file.clone()];
                let p = Project {
                    name: scratch,
                    dir: &self.root,
                    files: &files,
                };
                if let Err(e) = c.run(&p, &["down", "-v", "--remove-orphans", "-t", "5"]) {
                    left.push(e.to_string());
                }
            }
        }
        if let Some(d) = docker {
            left.extend(d.remove_labelled(LABEL, &self.id));
        }
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            if e.kind() != std::io::ErrorKind::NotFound {
                left.push(format!("{}: {e}", self.root.display()));
            }
        }
        left
    }
}

/// Removes what killed host drills left: each directory whose owner is dead, and every
/// container, network and volume labelled with its id. Returns what it removed, and
/// what it could not.
pub fn sweep(state_dir: &Path, docker: &Docker) -> (Vec<String>, Vec<String>) {
    let (mut removed, mut left) = (Vec::new(), Vec::new());
    let Ok(entries) = std::fs::read_dir(state_dir.join("host-drills")) else {
        return (removed, left);
    };
    for e in entries.flatten() {
        let owner = std::fs::read_to_string(e.path().join(OWNER_FILE)).unwrap_or_default();
        if alive(&owner) {
            continue;
        }
        let id = e.file_name().to_string_lossy().to_string();
        let failed = docker.remove_labelled(LABEL, &id);
        if failed.is_empty() {
            match std::fs::remove_dir_all(e.path()) {
                Ok(()) => removed.push(id),
                Err(err) => left.push(format!("{}: {err}", e.path().display())),
            }
        } else {
            left.extend(failed);
        }
    }
    (removed, left)
}

/// How a rendered project becomes a scratch one.
struct Rewrite<'a> {
    id: &'a str,
    projects: &'a BTreeMap<String, String>,
    /// Live host directories and their scratch copies.
    binds: &'a [(PathBuf, PathBuf)],
}

impl Rewrite<'_> {
    fn apply(&self, mut config: Value) -> (Value, Vec<String>) {
        let mut notes = Vec::new();
        let label = || json!({ LABEL: self.id });
        if let Some(services) = config.get_mut("services").and_then(Value::as_object_mut) {
            for (name, svc) in services.iter_mut() {
                let Some(svc) = svc.as_object_mut() else {
                    continue;
                };
                for key in [
                    "ports",
                    "container_name",
                    "restart",
                    "pid",
                    "ipc",
                    "devices",
                ] {
                    svc.remove(key);
                }
                if svc.get("network_mode").is_some() {
                    svc.remove("network_mode");
                    notes.push(format!("service {name}: its network mode was left out"));
                }
                merge_labels(svc, self.id);
                if let Some(Value::Array(vols)) = svc.get_mut("volumes") {
                    vols.retain_mut(|v| self.volume(name, v, &mut notes));
                }
            }
        }
        let networks = config
            .as_object_mut()
            .expect("a Compose rendering is a mapping")
            .entry("networks")
            .or_insert_with(|| json!({}));
        if let Some(nets) = networks.as_object_mut() {
            nets.entry("default").or_insert_with(|| json!({}));
            for (_, net) in nets.iter_mut() {
                *net = self.network(net, label());
            }
        }
        if let Some(vols) = config.get_mut("volumes").and_then(Value::as_object_mut) {
            for (_, v) in vols.iter_mut() {
                *v = json!({ "labels": label() });
            }
        }
        (config, notes)
    }

    /// A network of the scratch project: internal, its own, or the scratch network of
    /// the drilled project that makes it.
    fn network(&self, net: &Value, label: Value) -> Value {
        let external = net.get("external").is_some_and(|e| e != &json!(false));
        let name = net.get("name").and_then(Value::as_str);
        if let (true, Some(name)) = (external, name) {
            for (live, scratch) in self.projects {
                if let Some(rest) = name.strip_prefix(&format!("{live}_")) {
                    return json!({ "external": true, "name": format!("{scratch}_{rest}") });
                }
            }
        }
        json!({ "internal": true, "labels": label })
    }

    /// Keeps a service's volume entry (rewritten) or drops it (`false`, with a note).
    fn volume(&self, service: &str, v: &mut Value, notes: &mut Vec<String>) -> bool {
        let (source, rest) = match v {
            Value::String(s) => match s.split_once(':') {
                Some((src, rest)) => (src.to_string(), Some(rest.to_string())),
                None => return true, // an anonymous volume
            },
            Value::Object(m) if m.get("type") == Some(&json!("bind")) => (
                m.get("source")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                None,
            ),
            _ => return true, // a named or anonymous volume: the project's own
        };
        if !source.starts_with('/') {
            return true; // a named volume
        }
        let mapped = self.binds.iter().find_map(|(live, scratch)| {
            Path::new(&source).strip_prefix(live).ok().map(|rest| {
                if rest.as_os_str().is_empty() {
                    scratch.clone()
                } else {
                    scratch.join(rest)
                }
            })
        });
        let new_source = match mapped {
            Some(p) => p.display().to_string(),
            None if HARMLESS.contains(&source.as_str()) => return true,
            None => {
                notes.push(format!(
                    "service {service}: host path {source} is not restored data; left out"
                ));
                return false;
            }
        };
        match (v, rest) {
            (Value::String(s), Some(rest)) => *s = format!("{new_source}:{rest}"),
            (Value::Object(m), _) => {
                m.insert("source".into(), Value::String(new_source));
            }
            _ => {}
        }
        true
    }
}

/// Adds the drill's label to a service's labels, in either of Compose's forms.
fn merge_labels(svc: &mut Map<String, Value>, id: &str) {
    match svc.get_mut("labels") {
        Some(Value::Object(m)) => {
            m.insert(LABEL.into(), Value::String(id.into()));
        }
        Some(Value::Array(a)) => a.push(Value::String(format!("{LABEL}={id}"))),
        _ => {
            svc.insert("labels".into(), json!({ LABEL: id }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_project_reaches_nothing_live() {
        let rendered = r#"
networks:
  ext: { external: true, name: shared_default }
  other: { external: true, name: elsewhere }
  back: { name: fixed-name }
services:
  web:
    image: nginx
    container_name: shop-web
    ports: [{ published: 443, target: 443 }]
    restart: always
    network_mode: host
    labels: { keep: "1" }
    volumes:
    - /mnt/data/shop/files:/var/www/files:rw
    - /srv/shop/site.conf:/etc/nginx/site.conf:ro
    - /var/run/docker.sock:/var/run/docker.sock:rw
    - /etc/localtime:/etc/localtime:ro
    - n8n:/data:rw
    - { type: bind, source: /mnt/data/shop/files/sub, target: /sub }
volumes:
  n8n: { name: shop_n8n, external: true }
"#;
        let config: Value = serde_yaml::from_str(rendered).unwrap();
        let projects = BTreeMap::from([
            ("shared".to_string(), "hd-shared".to_string()),
            ("shop".to_string(), "hd-shop".to_string()),
        ]);
        let binds = vec![
            (
                PathBuf::from("/mnt/data/shop/files"),
                PathBuf::from("/s/files"),
            ),
            (PathBuf::from("/srv/shop"), PathBuf::from("/s/project")),
        ];
        let rules = Rewrite {
            id: "hd",
            projects: &projects,
            binds: &binds,
        };
        let (out, notes) = rules.apply(config);
        let web = &out["services"]["web"];
        for gone in ["ports", "container_name", "restart", "network_mode"] {
            assert!(web.get(gone).is_none(), "{gone} kept: {web}");
        }
        assert_eq!(web["labels"], json!({"keep": "1", LABEL: "hd"}));
        assert_eq!(
            web["volumes"],
            json!([
                "/s/files:/var/www/files:rw",
                "/s/project/site.conf:/etc/nginx/site.conf:ro",
                "/etc/localtime:/etc/localtime:ro",
                "n8n:/data:rw",
                { "type": "bind", "source": "/s/files/sub", "target": "/sub" },
            ])
        );
        assert!(notes.iter().any(|n| n.contains("docker.sock")), "{notes:?}");
        let nets = &out["networks"];
        assert_eq!(
            nets["ext"],
            json!({"external": true, "name": "hd-shared_default"})
        );
        for own in ["other", "back", "default"] {
            assert_eq!(nets[own]["internal"], json!(true), "{own}: {nets}");
            assert!(nets[own].get("name").is_none());
        }
        assert_eq!(out["volumes"]["n8n"], json!({"labels": {LABEL: "hd"}}));
    }
}
