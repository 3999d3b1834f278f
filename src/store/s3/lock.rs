//! S3 Object Lock on the objects a store writes: an offsite copy that no one, not even
//! the holder of the copy's own key, can delete or overwrite before the retention ends.
//!
//! The bucket must have been created with Object Lock (S3 turns it on only then); a
//! store asked to lock objects checks that first, so that a bucket or service without it
//! (Garage has none) is refused before anything is written, instead of taking objects
//! that only look protected.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{ObjectLockEnabled, ObjectLockMode};
use md5::{Digest, Md5};

use super::{S3Store, Target};
use crate::store::StoreError;

/// How an object is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// No one can shorten the retention or delete the object before it ends.
    Compliance,
    /// Users with `s3:BypassGovernanceRetention` can.
    Governance,
}

impl std::str::FromStr for LockMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "compliance" => Ok(LockMode::Compliance),
            "governance" => Ok(LockMode::Governance),
            _ => Err(format!(
                "object lock mode {s:?} is neither \"compliance\" nor \"governance\""
            )),
        }
    }
}

/// The retention every object a store writes gets: locked for `period` from its write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub mode: LockMode,
    pub period: Duration,
}

impl Retention {
    /// The time an object written at `now` is locked until.
    pub fn until(&self, now: SystemTime) -> SystemTime {
        now + self.period
    }
}

/// `Content-MD5` of a body: S3 requires it (or a checksum) on a write with a retention.
pub(super) fn content_md5(data: &[u8]) -> String {
    aws_smithy_types::base64::encode(Md5::digest(data).as_slice())
}

pub(super) fn sdk_mode(mode: LockMode) -> ObjectLockMode {
    match mode {
        LockMode::Compliance => ObjectLockMode::Compliance,
        LockMode::Governance => ObjectLockMode::Governance,
    }
}

impl S3Store {
    /// This store with every object it writes locked.
    pub fn with_retention(mut self, retention: Retention) -> S3Store {
        self.retention = Some(retention);
        self
    }

    /// Whether the bucket has Object Lock enabled: `false` when it has none, or the
    /// service does not implement it.
    pub async fn object_lock_enabled(&self) -> Result<bool, StoreError> {
        let err = match self
            .client
            .get_object_lock_configuration()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(out) => {
                return Ok(out
                    .object_lock_configuration()
                    .and_then(|c| c.object_lock_enabled())
                    .is_some_and(|e| *e == ObjectLockEnabled::Enabled))
            }
            Err(e) => e,
        };
        let status = err.raw_response().map(|r| r.status().as_u16());
        let answered = err.as_service_error().is_some();
        // AWS says ObjectLockConfigurationNotFoundError (404); a service without the API
        // answers 400 (Garage), 405 or 501. A missing bucket or refused key is an error.
        let missing_bucket = err.code() == Some("NoSuchBucket");
        if answered && !missing_bucket && matches!(status, Some(400 | 404 | 405 | 501)) {
            return Ok(false);
        }
        Err(self.map_err(err, Target::Bucket))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_in_any_case_and_retention_runs_from_the_write() {
        assert_eq!("COMPLIANCE".parse(), Ok(LockMode::Compliance));
        assert_eq!("governance".parse(), Ok(LockMode::Governance));
        assert!("legal-hold".parse::<LockMode>().is_err());
        let r = Retention {
            mode: LockMode::Compliance,
            period: Duration::from_secs(86400),
        };
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(
            r.until(t),
            SystemTime::UNIX_EPOCH + Duration::from_secs(87400)
        );
        // The MD5 of nothing, base64.
        assert_eq!(content_md5(b""), "1B2M2Y8AsgTpgAmY7PhCfg==");
    }
}
