//! The one place a stored source kind becomes the module that handles it.

use super::mysql::Mysql;
use super::postgres::Postgres;
use super::redis::Redis;
use super::volume::Volume;
use super::SourceDriver;
use crate::repo::point::SourceKind;

/// The driver of a kind.
pub fn driver(kind: SourceKind) -> &'static dyn SourceDriver {
    match kind {
        SourceKind::Postgres => &Postgres,
        SourceKind::Mysql => &Mysql,
        SourceKind::Redis => &Redis,
        SourceKind::Volume => &Volume,
    }
}
