//! Containers stopped or paused while a source is read or restored.
//!
//! Each is recorded in the catalog before it is touched and forgotten once it is back in
//! its previous state, on every exit path (the guard's `Drop` covers errors and Ctrl-C).
//! A drctl killed in between leaves the record; the next drctl command finds it and puts
//! the container back ([`release_orphans`]).

use std::time::Duration;

use crate::docker::Docker;
use crate::error::Result;

/// Where holds are recorded before a container is touched, so that those of a killed
/// drctl are found again (the catalog keeps them).
pub trait Ledger {
    /// Records that `container` is about to be stopped or paused (`action`).
    fn record_hold(&self, container: &str, action: &str) -> Result<()>;
    /// Forgets a container put back.
    fn forget_hold(&self, container: &str) -> Result<()>;
    /// Holds whose process is gone: (container, action).
    fn orphaned_holds(&self) -> Result<Vec<(String, String)>>;
}

/// What drctl did to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Stopped, with this grace before it is killed; is started again.
    Stop(Duration),
    /// Paused; is unpaused.
    Pause,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Stop(_) => "stop",
            Action::Pause => "pause",
        }
    }
}

/// Containers held by this process; put back when released or dropped.
pub struct Holds<'a> {
    docker: &'a Docker,
    ledger: &'a dyn Ledger,
    held: Vec<(String, Action)>,
}

impl<'a> Holds<'a> {
    /// Holds nothing yet.
    pub fn new(docker: &'a Docker, ledger: &'a dyn Ledger) -> Self {
        Holds {
            docker,
            ledger,
            held: Vec::new(),
        }
    }

    /// Stops or pauses a container that is running; one that is not is left alone (and
    /// left as it was afterwards).
    pub fn hold(&mut self, name: &str, action: Action) -> Result<()> {
        let info = self.docker.container(name)?;
        if info.status != "running" {
            tracing::info!("container {name} is {}; not touching it", info.status);
            return Ok(());
        }
        self.ledger.record_hold(name, action.as_str())?;
        self.held.push((name.to_string(), action));
        match action {
            Action::Stop(grace) => {
                // Said before the wait, which can be the whole grace: whoever watches
                // knows which container drctl waits for, and how long at most.
                eprintln!(
                    "stopping container {name} (up to {} for it to shut down; it is started again after)",
                    crate::human::human_secs(grace.as_secs_f64())
                );
                let t0 = std::time::Instant::now();
                self.docker.stop(name, grace)?;
                tracing::info!("container {name} stopped in {:?}", t0.elapsed());
                Ok(())
            }
            Action::Pause => self.docker.pause(name),
        }
    }

    /// Puts every held container back, newest first; the first error is returned after
    /// all were tried.
    pub fn release(mut self) -> Result<()> {
        self.release_all()
    }

    fn release_all(&mut self) -> Result<()> {
        let mut first = None;
        while let Some((name, action)) = self.held.pop() {
            if let Err(e) = put_back(self.docker, self.ledger, &name, action.as_str()) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Holds<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.release_all() {
            eprintln!("warning: {e}");
        }
    }
}

fn put_back(docker: &Docker, ledger: &dyn Ledger, name: &str, action: &str) -> Result<()> {
    let info = match docker.container(name) {
        Ok(i) => i,
        // Removed meanwhile: nothing left to put back.
        Err(_) => return ledger.forget_hold(name),
    };
    match (action, info.status.as_str()) {
        ("stop", "exited" | "created") => docker.start(name)?,
        ("pause", "paused") => docker.unpause(name)?,
        _ => {}
    }
    ledger.forget_hold(name)
}

/// Puts back containers that a killed drctl left stopped or paused. Returns their names.
pub fn release_orphans(
    docker: impl FnOnce() -> Result<Docker>,
    ledger: &dyn Ledger,
) -> Result<Vec<String>> {
    let orphans = ledger.orphaned_holds()?;
    if orphans.is_empty() {
        return Ok(Vec::new());
    }
    let docker = docker()?;
    let mut done = Vec::new();
    for (name, action) in orphans {
        put_back(&docker, ledger, &name, &action)?;
        done.push(name);
    }
    Ok(done)
}
