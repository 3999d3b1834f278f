//! Values this host keeps about the repository (not a cache of the store): kept in the
//! `meta` table under a `state.` prefix, so neither a rebuild nor a refresh touches them.

use rusqlite::{params, OptionalExtension};

use super::Catalog;
use crate::error::Result;

impl Catalog {
    /// A value this host keeps about the repository (not a cache of the store).
    pub fn state(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT value FROM meta WHERE key=?1",
                [format!("state.{key}")],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Sets a value of `state`.
    pub fn set_state(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
                params![format!("state.{key}"), value],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}
