//! `archive`: the continuous WAL archive of a stack's PostgreSQL source, as a service.

use crate::archive::{self, ArchiveRequest};
use crate::cli::ArchiveArgs;
use crate::config::SourceDef;
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::lock::StackLock;

use super::{hostname, App};

impl App {
    pub(super) fn archive(&self, a: &ArchiveArgs) -> Result<()> {
        let partial_every = crate::timespec::parse_duration(&a.partial_every)
            .ok()
            .and_then(|d| d.to_std().ok())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "--partial-every takes a duration (2s, 1m), not {:?}",
                    a.partial_every
                ))
            })?;
        let stacks = self.stacks()?;
        let stack = self.find_stack(&stacks, &a.stack)?;
        let def = pitr_source(&stack.def.source, &a.stack, a.source.as_deref())?;
        // One archiver per source: a second would take the slot over from the first.
        let lock_name = format!("{}.{}.wal", stack.name, def.name.get_ref());
        let _lock =
            StackLock::acquire(&self.settings.state_dir.join("locks"), &lock_name, self.now)?;
        let mut session = self.open()?;
        self.writable(session.repo())?;
        let docker = Docker::connect(self.rt.clone())?;
        if !self.quiet {
            eprintln!(
                "drctl archive: WAL of stack {}, source {}",
                stack.name,
                def.name.get_ref()
            );
        }
        let progress = crate::progress::Progress::new(false, "archiving");
        archive::run(
            &mut session,
            &docker,
            &ArchiveRequest {
                stack,
                def,
                hostname: hostname(),
                interrupt: self.interrupt.clone(),
                poll: std::time::Duration::from_millis(500),
                partial_every,
                progress: &progress,
            },
        )
    }
}

/// The stack's source with `pitr = true`: the one named, or its only one.
fn pitr_source<'a>(
    sources: &'a [SourceDef],
    stack: &str,
    named: Option<&str>,
) -> Result<&'a SourceDef> {
    let pitr: Vec<&SourceDef> = sources.iter().filter(|s| s.archives_log()).collect();
    match named {
        Some(n) => pitr
            .into_iter()
            .find(|s| s.name.get_ref() == n)
            .ok_or_else(|| {
                Error::Usage(format!("stack {stack} has no source {n} with pitr = true"))
            }),
        None => match pitr.as_slice() {
            [one] => Ok(one),
            [] => Err(Error::Usage(format!(
                "stack {stack} has no source with pitr = true"
            ))),
            _ => Err(Error::Usage(format!(
                "stack {stack} has several sources with pitr = true: name one with --source"
            ))),
        },
    }
}
