//! Containers this host's drctl stopped or paused, recorded before they were touched so
//! that a killed drctl's holds are found and undone by the next command.

use rusqlite::params;

use super::{process_alive, Catalog};
use crate::error::Result;

impl Catalog {
    /// Records, before touching it, that this process stops or pauses a container.
    pub fn hold_container(&self, container: &str, action: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO held_containers(container, action, holder_pid, since) VALUES (?1, ?2, ?3, ?4)",
                params![container, action, std::process::id(), chrono::Utc::now().to_rfc3339()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Forgets a container once it is back in its previous state.
    pub fn release_container(&self, container: &str) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM held_containers WHERE container=?1",
                [container],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Containers held by processes that no longer run (a killed drctl): (name, action).
    pub fn orphaned_holds(&self) -> Result<Vec<(String, String)>> {
        let mut st = self
            .conn
            .prepare("SELECT container, action, holder_pid FROM held_containers")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, action, pid) = row.map_err(|e| self.err(e))?;
            if !process_alive(&pid.to_string()) {
                out.push((name, action));
            }
        }
        Ok(out)
    }
}
