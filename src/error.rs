//! Typed errors for the whole library; each maps to one exit code of the style guide.

use crate::store::StoreError;

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in drctl, grouped by what the user must do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad arguments or an invalid request (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Invalid or unreadable configuration (exit 2).
    #[error("{0}")]
    Config(String),
    /// Missing, unreadable or mismatched key file (exit 2).
    #[error("key file {path}: {reason}")]
    Key { path: String, reason: String },
    /// A repository this drctl cannot open: missing, or written by another format (exit 2).
    #[error("repository {url}: {reason}")]
    Repository { url: String, reason: String },
    /// The repository's format version is not one this drctl reads (exit 2).
    #[error(
        "repository {url} has format version {found}; this drctl reads versions {oldest} to {supported}"
    )]
    UnsupportedVersion {
        url: String,
        found: u32,
        oldest: u32,
        supported: u32,
    },
    /// The store failed; missing bucket, unreachable endpoint and denied access are exit 2.
    #[error("{store}: {source}")]
    Store {
        store: String,
        #[source]
        source: StoreError,
    },
    /// A service drctl depends on (the Docker daemon) cannot be reached (exit 2).
    #[error("{0}")]
    Environment(String),
    /// Stored data failed verification: a damaged or missing pack, tree or snapshot (exit 1).
    #[error("{0}")]
    Damage(String),
    /// The operation ran and failed (exit 1).
    #[error("{0}")]
    Failed(String),
    /// Local I/O failed (exit 1).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The local catalog failed (exit 1).
    #[error("catalog {path}: {source}")]
    Catalog {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    /// The catalog cannot be created or opened where the settings put it: a directory
    /// that cannot be made, a path that is a directory, no permission (exit 2).
    #[error("catalog {path} cannot be opened: {reason}")]
    CatalogPath { path: String, reason: String },
    /// Another run holds the stack's lock; this one was skipped (exit 3).
    #[error("{0}")]
    Locked(String),
    /// SIGINT or SIGTERM arrived; cleanup is done (exit 130).
    #[error("interrupted")]
    Interrupted,
    /// Where an error happened (`stack shop, source db`), around it: the exit code and
    /// hint stay the inner error's.
    #[error("{what}: {source}")]
    Context {
        what: String,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// This error with where it happened in front; an interruption stays itself.
    pub fn context(self, what: impl Into<String>) -> Error {
        match self {
            Error::Interrupted => self,
            source => Error::Context {
                what: what.into(),
                source: Box::new(source),
            },
        }
    }

    /// The process exit code for this error (see `shared/style.md`).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_)
            | Error::Config(_)
            | Error::Key { .. }
            | Error::Repository { .. }
            | Error::UnsupportedVersion { .. }
            | Error::CatalogPath { .. }
            | Error::Environment(_) => 2,
            Error::Store { source, .. } => match source {
                StoreError::Missing(_)
                | StoreError::Unreachable { .. }
                | StoreError::Denied { .. }
                | StoreError::ReadOnly { .. } => 2,
                _ => 1,
            },
            Error::Damage(_) | Error::Failed(_) | Error::Io { .. } | Error::Catalog { .. } => 1,
            Error::Locked(_) => 3,
            Error::Interrupted => 130,
            Error::Context { source, .. } => source.exit_code(),
        }
    }

    /// A follow-up line for the user, when there is something useful to suggest.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::Store {
                source: StoreError::Unreachable { .. },
                ..
            } => Some("check the endpoint URL and that the server is running"),
            Error::Store {
                store,
                source: StoreError::Denied { .. },
            } if store.starts_with("file://") => {
                Some("check the permissions of the repository directory for this user")
            }
            Error::Store {
                source: StoreError::Denied { .. },
                ..
            } => Some("check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the AWS profile"),
            Error::Store {
                source: StoreError::Missing(_),
                ..
            } => Some("create the bucket first, or fix the repository URL"),
            Error::Store {
                source: StoreError::ReadOnly { .. },
                ..
            } => Some("this command writes to the repository: mount it read-write, or use a command that only reads"),
            Error::CatalogPath { .. } => Some(
                "the catalog is a cache: point --catalog (DRCTL_CATALOG, `catalog` in drctl.toml) at a writable file, or unset it",
            ),
            Error::UnsupportedVersion { .. } => Some("upgrade drctl to read this repository"),
            Error::Context { source, .. } => source.hint(),
            _ => None,
        }
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Adds context to I/O results.
pub trait IoContext<T> {
    /// Maps an I/O error to `Error::Io` with a lazily built context.
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::io(f(), e))
    }
}

impl From<crate::store::backend::BackendError> for Error {
    fn from(e: crate::store::backend::BackendError) -> Self {
        Error::Store {
            store: e.store,
            source: e.source,
        }
    }
}

impl crate::store::backend::ObjectMissing for Error {
    fn object_missing(&self) -> bool {
        matches!(
            self,
            Error::Store {
                source: StoreError::NotFound(_),
                ..
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_the_exit_code_and_hint_of_what_it_wraps() {
        let unreachable = Error::Store {
            store: "s3://b".into(),
            source: StoreError::Unreachable {
                endpoint: "http://127.0.0.1:1".into(),
                detail: "connection refused".into(),
            },
        };
        let hint = unreachable.hint();
        let e = unreachable.context("stack shop, source db");
        assert_eq!(e.exit_code(), 2);
        assert_eq!(e.hint(), hint);
        assert!(
            e.to_string().starts_with("stack shop, source db: s3://b: "),
            "{e}"
        );
        let docker = Error::Environment("cannot reach the Docker daemon".into()).context("x");
        assert_eq!(docker.exit_code(), 2);
        assert_eq!(Error::Damage("d".into()).context("x").exit_code(), 1);
        assert!(matches!(
            Error::Interrupted.context("x"),
            Error::Interrupted
        ));
    }
}
