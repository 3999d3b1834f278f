//! `drctl copy`: every object one repository holds and another lacks, copied as stored.
//!
//! Objects are encrypted and named by the BLAKE3 hash of their stored bytes, so the copier
//! needs no key (the machine that pulls an offsite copy cannot read the backups) and
//! still checks every object against its name before it writes it: a damaged source
//! object is reported, never copied. Kinds land in dependency order, packs before the
//! index files that name them, those before the snapshots, points and drill results that
//! need them, so a copy killed at any moment is a consistent repository that a second run
//! completes. Stores write whole objects or nothing, so there is nothing half-written to
//! find; a run lists both sides and copies the difference, reading no object the
//! destination already has. Prune marks and locks are the source's own business and stay
//! behind: the copy keeps its own retention (`forget`/`prune` there).

pub mod state;

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures::stream::{self, StreamExt};

use crate::error::{Error, Result};
use crate::repo::id::content_hash;
use crate::repo::layout::{FileType, Handle, Listed, Objects};
use crate::repo::pack::BlobKind;
use crate::repo::repo_config::RepoConfig;
use crate::store::backend::is_not_found;

/// The kinds a copy carries, in the order they must land.
pub const ORDER: [FileType; 8] = [
    FileType::Keys,
    FileType::Pack(BlobKind::Tree),
    FileType::Pack(BlobKind::Data),
    FileType::Index,
    FileType::Snapshot,
    FileType::Point,
    FileType::Drill,
    FileType::Run,
];

/// What a copy will do, from the two listings.
#[derive(Debug)]
pub struct CopyPlan {
    /// The repository's ID (both sides', once the config is there).
    pub repo_id: String,
    /// The destination has no config yet: it is written first.
    pub write_config: bool,
    /// Per kind, in [`ORDER`], the objects the destination lacks.
    pub missing: Vec<(FileType, Vec<Listed>)>,
    /// Objects both sides hold already.
    pub present: usize,
}

impl CopyPlan {
    /// Objects to copy (the config not counted).
    pub fn objects(&self) -> usize {
        self.missing.iter().map(|(_, v)| v.len()).sum()
    }

    /// Bytes to copy.
    pub fn bytes(&self) -> u64 {
        self.missing
            .iter()
            .flat_map(|(_, v)| v.iter().map(|l| l.size))
            .sum()
    }
}

/// How the copy runs.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Objects in flight at once (each held whole in memory: a pack is up to ~33 MB).
    pub jobs: usize,
    /// Read every copied object back from the destination and check it against its name
    /// (without it, the destination's listing is checked for each object at its size).
    pub read_back: bool,
}

/// What a copy did.
#[derive(Debug, Default)]
pub struct CopyReport {
    /// Objects written.
    pub copied: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Whether the config was written.
    pub wrote_config: bool,
    /// Source objects whose bytes do not match their names: not copied.
    pub damaged: Vec<String>,
    /// Source objects gone between the listing and the read (a prune there): not copied.
    pub vanished: Vec<String>,
}

/// Lists both sides and works out what the destination lacks. Fails when the source is
/// no repository or the destination is another one.
pub async fn plan(from: &Objects, to: &Objects) -> Result<CopyPlan> {
    let source_config = match from.get(&Handle::config()).await {
        Ok(b) => b,
        Err(e) if is_not_found(&e) => {
            return Err(Error::Repository {
                url: from.describe(),
                reason: "no drctl repository here (no config object) to copy from".into(),
            })
        }
        Err(e) => return Err(e),
    };
    let repo_id = config_id(&source_config).ok_or_else(|| Error::Repository {
        url: from.describe(),
        reason: "the config object is not a drctl repository config".into(),
    })?;
    let write_config = match to.get(&Handle::config()).await {
        Ok(b) => match config_id(&b) {
            Some(id) if id == repo_id => false,
            found => {
                return Err(Error::Repository {
                    url: to.describe(),
                    reason: format!(
                        "it holds another repository ({}), not a copy of {} ({}); copy into \
                         an empty bucket or directory, or into an earlier copy",
                        found.as_deref().map_or("unreadable config", short),
                        short(&repo_id),
                        from.describe()
                    ),
                })
            }
        },
        Err(e) if is_not_found(&e) => true,
        Err(e) => return Err(e),
    };
    let mut missing = Vec::new();
    let mut present = 0;
    for kind in ORDER {
        let (have, want) = futures::try_join!(to.list(kind), from.list(kind))?;
        let have: std::collections::HashSet<Handle> = have.into_iter().map(|l| l.handle).collect();
        let (lacking, held): (Vec<Listed>, Vec<Listed>) =
            want.into_iter().partition(|l| !have.contains(&l.handle));
        present += held.len();
        missing.push((kind, lacking));
    }
    Ok(CopyPlan {
        repo_id,
        write_config,
        missing,
        present,
    })
}

/// Copies what the plan lists, kind by kind, `opts.jobs` objects at a time; `progress`
/// hears each object's size as it lands. Stops between objects once `interrupt` is set.
pub async fn execute(
    plan: &CopyPlan,
    from: &Objects,
    to: &Objects,
    opts: &CopyOptions,
    interrupt: &AtomicBool,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<CopyReport> {
    let mut report = CopyReport::default();
    let mut written = Vec::new();
    if plan.write_config {
        let raw = from.get(&Handle::config()).await?;
        to.put(&Handle::config(), raw).await?;
        report.wrote_config = true;
    }
    for (_, objects) in &plan.missing {
        // A kind lands whole before the next starts: what follows refers to it.
        let mut done = stream::iter(objects)
            .map(|listed| async move {
                if interrupt.load(Ordering::Relaxed) {
                    return Err(Error::Interrupted);
                }
                copy_one(&listed.handle, from, to, opts.read_back).await
            })
            .buffer_unordered(opts.jobs.max(1));
        let mut interrupted = false;
        while let Some(outcome) = done.next().await {
            match outcome {
                Ok(Copied::Written(h, n)) => {
                    report.copied += 1;
                    report.bytes += n;
                    written.push((h, n));
                    progress(n);
                }
                Ok(Copied::Damaged(what)) => report.damaged.push(what),
                Ok(Copied::Vanished(key)) => report.vanished.push(key),
                Err(Error::Interrupted) => interrupted = true,
                Err(e) => return Err(e),
            }
        }
        if interrupted {
            return Err(Error::Interrupted);
        }
    }
    if !opts.read_back {
        verify_listed(plan, to, &written).await?;
    }
    Ok(report)
}

/// One object's fate.
enum Copied {
    /// Written, this many bytes.
    Written(Handle, u64),
    /// Its bytes do not match its name (the message says which).
    Damaged(String),
    /// Gone from the source since the listing.
    Vanished(String),
}

async fn copy_one(h: &Handle, from: &Objects, to: &Objects, read_back: bool) -> Result<Copied> {
    let data = match from.get(h).await {
        Ok(b) => b,
        Err(e) if is_not_found(&e) => return Ok(Copied::Vanished(h.key())),
        Err(e) => return Err(e),
    };
    // Hashing a pack takes milliseconds of CPU: off the threads that drive the transfers.
    let (data, intact) = hashed(h, data).await;
    if !intact {
        return Ok(Copied::Damaged(format!(
            "{} in {}: its contents do not match its name",
            h.key(),
            from.describe()
        )));
    }
    let len = data.len() as u64;
    to.put(h, data).await?;
    if read_back {
        let (_, intact) = hashed(h, to.get(h).await?).await;
        if !intact {
            return Err(Error::Damage(format!(
                "{} in {} differs from what was written to it",
                h.key(),
                to.describe()
            )));
        }
    }
    Ok(Copied::Written(h.clone(), len))
}

/// `data` back, and whether it hashes to the object's name.
async fn hashed(h: &Handle, data: Bytes) -> (Bytes, bool) {
    let h = h.clone();
    tokio::task::spawn_blocking(move || {
        let ok = matches_name(&h, &data);
        (data, ok)
    })
    .await
    .expect("hashing does not panic")
}

/// Checks, with one listing per kind, that the destination holds every object written
/// at the size written: a store that acknowledged a write it did not keep is caught.
async fn verify_listed(plan: &CopyPlan, to: &Objects, written: &[(Handle, u64)]) -> Result<()> {
    for (kind, _) in &plan.missing {
        let mine: Vec<&(Handle, u64)> = written.iter().filter(|(h, _)| h.kind == *kind).collect();
        if mine.is_empty() {
            continue;
        }
        let listed: std::collections::HashMap<Handle, u64> = to
            .list(*kind)
            .await?
            .into_iter()
            .map(|l| (l.handle, l.size))
            .collect();
        for (h, size) in mine {
            if listed.get(h) != Some(size) {
                return Err(Error::Damage(format!(
                    "{} was written to {} but is not there whole afterwards",
                    h.key(),
                    to.describe()
                )));
            }
        }
    }
    Ok(())
}

/// Whether `data` hashes to the object's name (every kind a copy carries is named so;
/// a name that is no hash, in the reserved `keys/`, is taken as it is).
fn matches_name(h: &Handle, data: &Bytes) -> bool {
    match hex::decode(&h.name) {
        Ok(name) if name.len() == 32 => name == content_hash(data),
        _ => h.kind == FileType::Keys,
    }
}

fn config_id(raw: &[u8]) -> Option<String> {
    RepoConfig::unverified(raw).map(|c| c.id)
}

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_must_hash_to_its_name() {
        let data = Bytes::from_static(b"sealed pack bytes");
        let good = Handle::new(FileType::Index, hex::encode(content_hash(&data)));
        assert!(matches_name(&good, &data));
        assert!(!matches_name(
            &good,
            &Bytes::from_static(b"sealed pack bytez")
        ));
        // A name that is no hash is only taken as it is where names are not hashes.
        assert!(!matches_name(
            &Handle::new(FileType::Snapshot, "latest"),
            &data
        ));
        assert!(matches_name(&Handle::new(FileType::Keys, "admin"), &data));
    }

    #[test]
    fn kinds_land_before_what_refers_to_them() {
        let at = |k| ORDER.iter().position(|o| *o == k).unwrap();
        assert!(at(FileType::Pack(BlobKind::Data)) < at(FileType::Index));
        assert!(at(FileType::Pack(BlobKind::Tree)) < at(FileType::Index));
        assert!(at(FileType::Index) < at(FileType::Snapshot));
        assert!(at(FileType::Snapshot) < at(FileType::Point));
        assert!(!ORDER.contains(&FileType::Mark) && !ORDER.contains(&FileType::Lock));
    }
}
