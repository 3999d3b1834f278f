//! Restoring a snapshot (or part of it) into a directory.
//!
//! Plan, then do: walk the trees into a plan (directories, links, special and empty files,
//! files to fill and where each of their chunks lives) without touching the target, make
//! the skeleton from it, then fetch pack by pack with range GETs — each needed span once —
//! and write every chunk to every file that holds it. Metadata comes last, directories
//! deepest first, so permissions never block a write.
//!
//! Nothing below the target is reached through a symbolic link: every entry is created
//! relative to its directory's handle (see [`crate::safe_fs`]), and a link standing where
//! the snapshot has a file or directory is replaced, never followed.

mod fetch;
mod plan;
mod planner;
mod read;
mod run;
mod skeleton;

pub use plan::RestoreSummary;
pub use read::{stream_file, TreeReader};
pub use run::{run, RestoreRequest};
