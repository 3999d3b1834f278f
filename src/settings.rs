//! Where the repository, key file and catalog are: flags, then the environment, then the
//! `[repository]` table of drctl.toml, then embedded defaults under the data directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::cli::GlobalArgs;
use crate::config::notify::NotifyDef;
use crate::error::{Error, Result};
use crate::store::s3::{LockMode, Retention};

/// The configuration file read when neither `--config` nor `DRCTL_CONFIG` names one.
pub const DEFAULT_CONFIG: &str = "/etc/drctl/drctl.toml";

/// Resolved repository settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoSettings {
    /// `file:///path` or `s3://bucket/prefix`.
    pub url: String,
    /// S3 endpoint.
    pub endpoint: Option<String>,
    /// S3 region.
    pub region: Option<String>,
    /// Path-style S3 addressing.
    pub path_style: bool,
    /// The AWS profile whose credentials reach the repository; `None`: the usual chain.
    pub profile: Option<String>,
    /// The key file.
    pub key_file: PathBuf,
    /// The catalog database; `None`: a file per repository under the data directory.
    pub catalog: Option<PathBuf>,
    /// The data directory used for defaults.
    pub data_dir: PathBuf,
    /// Where this host's working state lives (locks, drill scratch directories, alert
    /// state): `state_dir` of `[repository]`, else beside the catalog when one is
    /// configured, else the data directory. A service's state never lands in the home of
    /// whoever happened to run it.
    pub state_dir: PathBuf,
    /// The directory of stack files: `schedules/` next to the configuration file.
    pub schedules_dir: PathBuf,
    /// The directory of drill files: `restore-drills/` next to the configuration file,
    /// or `drills_dir` in it.
    pub drills_dir: PathBuf,
    /// The configuration file, when one was named (`--config`, `DRCTL_CONFIG`).
    pub config_path: Option<PathBuf>,
    /// Other repositories by name (`[remotes.NAME]`), for `copy`.
    pub remotes: BTreeMap<String, Location>,
}

/// Where a repository is and how to reach it.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// `file:///path` or `s3://bucket/prefix`.
    pub url: String,
    /// S3 endpoint.
    pub endpoint: Option<String>,
    /// S3 region.
    pub region: Option<String>,
    /// Path-style S3 addressing.
    pub path_style: bool,
    /// The AWS profile whose credentials reach it; `None`: the usual chain.
    pub profile: Option<String>,
    /// As a copy's destination: how far it may trail its source (`status --check`).
    pub max_lag: Option<String>,
    /// As a copy's destination: who hears when a copy into it fails (or, with
    /// `events`, starts or succeeds).
    pub notify: Option<NotifyDef>,
    /// As a copy's destination: S3 Object Lock on every object copied into it.
    pub object_lock: Option<Retention>,
}

/// A `[remotes.NAME]` table: another repository, with its own credentials.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoteTable {
    url: String,
    endpoint: Option<Spanned<String>>,
    region: Option<String>,
    path_style: Option<bool>,
    profile: Option<String>,
    max_lag: Option<Spanned<String>>,
    notify: Option<NotifyDef>,
    /// How long each object copied into it is locked (`"90d"`).
    object_lock: Option<Spanned<String>>,
    /// `compliance` (the default) or `governance`.
    object_lock_mode: Option<Spanned<String>>,
    /// The two above, checked and parsed once when the file is read.
    #[serde(skip)]
    retention: Option<Retention>,
}

/// The `[repository]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryTable {
    url: Option<String>,
    endpoint: Option<Spanned<String>>,
    region: Option<String>,
    path_style: Option<bool>,
    key_file: Option<PathBuf>,
    catalog: Option<PathBuf>,
    profile: Option<String>,
    state_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    repository: RepositoryTable,
    /// Where drill definitions are; default `restore-drills/` next to the file.
    drills_dir: Option<PathBuf>,
    #[serde(default)]
    remotes: BTreeMap<String, RemoteTable>,
}

/// The user's data directory for drctl: `$XDG_DATA_HOME/drctl` or `~/.local/share/drctl`.
pub fn data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("drctl");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/root".into());
    home.join(".local/share/drctl")
}

/// Line and column (1-based, the column in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .chars()
        .count()
        + 1;
    (line, col)
}

/// `FILE:LINE:COLUMN: msg` as a configuration error, for a byte offset into `text`.
pub fn config_error(file: &Path, text: &str, offset: usize, msg: impl std::fmt::Display) -> Error {
    let (line, col) = line_col(text, offset);
    Error::Config(format!("{}:{line}:{col}: {msg}", file.display()))
}

/// Reads a configuration file as UTF-8; invalid UTF-8 is an error at its line and column.
pub fn read_config_text(path: &Path) -> Result<String> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let prefix = std::str::from_utf8(&e.as_bytes()[..valid]).expect("valid up to here");
        config_error(path, prefix, valid, "invalid UTF-8")
    })
}

/// Checks an S3 endpoint: an http:// or https:// URL with a host.
pub fn check_endpoint(endpoint: &str) -> std::result::Result<(), String> {
    let hint = "use http://HOST:PORT or https://HOST";
    let url = url::Url::parse(endpoint)
        .map_err(|e| format!("endpoint {endpoint:?} is not a URL ({e}): {hint}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "endpoint {endpoint:?} is not an http or https URL: {hint}"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("endpoint {endpoint:?} has no host: {hint}"));
    }
    Ok(())
}

fn read_config(path: &Path, explicit: bool) -> Result<ConfigFile> {
    if !explicit && !path.exists() {
        return Ok(ConfigFile::default());
    }
    let text = read_config_text(path)?;
    let mut file: ConfigFile = toml::from_str(&text)
        .map_err(|e| config_error(path, &text, e.span().map_or(0, |s| s.start), e.message()))?;
    let endpoints = file.repository.endpoint.iter();
    for e in endpoints.chain(file.remotes.values().filter_map(|r| r.endpoint.as_ref())) {
        check_endpoint(e.get_ref()).map_err(|m| config_error(path, &text, e.span().start, m))?;
    }
    for l in file.remotes.values().filter_map(|r| r.max_lag.as_ref()) {
        match crate::timespec::parse_duration(l.get_ref()) {
            Ok(d) if d > chrono::Duration::zero() => {}
            Ok(_) => {
                let m = format!("max_lag {:?} must be longer than 0s", l.get_ref());
                return Err(config_error(path, &text, l.span().start, m));
            }
            Err(m) => return Err(config_error(path, &text, l.span().start, m)),
        }
    }
    for r in file.remotes.values_mut() {
        r.retention = retention(r.object_lock.as_ref(), r.object_lock_mode.as_ref())
            .map_err(|(at, m)| config_error(path, &text, at, m))?;
    }
    for n in file.remotes.values().filter_map(|r| r.notify.as_ref()) {
        n.check()
            .map_err(|(span, m)| config_error(path, &text, span.start, m))?;
    }
    Ok(file)
}

/// A remote's Object Lock settings: a period longer than 0s, and a mode only with one;
/// an error is where in the file it lies and what is wrong.
fn retention(
    period: Option<&Spanned<String>>,
    mode: Option<&Spanned<String>>,
) -> std::result::Result<Option<Retention>, (usize, String)> {
    let mode_at = mode.map_or(0, |m| m.span().start);
    let Some(period) = period else {
        return match mode {
            Some(_) => Err((
                mode_at,
                "object_lock_mode needs object_lock, the period".into(),
            )),
            None => Ok(None),
        };
    };
    let mode = match mode {
        Some(m) => m.get_ref().parse::<LockMode>().map_err(|e| (mode_at, e))?,
        None => LockMode::Compliance,
    };
    parse_retention(period.get_ref(), mode)
        .map(Some)
        .map_err(|e| (period.span().start, e))
}

/// A retention period (`"30d"`) in `mode`.
pub fn parse_retention(period: &str, mode: LockMode) -> std::result::Result<Retention, String> {
    match crate::timespec::parse_duration(period) {
        Ok(d) if d > chrono::Duration::zero() => Ok(Retention {
            mode,
            period: d.to_std().map_err(|e| e.to_string())?,
        }),
        Ok(_) => Err(format!("object_lock {period:?} must be longer than 0s")),
        Err(m) => Err(format!("object_lock {period:?}: {m}")),
    }
}

/// Resolves the settings. Flags and environment are already merged by clap (flags win).
pub fn resolve(g: &GlobalArgs) -> Result<RepoSettings> {
    let (config_path, explicit) = match &g.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    let ConfigFile {
        repository: file,
        drills_dir,
        remotes,
    } = read_config(&config_path, explicit)?;
    let beside = |name: &str| config_path.parent().unwrap_or(Path::new("/")).join(name);
    let data_dir = data_dir();
    let url = g
        .repo
        .clone()
        .or(file.url)
        .unwrap_or_else(|| format!("file://{}", data_dir.join("repo").display()));
    // An empty DRCTL_ENDPOINT means unset, as an exported but empty variable does.
    let endpoint = g.endpoint.clone().filter(|e| !e.is_empty());
    if let Some(e) = &endpoint {
        check_endpoint(e).map_err(|m| Error::Usage(format!("--endpoint (DRCTL_ENDPOINT): {m}")))?;
    }
    Ok(RepoSettings {
        url,
        endpoint: endpoint.or(file.endpoint.map(Spanned::into_inner)),
        region: g.region.clone().or(file.region),
        path_style: g.path_style.or(file.path_style).unwrap_or(false),
        profile: file.profile,
        key_file: g
            .key_file
            .clone()
            .or(file.key_file)
            .unwrap_or_else(|| data_dir.join("drctl.key")),
        state_dir: file
            .state_dir
            .or_else(|| {
                let catalog = g.catalog.as_ref().or(file.catalog.as_ref())?;
                Some(catalog.parent()?.to_path_buf())
            })
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| data_dir.clone()),
        catalog: g.catalog.clone().or(file.catalog),
        data_dir,
        schedules_dir: beside("schedules"),
        drills_dir: drills_dir.unwrap_or_else(|| beside("restore-drills")),
        config_path: explicit.then(|| config_path.clone()),
        remotes: remotes
            .into_iter()
            .map(|(name, r)| {
                let at = Location {
                    url: r.url,
                    endpoint: r.endpoint.map(Spanned::into_inner),
                    region: r.region,
                    path_style: r.path_style.unwrap_or(false),
                    profile: r.profile,
                    object_lock: r.retention,
                    max_lag: r.max_lag.map(Spanned::into_inner),
                    notify: r.notify,
                };
                (name, at)
            })
            .collect(),
    })
}

impl RepoSettings {
    /// The configured repository's location.
    pub fn location(&self) -> Location {
        Location {
            url: self.url.clone(),
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            path_style: self.path_style,
            profile: self.profile.clone(),
            max_lag: None,
            notify: None,
            object_lock: None,
        }
    }

    /// A `[remotes.NAME]` by name, or a URL reached like the configured repository
    /// (its endpoint, region and addressing, the usual credentials).
    pub fn remote(&self, name_or_url: &str) -> Result<Location> {
        if let Some(at) = self.remotes.get(name_or_url) {
            return Ok(at.clone());
        }
        if name_or_url.contains("://") || name_or_url.starts_with('/') {
            return Ok(Location {
                url: name_or_url.to_string(),
                ..self.location()
            });
        }
        let known: Vec<&str> = self.remotes.keys().map(String::as_str).collect();
        Err(Error::Usage(format!(
            "{name_or_url} is neither a repository URL nor a remote of the configuration \
             ([remotes.NAME]; configured: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )))
    }

    /// The catalog path for a repository ID.
    pub fn catalog_path(&self, repo_id: &str) -> PathBuf {
        self.catalog.clone().unwrap_or_else(|| {
            self.data_dir
                .join("catalog")
                .join(format!("{}.db", &repo_id[..repo_id.len().min(16)]))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_errors_have_positions() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("drctl.toml");
        std::fs::write(
            &cfg,
            "[repository]\nurl = \"s3://b/p\"\nregion = \"garage\"\npath_style = true\n",
        )
        .unwrap();
        let mut g = GlobalArgs {
            config: Some(cfg.clone()),
            ..Default::default()
        };
        let s = resolve(&g).unwrap();
        assert_eq!(s.url, "s3://b/p");
        assert!(s.path_style);
        g.repo = Some("file:///x".into());
        assert_eq!(resolve(&g).unwrap().url, "file:///x");

        std::fs::write(&cfg, "[repository]\nurl = \"a\"\nbogus = 1\n").unwrap();
        let err = resolve(&g).unwrap_err().to_string();
        assert!(err.contains("drctl.toml:3:1"), "{err}");
        assert_eq!(resolve(&g).unwrap_err().exit_code(), 2);

        g.config = Some(dir.path().join("missing.toml"));
        assert_eq!(resolve(&g).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn state_lives_beside_the_catalog_unless_configured() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("drctl.toml");
        std::fs::write(
            &cfg,
            "[repository]\ncatalog = \"/var/lib/drctl/catalog.db\"\n",
        )
        .unwrap();
        let mut g = GlobalArgs {
            config: Some(cfg.clone()),
            ..Default::default()
        };
        assert_eq!(resolve(&g).unwrap().state_dir, Path::new("/var/lib/drctl"));
        g.catalog = Some("/srv/c/cat.db".into());
        assert_eq!(resolve(&g).unwrap().state_dir, Path::new("/srv/c"));
        std::fs::write(&cfg, "[repository]\nstate_dir = \"/run/drctl\"\n").unwrap();
        assert_eq!(resolve(&g).unwrap().state_dir, Path::new("/run/drctl"));
        g.catalog = None;
        std::fs::write(&cfg, "").unwrap();
        let s = resolve(&g).unwrap();
        assert_eq!(s.state_dir, s.data_dir);
    }

    #[test]
    fn remotes_are_named_tables_and_urls_reach_like_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("drctl.toml");
        std::fs::write(
            &cfg,
            "[repository]\nurl = \"s3://prod/a\"\nendpoint = \"http://h:3900\"\n\
             [remotes.offsite]\nurl = \"s3://off/a\"\nprofile = \"offsite\"\n",
        )
        .unwrap();
        let g = GlobalArgs {
            config: Some(cfg.clone()),
            ..Default::default()
        };
        let s = resolve(&g).unwrap();
        let off = s.remote("offsite").unwrap();
        assert_eq!(
            (off.url.as_str(), off.endpoint, off.profile.as_deref()),
            ("s3://off/a", None, Some("offsite"))
        );
        let url = s.remote("s3://other/b").unwrap();
        assert_eq!(url.endpoint.as_deref(), Some("http://h:3900"));
        let err = s.remote("ofsite").unwrap_err().to_string();
        assert!(err.contains("configured: offsite"), "{err}");
        // A remote's endpoint is checked like the repository's, at its position.
        std::fs::write(&cfg, "[remotes.x]\nurl = \"s3://b\"\nendpoint = \"h:1\"\n").unwrap();
        let err = resolve(&g).unwrap_err().to_string();
        assert!(err.contains("drctl.toml:3:12"), "{err}");
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(line_col("a = \"é\"\nb", 7), (1, 7));
        assert_eq!(line_col("a\nbc", 4), (2, 3));
        assert_eq!(line_col("é", 1), (1, 1));
    }

    #[test]
    fn endpoints_are_urls_with_a_host() {
        assert!(check_endpoint("http://127.0.0.1:3900").is_ok());
        assert!(check_endpoint("https://s3.example.com").is_ok());
        for bad in ["not a url", "127.0.0.1:3900", "ftp://h", "http://", ""] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
    }
}
