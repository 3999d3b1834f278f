//! The Docker adapter, the only code that speaks the Docker API (bollard), seen from
//! drctl's synchronous pipeline threads: container facts and lifecycle (stop, pause,
//! start), commands run inside containers with their input or output streamed
//! ([`exec`]), files copied in as tar ([`tar`]), and the labelled networks and containers
//! of a drill's scratch ([`containers`]).
//!
//! Every command runs through `exec` with its credentials in the exec environment: they
//! never appear on a command line (where `ps` shows them) or in a message.

pub mod compose;
mod containers;
mod exec;
mod raw;
mod tar;

pub use containers::ContainerSpec;
pub use exec::{stderr_summary, ExecOutput, ExecReader, ExecWriter};
pub use tar::TarFile;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::{StartContainerOptions, StopContainerOptions};
use futures::StreamExt;
use tokio::runtime::Runtime;

use crate::error::{Error, Result};

/// A connection to the Docker daemon.
#[derive(Clone)]
pub struct Docker {
    client: bollard::Docker,
    rt: Arc<Runtime>,
    /// The daemon's socket, which bollard also connects to: streams are read from it
    /// directly.
    socket: Arc<PathBuf>,
}

/// What drctl needs to know about a container.
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    /// Full container ID.
    pub id: String,
    /// Name without the leading slash.
    pub name: String,
    /// `running`, `exited`, `paused`, ...
    pub status: String,
    /// The image as the container was created from (`postgres:16`).
    pub image: String,
    /// The image's content digest (`sha256:...`): its repo digest when it has one, else its ID.
    pub image_digest: String,
    /// The container's environment.
    pub env: BTreeMap<String, String>,
    /// Its entrypoint and command as configured (the image's defaults unless overridden).
    pub entrypoint: Vec<String>,
    /// See `entrypoint`.
    pub cmd: Vec<String>,
    /// Its mounts: (path in the container, path on this host).
    pub mounts: Vec<(String, PathBuf)>,
    /// Its named volumes: (path in the container, volume name).
    pub named_volumes: Vec<(String, String)>,
    /// Its labels (Compose's `com.docker.compose.*` among them).
    pub labels: BTreeMap<String, String>,
    /// The networks it is connected to, by name.
    pub networks: Vec<String>,
    /// Its addresses on those networks.
    pub addresses: Vec<std::net::IpAddr>,
}

impl ContainerInfo {
    /// Where a path of the container lives on this host: under the mount that holds it
    /// (the deepest), or `None` when it is in the container's own file system.
    pub fn host_path(&self, path: &str) -> Option<PathBuf> {
        self.mounts
            .iter()
            .filter_map(|(dest, source)| {
                let rest = Path::new(path).strip_prefix(dest).ok()?;
                Some((dest.len(), source.join(rest)))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, p)| p)
    }
}

impl ContainerInfo {
    /// An environment variable, when set and not empty.
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

fn api_error(what: &str, e: bollard::errors::Error) -> Error {
    Error::Failed(format!("{what}: {}", docker_message(&e)))
}

/// The daemon's own message, without bollard's wrapping.
fn docker_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl Docker {
    /// Connects to the daemon (`DOCKER_HOST` or the local socket) and checks it answers.
    pub fn connect(rt: Arc<Runtime>) -> Result<Docker> {
        // `DOCKER_HOST` when it names a socket, else the default one, as bollard's own
        // defaults would: the streams read from it directly (see `exec`) must reach the
        // daemon bollard speaks to.
        let socket = std::env::var("DOCKER_HOST")
            .ok()
            .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"));
        let client = bollard::Docker::connect_with_unix(
            &socket.to_string_lossy(),
            600,
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| Error::Environment(format!("cannot connect to the Docker daemon: {e}")))?;
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), client.ping()).await })
            .map_err(|_| Error::Environment("the Docker daemon did not answer in 30 s".into()))?
            .map_err(|e| {
                Error::Environment(format!(
                    "cannot reach the Docker daemon: {}",
                    docker_message(&e)
                ))
            })?;
        Ok(Docker {
            client,
            rt,
            socket: Arc::new(socket),
        })
    }

    /// Facts about a container; an error naming it when it does not exist.
    pub fn container(&self, name: &str) -> Result<ContainerInfo> {
        let c = self
            .rt
            .block_on(self.client.inspect_container(
                name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            ))
            .map_err(|e| {
                if is_not_found(&e) {
                    Error::Failed(format!("container {name} does not exist"))
                } else {
                    api_error(&format!("inspecting container {name}"), e)
                }
            })?;
        let config = c.config.unwrap_or_default();
        let networks = c
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.clone())
            .unwrap_or_default();
        let image = config.image.unwrap_or_default();
        let image_id = c.image.unwrap_or_default();
        let image_digest = self
            .rt
            .block_on(self.client.inspect_image(&image_id))
            .ok()
            .and_then(|i| i.repo_digests.and_then(|d| d.into_iter().next()))
            .and_then(|d| d.split_once('@').map(|(_, h)| h.to_string()))
            .unwrap_or(image_id);
        let env = config
            .env
            .unwrap_or_default()
            .into_iter()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        let status = c
            .state
            .and_then(|s| s.status)
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into());
        Ok(ContainerInfo {
            id: c.id.unwrap_or_default(),
            name: c
                .name
                .unwrap_or_else(|| name.to_string())
                .trim_start_matches('/')
                .to_string(),
            status,
            image,
            image_digest,
            env,
            entrypoint: config.entrypoint.unwrap_or_default(),
            cmd: config.cmd.unwrap_or_default(),
            named_volumes: c
                .mounts
                .iter()
                .flatten()
                .filter(|m| m.typ == Some(bollard::models::MountPointTypeEnum::VOLUME))
                .filter_map(|m| Some((m.destination.clone()?, m.name.clone()?)))
                .collect(),
            mounts: c
                .mounts
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| Some((m.destination?, PathBuf::from(m.source?))))
                .collect(),
            labels: config.labels.unwrap_or_default().into_iter().collect(),
            networks: networks.keys().cloned().collect(),
            addresses: networks
                .values()
                .filter_map(|n| n.ip_address.as_deref()?.parse().ok())
                .collect(),
        })
    }

    /// Every running container, inspected.
    pub fn running_containers(&self) -> Result<Vec<ContainerInfo>> {
        let list = self
            .rt
            .block_on(self.client.list_containers(Some(
                bollard::query_parameters::ListContainersOptions {
                    all: false,
                    ..Default::default()
                },
            )))
            .map_err(|e| api_error("listing containers", e))?;
        let mut out = Vec::new();
        for c in list {
            let Some(id) = c.id else { continue };
            match self.container(&id) {
                Ok(info) => out.push(info),
                // Gone between the listing and the look.
                Err(e) => tracing::debug!("skipping container {id}: {e}"),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Facts about a container that must be running for a command to run in it.
    pub fn running_container(&self, name: &str) -> Result<ContainerInfo> {
        let info = self.container(name)?;
        if info.status != "running" {
            return Err(Error::Failed(format!(
                "container {name} is not running (status: {})",
                info.status
            )));
        }
        Ok(info)
    }

    /// Stops a container, giving it `grace` to exit cleanly.
    pub fn stop(&self, name: &str, grace: Duration) -> Result<()> {
        self.rt
            .block_on(self.client.stop_container(
                name,
                Some(StopContainerOptions {
                    t: Some(grace.as_secs() as i32),
                    signal: None,
                }),
            ))
            .map_err(|e| api_error(&format!("stopping container {name}"), e))
    }

    /// Starts a stopped container.
    pub fn start(&self, name: &str) -> Result<()> {
        self.rt
            .block_on(
                self.client
                    .start_container(name, None::<StartContainerOptions>),
            )
            .map_err(|e| api_error(&format!("starting container {name}"), e))
    }

    /// Freezes a container's processes.
    pub fn pause(&self, name: &str) -> Result<()> {
        self.rt
            .block_on(self.client.pause_container(name))
            .map_err(|e| api_error(&format!("pausing container {name}"), e))
    }

    /// Thaws a paused container.
    pub fn unpause(&self, name: &str) -> Result<()> {
        self.rt
            .block_on(self.client.unpause_container(name))
            .map_err(|e| api_error(&format!("unpausing container {name}"), e))
    }

    /// Where a named volume's data lives on this host.
    pub fn volume_path(&self, name: &str) -> Result<PathBuf> {
        let v = self
            .rt
            .block_on(self.client.inspect_volume(name))
            .map_err(|e| {
                if is_not_found(&e) {
                    Error::Failed(format!("Docker volume {name} does not exist"))
                } else {
                    api_error(&format!("inspecting volume {name}"), e)
                }
            })?;
        Ok(PathBuf::from(v.mountpoint))
    }

    /// The last `lines` lines a container wrote (stdout and stderr), for a message
    /// about why it did not start; empty when they cannot be read.
    pub fn last_logs(&self, name: &str, lines: usize) -> String {
        let opts = bollard::query_parameters::LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        };
        let mut out = String::new();
        self.rt.block_on(async {
            let mut logs = self.client.logs(name, Some(opts));
            while let Some(Ok(chunk)) = logs.next().await {
                out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            }
        });
        out.trim_end().to_string()
    }

    /// The tokio runtime its calls run on.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.rt
    }
}

/// "exited 1", or what is known when the code is not.
pub fn exit_text(code: Option<i64>) -> String {
    match code {
        Some(137) => "was killed (exit 137)".into(),
        Some(c) => format!("exited {c}"),
        None => "ended without an exit status".into(),
    }
}
