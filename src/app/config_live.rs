//! `config check --live`: every source checked against this host, every problem named.

use crate::config::Stack;
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::source::live;

use super::App;

impl App {
    pub(super) fn config_live(&self, stacks: &[Stack]) -> Result<()> {
        let (docker, unreachable) = match Docker::connect(self.rt.clone()) {
            Ok(d) => (Some(d), String::new()),
            Err(e) => (None, e.to_string()),
        };
        let checks = live::check(stacks, docker.as_ref(), &unreachable);
        let mut failed = 0;
        for c in &checks {
            match &c.outcome {
                Ok(found) => {
                    if !self.quiet && !self.json {
                        println!("ok      {:<32} {found}", c.what);
                    }
                }
                Err(why) => {
                    failed += 1;
                    eprintln!("problem: {}: {why}", c.what);
                }
            }
        }
        if failed > 0 {
            return Err(Error::Environment(format!(
                "{failed} of {} source(s) would fail on this host (each named above)",
                checks.len()
            )));
        }
        Ok(())
    }
}
