//! Recovery points: one run of a stack's sources, tying each source's snapshot to the
//! facts needed to restore it (container, image, server and tool versions, databases).
//!
//! A point is written after its sources' snapshots, and only for a run that was not
//! interrupted. It records failed sources too, with their error, so the history shows
//! them; a restore only ever takes a source whose record says `ok`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::id::{PointId, SnapshotId};

/// What a source holds and how it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// `pg_dump` per database plus `pg_dumpall --globals-only`, inside the container.
    Postgres,
    /// `mysqldump`/`mariadb-dump` per database, inside the container.
    Mysql,
    /// `BGSAVE`, then the RDB file.
    Redis,
    /// A host path or a named Docker volume, read from the host.
    Volume,
}

impl SourceKind {
    /// Its name as the configuration and the stored records spell it.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Postgres => "postgres",
            SourceKind::Mysql => "mysql",
            SourceKind::Redis => "redis",
            SourceKind::Volume => "volume",
        }
    }
}

/// One run of a stack.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecoveryPoint {
    /// The stack.
    pub stack: String,
    /// When the run started; restores pick points by this time.
    pub time: DateTime<Utc>,
    /// The host that ran it.
    pub hostname: String,
    /// The sources run, in configuration order.
    pub sources: Vec<SourceRecord>,
    /// Wall time of the whole run in milliseconds.
    pub duration_ms: u64,
    /// The drctl that wrote it.
    pub drctl_version: String,
    /// drctl's own configuration of the stack as it was (its stack file and drill files,
    /// credentials referenced as there, never embedded): what a new host needs to run it
    /// again (`drctl recover`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<CarriedFile>,
}

/// A configuration file carried in a recovery point.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CarriedFile {
    /// Where it goes under the configuration directory: `schedules/NAME.toml`,
    /// `restore-drills/NAME.toml`.
    pub path: String,
    /// Its text.
    pub text: String,
}

impl RecoveryPoint {
    /// Whether every source in it succeeded.
    pub fn complete(&self) -> bool {
        self.sources.iter().all(|s| s.status == SourceStatus::Ok)
    }

    /// The record of one source, if it was run.
    pub fn source(&self, name: &str) -> Option<&SourceRecord> {
        self.sources.iter().find(|s| s.name == name)
    }
}

/// How a source's backup ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    /// Its snapshot is complete and restorable.
    Ok,
    /// It failed; there is no snapshot.
    Failed,
}

/// A PostgreSQL base backup: the server's data directory as `pg_basebackup` wrote it (a
/// tar, with the WAL it needs to be consistent), stored as a file of the source's snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BaseBackup {
    /// The file in the snapshot.
    pub file: String,
    /// The server's timeline when the backup started.
    pub timeline: u32,
    /// Where the backup starts in the WAL, as its label's `START WAL LOCATION` says
    /// (points made before drctl read the label hold a position read just before the
    /// backup, at or before it): WAL from here on replays onto it.
    pub wal_start: String,
    /// The database system it belongs to (PostgreSQL's `system_identifier`, made by
    /// `initdb`): only WAL of the same system replays onto it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// When the source's backup ended, after the server had written the backup's end to
    /// its WAL: the earliest time it restores to. Points made before drctl recorded it
    /// hold none; the point's time plus the source's duration stands in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<DateTime<Utc>>,
    /// The tar holds no WAL (`pg_basebackup -X none`, taken while the archive was live):
    /// the WAL from `wal_start` to the backup's end, which makes it consistent, is in the
    /// archive only, so it restores once the archive reaches `ended`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wal_in_archive: bool,
}

/// What a source's backup was and where it came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SourceRecord {
    /// The source's name in the stack.
    pub name: String,
    /// postgres, mysql, redis or volume.
    pub kind: SourceKind,
    /// Ok or failed.
    pub status: SourceStatus,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The snapshot holding its data (set when ok).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotId>,
    /// The database container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The container's image as created (`postgres:16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The image's digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// The container's entrypoint and command at backup time, so that a drill starts
    /// its scratch server the same way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    /// See `entrypoint`; credentials in it are redacted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// The container's environment without its credentials (`KEY=VALUE`), so that a
    /// drill's scratch server is configured like the original (`PGDATA`, `POSTGRES_DB`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<String>,
    /// The server's version as it reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// Dump tools and their versions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tool_versions: BTreeMap<String, String>,
    /// Databases dumped, each in the file `<name>.sql` of the snapshot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<String>,
    /// A volume source's host path (for a named volume, its mount point at backup time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A named Docker volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    /// Containers stopped while the source was read (and while it is restored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// Containers paused while the source was read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pause: Vec<String>,
    /// A physical base backup taken beside the dumps (`pitr = true`), the start of a
    /// point-in-time restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseBackup>,
    /// With `pitr = true`: why no restore to a time between its backups is possible,
    /// and what to change (binary logging off in a MariaDB/MySQL server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitr_unavailable: Option<String>,
    /// Bytes read from the source.
    pub bytes: u64,
    /// Bytes the source added to the repository.
    pub bytes_added: u64,
    /// Wall time of the source's backup in milliseconds.
    pub duration_ms: u64,
}

impl SourceRecord {
    /// A record with only the name and kind, to be filled in as the backup goes.
    pub fn new(name: &str, kind: SourceKind) -> Self {
        SourceRecord {
            name: name.to_string(),
            kind,
            status: SourceStatus::Failed,
            error: None,
            snapshot: None,
            container: None,
            image: None,
            image_digest: None,
            entrypoint: Vec::new(),
            command: Vec::new(),
            environment: Vec::new(),
            server_version: None,
            tool_versions: BTreeMap::new(),
            databases: Vec::new(),
            path: None,
            volume: None,
            stop: Vec::new(),
            pause: Vec::new(),
            base: None,
            pitr_unavailable: None,
            bytes: 0,
            bytes_added: 0,
            duration_ms: 0,
        }
    }
}

/// A point with its ID, as listed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PointEntry {
    /// The manifest's name.
    pub id: PointId,
    /// Its contents.
    #[serde(flatten)]
    pub point: RecoveryPoint,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_the_stored_names() {
        for k in [
            SourceKind::Postgres,
            SourceKind::Mysql,
            SourceKind::Redis,
            SourceKind::Volume,
        ] {
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.name())
            );
        }
    }
}
