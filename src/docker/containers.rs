//! Containers and networks that drctl makes and removes itself (a drill's scratch), found
//! again by their labels.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountTypeEnum, NetworkCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, ListNetworksOptions, ListVolumesOptions,
    RemoveContainerOptions, RemoveVolumeOptions, StartContainerOptions,
};

use super::{api_error, is_not_found, Docker};
use crate::error::Result;

/// A container to create.
pub struct ContainerSpec<'a> {
    /// Its name.
    pub name: &'a str,
    /// The image reference to run.
    pub image: &'a str,
    /// `KEY=value` pairs.
    pub env: Vec<String>,
    /// Replaces the image's entrypoint when not empty.
    pub entrypoint: Vec<String>,
    /// Replaces the image's command when not empty.
    pub cmd: Vec<String>,
    /// Labels on the container.
    pub labels: &'a HashMap<String, String>,
    /// The network it joins (its only one).
    pub network: &'a str,
    /// Paths in the container that get an anonymous volume of their own (removed with it).
    pub volumes: Vec<String>,
}

impl Docker {
    /// Creates an internal network (no route out) with these labels.
    pub fn create_internal_network(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> Result<()> {
        self.rt
            .block_on(self.client.create_network(NetworkCreateRequest {
                name: name.to_string(),
                internal: Some(true),
                labels: Some(labels.clone()),
                ..Default::default()
            }))
            .map_err(|e| api_error(&format!("creating network {name}"), e))?;
        Ok(())
    }

    /// Creates and starts a container; `what` names it in errors ("scratch container").
    pub fn create_and_start(&self, spec: ContainerSpec<'_>, what: &str) -> Result<()> {
        let name = spec.name;
        self.create(spec, what)?;
        self.rt
            .block_on(
                self.client
                    .start_container(name, None::<StartContainerOptions>),
            )
            .map_err(|e| api_error(&format!("starting {what} {name}"), e))
    }

    /// Creates a container (its volumes too) without starting it.
    pub fn create(&self, spec: ContainerSpec<'_>, what: &str) -> Result<()> {
        let name = spec.name;
        let mounts = spec
            .volumes
            .iter()
            .map(|target| Mount {
                target: Some(target.clone()),
                typ: Some(MountTypeEnum::VOLUME),
                ..Default::default()
            })
            .collect();
        let body = ContainerCreateBody {
            image: Some(spec.image.to_string()),
            env: Some(spec.env),
            entrypoint: non_empty(spec.entrypoint),
            cmd: non_empty(spec.cmd),
            labels: Some(spec.labels.clone()),
            host_config: Some(HostConfig {
                network_mode: Some(spec.network.to_string()),
                mounts: non_empty(mounts),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.rt
            .block_on(self.client.create_container(
                Some(CreateContainerOptions {
                    name: Some(name.to_string()),
                    ..Default::default()
                }),
                body,
            ))
            .map_err(|e| api_error(&format!("creating {what} {name}"), e))?;
        Ok(())
    }

    /// Whether the daemon has an image by this reference (name, ID or digest).
    pub fn image_exists(&self, reference: &str) -> bool {
        self.rt
            .block_on(self.client.inspect_image(reference))
            .is_ok()
    }

    /// Removes a container, running or not, with its anonymous volumes; one already gone
    /// is not an error. `what` names it in errors.
    pub fn remove_container(&self, name: &str, what: &str) -> Result<()> {
        match self.rt.block_on(self.client.remove_container(
            name,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            }),
        )) {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(api_error(&format!("removing {what} {name}"), e)),
        }
    }

    /// Removes a network; one already gone is not an error.
    pub fn remove_network(&self, name: &str, what: &str) -> Result<()> {
        match self.rt.block_on(self.client.remove_network(name)) {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(api_error(&format!("removing {what} {name}"), e)),
        }
    }

    /// Every container, running or not, that carries the label `key`: (name, value);
    /// empty when the daemon cannot be asked.
    pub fn containers_with_label(&self, key: &str) -> Vec<(String, String)> {
        self.rt
            .block_on(self.client.list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(HashMap::from([(
                    "label".to_string(),
                    vec![key.to_string()],
                )])),
                ..Default::default()
            })))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| {
                let value = c.labels.as_ref()?.get(key)?.clone();
                let name = c.names?.into_iter().next()?;
                Some((name.trim_start_matches('/').to_string(), value))
            })
            .collect()
    }

    /// The names of the containers, running or not, that carry every one of `labels`
    /// (`KEY=VALUE` each); empty when the daemon cannot be asked.
    pub fn containers_labelled(&self, labels: &[String]) -> Vec<String> {
        self.rt
            .block_on(self.client.list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(HashMap::from([("label".to_string(), labels.to_vec())])),
                ..Default::default()
            })))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| {
                Some(
                    c.names?
                        .into_iter()
                        .next()?
                        .trim_start_matches('/')
                        .to_string(),
                )
            })
            .collect()
    }

    /// Every network that carries the label `key`: (name, value); empty when the daemon
    /// cannot be asked.
    pub fn networks_with_label(&self, key: &str) -> Vec<(String, String)> {
        self.rt
            .block_on(self.client.list_networks(Some(ListNetworksOptions {
                filters: Some(HashMap::from([(
                    "label".to_string(),
                    vec![key.to_string()],
                )])),
            })))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| {
                let value = n.labels.as_ref()?.get(key)?.clone();
                Some((n.name?, value))
            })
            .collect()
    }
}

impl Docker {
    /// Removes every container, network and volume labelled `key=value`, in that order
    /// (a network or volume in use cannot go first); what could not be removed.
    pub fn remove_labelled(&self, key: &str, value: &str) -> Vec<String> {
        let mut left = Vec::new();
        for (name, v) in self.containers_with_label(key) {
            if v == value {
                if let Err(e) = self.remove_container(&name, "container") {
                    left.push(e.to_string());
                }
            }
        }
        for (name, v) in self.networks_with_label(key) {
            if v == value {
                if let Err(e) = self.remove_network(&name, "network") {
                    left.push(e.to_string());
                }
            }
        }
        for name in self.volumes_labelled(key, value) {
            let r = self.rt.block_on(
                self.client
                    .remove_volume(&name, Some(RemoveVolumeOptions { force: true })),
            );
            match r {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => left.push(api_error(&format!("removing volume {name}"), e).to_string()),
            }
        }
        left
    }

    /// The volumes labelled `key=value`; empty when the daemon cannot be asked.
    pub fn volumes_labelled(&self, key: &str, value: &str) -> Vec<String> {
        self.rt
            .block_on(self.client.list_volumes(Some(ListVolumesOptions {
                filters: Some(HashMap::from([(
                    "label".to_string(),
                    vec![format!("{key}={value}")],
                )])),
            })))
            .ok()
            .and_then(|r| r.volumes)
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect()
    }
}

/// `None` for an empty list: the image's own setting stays.
fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}
