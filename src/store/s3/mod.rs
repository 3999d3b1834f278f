//! S3-compatible object store (AWS S3, MinIO, Garage, …) on top of `aws-sdk-s3`.
//!
//! Credentials come from the usual AWS chain (environment, profile files, SSO, …). The
//! SDK's own retries are limited to two attempts with short connect timeouts, because
//! `Backend` retries transient errors itself and an unreachable endpoint must fail in
//! seconds. Every SDK error is sorted into a [`StoreError`] kind, which decides retries and
//! the exit code; messages carry the endpoint, the object name, the HTTP status and the S3
//! error code, never credentials (see `errors`).

mod errors;
mod lock;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};

use super::{ObjectInfo, Store, StoreError};
pub use lock::{LockMode, Retention};

/// How long to wait for a TCP (and TLS) connection before calling the endpoint unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Upper bound for one attempt of one request: enough for a 64 MiB PUT at ~0.5 MiB/s.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);
/// Attempts the SDK makes itself (first try included); `Backend` retries on top of this.
const SDK_MAX_ATTEMPTS: u32 = 2;
/// Region used when neither the configuration nor the environment names one.
const DEFAULT_REGION: &str = "us-east-1";
/// Never pre-allocate more than this for a body, whatever its announced length.
const MAX_PREALLOC: u64 = 256 << 20;

/// Where an S3 store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/`; may be empty.
    pub prefix: String,
    /// Endpoint URL for S3-compatible services (`http://127.0.0.1:3900`); `None` for AWS
    /// (or whatever `AWS_ENDPOINT_URL` says).
    pub endpoint: Option<String>,
    /// Region; `None` takes it from the AWS environment or profile, else `us-east-1`.
    pub region: Option<String>,
    /// Address buckets as `endpoint/bucket` instead of `bucket.endpoint`; most
    /// self-hosted services (MinIO, Garage) need this.
    pub path_style: bool,
    /// A named profile of the AWS shared files (`~/.aws/credentials`, `~/.aws/config`)
    /// whose credentials and region are used instead of the usual chain: how one process
    /// holds two stores with different keys (`drctl copy`).
    pub profile: Option<String>,
}

/// Splits `s3://bucket/some/prefix` into `("bucket", "some/prefix")`.
///
/// The prefix loses its leading and trailing slashes and may be empty. Returns `None`
/// when the URL is not an `s3://` URL or names no bucket.
pub fn parse_url(url: &str) -> Option<(String, String)> {
    let scheme = url.get(..5)?;
    if !scheme.eq_ignore_ascii_case("s3://") {
        return None;
    }
    let rest = &url[5..];
    let (bucket, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    if bucket.is_empty() {
        return None;
    }
    Some((bucket.to_owned(), prefix.trim_matches('/').to_owned()))
}

/// An object store in an S3 bucket, under an optional key prefix.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    /// Endpoint for messages, without credentials.
    endpoint: String,
    /// Region requests are signed for.
    region: String,
    /// Every object written is locked for this long (`with_retention`).
    retention: Option<Retention>,
}

/// What a request was about, for naming the failure.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    /// One object (relative key).
    Object(&'a str),
    /// The bucket itself.
    Bucket,
    /// A listing of a (relative) prefix.
    List(&'a str),
}

impl S3Store {
    /// Builds a client for `cfg`. No request is made: use `check_access` to test it.
    pub async fn new(cfg: S3Config) -> Result<S3Store, StoreError> {
        if cfg.bucket.is_empty() {
            return Err(StoreError::Other("S3 bucket name is empty".into()));
        }
        let endpoint_url = match cfg.endpoint.as_deref().map(str::trim) {
            Some(e) if !e.is_empty() => {
                let lower = e.to_ascii_lowercase();
                if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                    return Err(StoreError::Other(format!(
                        "invalid S3 endpoint {}: it must start with http:// or https://",
                        sanitize_endpoint(e)
                    )));
                }
                Some(e.trim_end_matches('/').to_owned())
            }
            _ => None,
        };

        // Region: the configured one, else the environment or profile; the instance
        // metadata service is asked only for AWS itself (on other machines it can stall
        // for seconds), and us-east-1 is the last resort.
        let region_chain = RegionProviderChain::first_try(
            cfg.region
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| Region::new(r.to_owned())),
        )
        .or_else(EnvironmentVariableRegionProvider::new())
        .or_else(match &cfg.profile {
            Some(p) => ProfileFileRegionProvider::builder().profile_name(p).build(),
            None => ProfileFileRegionProvider::builder().build(),
        });
        let region_chain = if endpoint_url.is_none() {
            region_chain.or_default_provider()
        } else {
            region_chain
        }
        .or_else(Region::new(DEFAULT_REGION));

        let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region_chain);
        if let Some(p) = &cfg.profile {
            // Only this profile: the environment's keys belong to the other store.
            loader = loader.credentials_provider(
                aws_config::profile::ProfileFileCredentialsProvider::builder()
                    .profile_name(p)
                    .build(),
            );
        }
        let sdk_config = loader
            .retry_config(RetryConfig::standard().with_max_attempts(SDK_MAX_ATTEMPTS))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .build(),
            )
            .load()
            .await;

        let mut builder = aws_sdk_s3::config::Builder::from(&sdk_config)
            .force_path_style(cfg.path_style)
            // Many S3-compatible services reject or mishandle the flexible checksums the
            // SDK now sends by default; SigV4 already signs the payload hash of every PUT
            // and the repository verifies what it reads.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(url) = &endpoint_url {
            builder = builder.endpoint_url(url.clone());
        }
        let s3_config = builder.build();

        let region = s3_config
            .region()
            .map(|r| r.as_ref().to_owned())
            .unwrap_or_else(|| DEFAULT_REGION.to_owned());
        let endpoint = match (&endpoint_url, sdk_config.endpoint_url()) {
            (Some(url), _) => sanitize_endpoint(url),
            (None, Some(url)) => sanitize_endpoint(url),
            (None, None) => format!("https://s3.{region}.amazonaws.com"),
        };

        Ok(S3Store {
            client: Client::from_conf(s3_config),
            bucket: cfg.bucket,
            prefix: cfg.prefix.trim_matches('/').to_owned(),
            endpoint,
            region,
            retention: None,
        })
    }

    /// The full key in the bucket for a store-relative key.
    fn full_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{}", self.prefix, key)
        }
    }

    /// The store-relative key for a full key, if it lies under the prefix.
    fn relative_key<'k>(&self, full: &'k str) -> Option<&'k str> {
        if self.prefix.is_empty() {
            Some(full)
        } else {
            full.strip_prefix(self.prefix.as_str())?.strip_prefix('/')
        }
    }

    /// Reads a response body into one `Bytes`, checking its length when one is expected.
    async fn read_body(
        &self,
        mut body: ByteStream,
        expected: Option<u64>,
        key: &str,
    ) -> Result<Bytes, StoreError> {
        // A body that arrives in one chunk is returned as is; otherwise the chunks are
        // copied once into a buffer sized from the announced length.
        let mut first: Option<Bytes> = None;
        let mut buf: Option<BytesMut> = None;
        let mut received: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                self.transient_from(
                    Target::Object(key),
                    format!("reading the body failed after {received} bytes"),
                    &e,
                )
            })?;
            if chunk.is_empty() {
                continue;
            }
            received += chunk.len() as u64;
            if let Some(buf) = buf.as_mut() {
                buf.extend_from_slice(&chunk);
            } else if let Some(prev) = first.take() {
                let cap = expected
                    .unwrap_or(0)
                    .clamp(received, MAX_PREALLOC.max(received));
                let mut b = BytesMut::with_capacity(cap as usize);
                b.extend_from_slice(&prev);
                b.extend_from_slice(&chunk);
                buf = Some(b);
            } else {
                first = Some(chunk);
            }
        }
        let data = match (buf, first) {
            (Some(buf), _) => buf.freeze(),
            (None, Some(first)) => first,
            (None, None) => Bytes::new(),
        };
        if let Some(expected) = expected {
            if data.len() as u64 != expected {
                return Err(self.transient(
                    Target::Object(key),
                    format!("short read: got {} of {expected} bytes", data.len()),
                ));
            }
        }
        Ok(data)
    }
}

/// An endpoint URL for messages: no user info, query or fragment.
fn sanitize_endpoint(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = match authority.rfind('@') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    format!("{scheme}{host}{}", path.trim_end_matches('/'))
}

/// The total object size from a `Content-Range: bytes a-b/total` header.
fn content_range_total(range: &str) -> Option<u64> {
    range.rsplit_once('/')?.1.trim().parse().ok()
}

fn to_system_time(t: Option<&aws_smithy_types::DateTime>) -> Option<SystemTime> {
    t.and_then(|t| SystemTime::try_from(*t).ok())
}

#[async_trait]
impl Store for S3Store {
    fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{} ({})", self.bucket, self.endpoint)
        } else {
            format!("s3://{}/{} ({})", self.bucket, self.prefix, self.endpoint)
        }
    }

    async fn check_access(&self) -> Result<(), StoreError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| self.map_err(e, Target::Bucket))?;
        Ok(())
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        let len = data.len() as i64;
        // The headers are signed, the body is not (UNSIGNED-PAYLOAD, as rclone sends):
        // SHA-256 over every pack cost a third of `copy`'s CPU. Every object is named by
        // the BLAKE3 hash of its bytes and checked against it when read (and by `check
        // --read-data`), TLS protects it in transit, and the length is signed.
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .content_length(len);
        if let Some(r) = &self.retention {
            request = request
                .object_lock_mode(lock::sdk_mode(r.mode))
                .object_lock_retain_until_date(r.until(SystemTime::now()).into())
                .content_md5(lock::content_md5(&data));
        }
        request
            .body(ByteStream::from(data))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| self.map_err(e, Target::Object(key)))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| self.map_err(e, Target::Object(key)))?;
        let expected = out.content_length().and_then(|l| u64::try_from(l).ok());
        self.read_body(out.body, expected, key).await
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        let Some(last) = offset.checked_add(len - 1) else {
            return Err(StoreError::Other(format!(
                "invalid range of {len} bytes at {offset} in {key}"
            )));
        };
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .range(format!("bytes={offset}-{last}"))
            .send()
            .await
            .map_err(|e| self.map_err(e, Target::Object(key)))?;
        let announced = out.content_length().and_then(|l| u64::try_from(l).ok());
        match out.content_range() {
            // A server that ignores the range answers 200 with the whole object.
            None if offset != 0 || announced != Some(len) => {
                return Err(StoreError::Other(format!(
                    "{} ignored the range request for {key}",
                    self.endpoint
                )));
            }
            // The object itself is too short: retrying cannot help.
            Some(range) => {
                if let Some(total) = content_range_total(range) {
                    if total < offset + len {
                        return Err(StoreError::Other(format!(
                            "object {key} holds {total} bytes, too few to read {len} at offset {offset}"
                        )));
                    }
                }
            }
            None => {}
        }
        let data = self.read_body(out.body, announced, key).await?;
        if data.len() as u64 != len {
            return Err(self.transient(
                Target::Object(key),
                format!(
                    "short read: got {} of {len} bytes at offset {offset}",
                    data.len()
                ),
            ));
        }
        Ok(data)
    }

    async fn stat(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| self.map_err(e, Target::Object(key)))?;
        Ok(ObjectInfo {
            key: key.to_owned(),
            size: out
                .content_length()
                .and_then(|l| u64::try_from(l).ok())
                .unwrap_or(0),
            modified: to_system_time(out.last_modified()),
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let full_prefix = self.full_key(prefix);
        let full_prefix = if self.prefix.is_empty() || !prefix.is_empty() {
            full_prefix
        } else {
            // The whole store: everything under `prefix/`, not `prefix2/…`.
            format!("{}/", self.prefix)
        };
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .set_prefix((!full_prefix.is_empty()).then_some(full_prefix))
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.map_err(e, Target::List(prefix)))?;
            for obj in page.contents() {
                let Some(key) = obj.key().and_then(|k| self.relative_key(k)) else {
                    continue;
                };
                found.push(ObjectInfo {
                    key: key.to_owned(),
                    size: obj.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    modified: to_system_time(obj.last_modified()),
                });
            }
        }
        Ok(found)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match self.map_err(e, Target::Object(key)) {
                StoreError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_url_splits_bucket_and_prefix() {
        assert_eq!(
            parse_url("s3://bucket/some/prefix"),
            Some(("bucket".into(), "some/prefix".into()))
        );
        assert_eq!(
            parse_url("s3://bucket//some/prefix/"),
            Some(("bucket".into(), "some/prefix".into()))
        );
        assert_eq!(parse_url("s3://bucket"), Some(("bucket".into(), "".into())));
        assert_eq!(
            parse_url("s3://bucket/"),
            Some(("bucket".into(), "".into()))
        );
        assert_eq!(parse_url("S3://b/p"), Some(("b".into(), "p".into())));
        assert_eq!(parse_url("s3://"), None);
        assert_eq!(parse_url("s3:///prefix"), None);
        assert_eq!(parse_url("http://bucket/prefix"), None);
        assert_eq!(parse_url("/srv/backup"), None);
        assert_eq!(parse_url(""), None);
    }

    #[test]
    fn sanitize_endpoint_drops_credentials() {
        assert_eq!(
            sanitize_endpoint("http://user:secret@127.0.0.1:3900/"),
            "http://127.0.0.1:3900"
        );
        assert_eq!(
            sanitize_endpoint("https://s3.example.com/base?token=x"),
            "https://s3.example.com/base"
        );
    }

    #[test]
    fn content_range_total_parses() {
        assert_eq!(content_range_total("bytes 0-99/1234"), Some(1234));
        assert_eq!(content_range_total("bytes */1234"), Some(1234));
        assert_eq!(content_range_total("bytes 0-99/*"), None);
    }
}
