//! Notices for a continuous archive that stopped: `run --due` and the daemon look at each
//! point-in-time stack's archive and notify once when it needs someone (a gap, nothing
//! archived, or a lag past the RPO: a killed `drctl archive` cannot say so itself), and
//! once when it is back. Which stacks were notified is kept in the data directory.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::App;
use crate::catalog::Catalog;
use crate::config::{SourceDef, Stack};
use crate::notify::{Event, Notice, Notifier};
use crate::status;

/// The file naming the stacks whose archive trouble was notified and not yet resolved.
const ALERTED: &str = "archive-alerts";

impl App {
    /// Notifies the archive trouble that began or ended since the last look; a notifier
    /// or a file that fails is a warning.
    pub(super) fn watch_archives(&self, catalog: &Catalog, stacks: &[Stack], now: DateTime<Utc>) {
        let pitr: Vec<Stack> = stacks
            .iter()
            .filter(|s| s.def.source.iter().any(SourceDef::archives_log))
            .cloned()
            .collect();
        let path = self.settings.state_dir.join(ALERTED);
        let before: BTreeSet<String> = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        if pitr.is_empty() && before.is_empty() {
            return;
        }
        let st = match status::compute(catalog, &pitr, &[], now) {
            Ok(st) => st,
            Err(e) => return eprintln!("warning: archive watch: {e}"),
        };
        let mut alerted = before.clone();
        alerted.retain(|s| pitr.iter().any(|p| &p.name == s));
        for (stack, state) in pitr.iter().zip(&st.stacks) {
            let trouble = status::archive_trouble(state);
            let event = match (&trouble, alerted.contains(&stack.name)) {
                (Some(_), false) => (Event::Failure, "archive_stalled"),
                (None, true) => (Event::Success, "archive_resumed"),
                _ => continue,
            };
            if trouble.is_some() {
                alerted.insert(stack.name.clone());
            } else {
                alerted.remove(&stack.name);
            }
            if let Some(why) = &trouble {
                eprintln!("warning: {why}");
            }
            let Some(notifier) = Notifier::new(stack.def.notify.as_ref()) else {
                continue;
            };
            let notice = Notice::new(
                event.0,
                &stack.name,
                &super::hostname(),
                now,
                event.1,
                trouble,
            );
            for w in notifier.send(&notice) {
                eprintln!("warning: {w}");
            }
        }
        if alerted != before {
            let text: String = alerted.iter().map(|s| format!("{s}\n")).collect();
            let tmp = path.with_extension("tmp");
            if let Err(e) = std::fs::create_dir_all(&self.settings.state_dir)
                .and_then(|_| std::fs::write(&tmp, text))
                .and_then(|_| std::fs::rename(&tmp, &path))
            {
                eprintln!("warning: writing {}: {e}", path.display());
            }
        }
    }
}
