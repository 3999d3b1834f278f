//! drctl: backup and disaster recovery for servers that run Docker Compose stacks.
//!
//! The library does the work; `main.rs` only parses the command line and maps errors to
//! exit codes. Layers, bottom up: `store` (raw objects), `repo` (format, keys, packs,
//! index, snapshots), `catalog` (the local cache), then `backup`, `restore` and `check`.

pub mod app;
pub mod archive;
pub mod backup;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod config;
pub mod copy;
pub mod discover;
pub mod docker;
pub mod drill;
pub mod error;
pub mod forget;
pub mod fsmeta;
pub mod fsread;
pub mod fswrite;
pub mod hooks;
pub mod human;
pub mod lock;
pub mod notify;
pub mod pitr;
pub mod progress;
pub mod prune;
pub mod recover;
pub mod repair;
pub mod repo;
pub mod restore;
pub mod retention;
pub mod run;
pub mod safe_fs;
pub mod schedule;
pub mod session;
pub mod settings;
pub mod source;
pub mod stack;
pub mod status;
pub mod store;
pub mod timespec;

pub use error::{Error, Result};
