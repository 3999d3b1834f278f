//! How the stacks of a recovery wait for each other. Every stack's recovery runs from the
//! start, and waits only where what it depends on matters: its Compose project is created
//! once its dependencies' projects are (their networks may be its external ones), and
//! its containers start once its dependencies' data is in (what they connect to at start
//! must be there). Everything before (its project files, its volumes into what Compose
//! created) overlaps the dependencies' recovery.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};

use crate::error::{Error, Result};

/// How far a stack's recovery has come; each stage implies those before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Its Compose project exists: networks, volumes, containers, none started.
    Created,
    /// Its volumes and databases hold the point's data.
    DataIn,
}

/// The stage each stack of a recovery has reached, shared by their threads.
#[derive(Default)]
pub struct Stages {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    reached: BTreeMap<String, Stage>,
    /// A stack failed: the ones waiting stop instead of going on.
    stopping: bool,
}

impl Stages {
    /// One stack's view: it waits for `deps`, the stacks of this recovery it depends on.
    pub fn gate<'g>(&'g self, name: &'g str, deps: Vec<String>) -> Gate<'g> {
        Gate {
            stages: self,
            name,
            deps,
        }
    }

    /// A stack has ended: whatever it did not say, it will not do, so it counts as in.
    pub fn ended(&self, name: &str) {
        self.set(name, Stage::DataIn);
    }

    /// A stack failed: the stacks waiting for any other stop waiting.
    pub fn stop(&self) {
        self.state.lock().unwrap().stopping = true;
        self.changed.notify_all();
    }

    fn set(&self, name: &str, stage: Stage) {
        let mut s = self.state.lock().unwrap();
        let at = s.reached.entry(name.to_string()).or_insert(stage);
        *at = (*at).max(stage);
        drop(s);
        self.changed.notify_all();
    }
}

/// What one stack's recovery waits for and says.
pub struct Gate<'g> {
    stages: &'g Stages,
    name: &'g str,
    deps: Vec<String>,
}

impl Gate<'_> {
    /// Waits until every stack this one depends on has reached `stage` (or ended). An
    /// interruption when another stack failed meanwhile: this one goes no further.
    pub fn wait(&self, stage: Stage) -> Result<()> {
        let mut s = self.stages.state.lock().unwrap();
        loop {
            if s.stopping {
                return Err(Error::Interrupted);
            }
            if self
                .deps
                .iter()
                .all(|d| s.reached.get(d).is_some_and(|at| *at >= stage))
            {
                return Ok(());
            }
            s = self.stages.changed.wait(s).unwrap();
        }
    }

    /// Says this stack has reached `stage`.
    pub fn reached(&self, stage: Stage) {
        self.stages.set(self.name, stage);
    }
}
