//! How an S3 failure is told to the user and to `Backend`: every SDK error sorted into a
//! [`StoreError`] kind (which decides retries and the exit code), with a message that
//! names the endpoint, the object, the HTTP status and the S3 error code, never
//! credentials.

use std::error::Error as StdError;
use std::io;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ConnectorError, ProvideErrorMetadata, SdkError};

use super::{S3Store, Target, ATTEMPT_TIMEOUT};
use crate::store::{Store, StoreError};

impl S3Store {
    /// The bucket itself is gone (or was never made): a configuration error, not a retry.
    fn missing_bucket(&self) -> StoreError {
        StoreError::Missing(format!("bucket {}", self.bucket))
    }

    /// What the message names as the failed thing.
    fn target_name(&self, target: Target<'_>) -> String {
        match target {
            Target::Object(key) => key.to_owned(),
            Target::Bucket => format!("bucket {}", self.bucket),
            Target::List(prefix) => format!("listing of {prefix:?}"),
        }
    }

    /// A failure worth retrying (`Backend` does).
    pub(super) fn transient(&self, target: Target<'_>, detail: String) -> StoreError {
        StoreError::Transient {
            key: self.target_name(target),
            detail,
        }
    }

    /// A transient failure of `target` caused by `err`, for errors met outside `map_err`
    /// (a body that breaks off while it is read).
    pub(super) fn transient_from(
        &self,
        target: Target<'_>,
        what: String,
        err: &(dyn StdError + 'static),
    ) -> StoreError {
        self.transient(target, format!("{what}: {}", error_text(err)))
    }

    /// Sorts an SDK error into a store error kind.
    pub(super) fn map_err<E>(
        &self,
        err: SdkError<E, HttpResponse>,
        target: Target<'_>,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        match &err {
            SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
                let status = err.raw_response().map(|r| r.status().as_u16());
                let code = err.code().map(str::to_owned);
                let status_text = status.map_or_else(|| "?".to_owned(), |s| s.to_string());
                let mut detail = if matches!(err, SdkError::ResponseError(_)) {
                    format!(
                        "HTTP {status_text}: unreadable response: {}",
                        error_text(&err)
                    )
                } else {
                    match (&code, err.message()) {
                        (Some(c), Some(m)) => format!("HTTP {status_text} {c}: {m}"),
                        (Some(c), None) => format!("HTTP {status_text} {c}"),
                        (None, _) => format!("HTTP {status_text}"),
                    }
                };
                // Wrong regions are the commonest set-up mistake; say so where S3 hints it.
                let bucket_region = err
                    .raw_response()
                    .and_then(|r| r.headers().get("x-amz-bucket-region"))
                    .filter(|r| *r != self.region);
                if let Some(region) = bucket_region {
                    detail.push_str(&format!(
                        " (the bucket is in region {region}, not {})",
                        self.region
                    ));
                } else if status == Some(301)
                    || (status == Some(400) && matches!(target, Target::Bucket) && code.is_none())
                {
                    detail.push_str(" (is the region right?)");
                }
                self.classify_response(status, code.as_deref(), detail, target)
            }
            SdkError::TimeoutError(_) => self.transient(
                target,
                format!(
                    "no complete answer within {}s: {}",
                    ATTEMPT_TIMEOUT.as_secs(),
                    error_text(&err)
                ),
            ),
            SdkError::DispatchFailure(failure) => {
                let detail = error_text(&err);
                match classify_dispatch(failure.as_connector_error()) {
                    Dispatch::Credentials => StoreError::Denied {
                        endpoint: self.endpoint.clone(),
                        detail: format!(
                            "no usable credentials (set AWS_ACCESS_KEY_ID and \
                             AWS_SECRET_ACCESS_KEY, or AWS_PROFILE): {detail}"
                        ),
                    },
                    Dispatch::MidTransfer => self.transient(target, detail),
                    Dispatch::Connect => StoreError::Unreachable {
                        endpoint: self.endpoint.clone(),
                        detail,
                    },
                    Dispatch::Invalid => StoreError::Other(format!(
                        "cannot send request to {}: {detail}",
                        self.endpoint
                    )),
                }
            }
            SdkError::ConstructionFailure(_) => StoreError::Other(format!(
                "cannot build request for {}: {}",
                self.endpoint,
                error_text(&err)
            )),
            _ => StoreError::Other(format!("{}: {}", self.endpoint, error_text(&err))),
        }
    }

    /// Sorts an error response by S3 error code first, then HTTP status.
    fn classify_response(
        &self,
        status: Option<u16>,
        code: Option<&str>,
        detail: String,
        target: Target<'_>,
    ) -> StoreError {
        let denied = || StoreError::Denied {
            endpoint: self.endpoint.clone(),
            detail: detail.clone(),
        };
        match code {
            Some("NoSuchBucket") => return self.missing_bucket(),
            Some("NoSuchKey") => {
                return match target {
                    Target::Object(key) => StoreError::NotFound(key.to_owned()),
                    _ => self.missing_bucket(),
                }
            }
            Some(
                "AccessDenied"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "AllAccessDisabled"
                | "AccountProblem"
                | "InvalidToken"
                | "ExpiredToken"
                | "TokenRefreshRequired"
                | "RequestTimeTooSkewed"
                | "InvalidSecurity"
                | "NotSignedUp"
                | "Forbidden"
                | "Unauthorized",
            ) => return denied(),
            Some(
                "SlowDown"
                | "InternalError"
                | "ServiceUnavailable"
                | "RequestTimeout"
                | "Throttling"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "TooManyRequests"
                | "OperationAborted",
            ) => return self.transient(target, detail),
            _ => {}
        }
        match status {
            Some(404) => match target {
                Target::Object(key) => StoreError::NotFound(key.to_owned()),
                Target::Bucket | Target::List(_) => self.missing_bucket(),
            },
            Some(401 | 403) => denied(),
            Some(408 | 429 | 500 | 502 | 503 | 504) => self.transient(target, detail),
            _ => StoreError::Other(format!(
                "{} refused {}: {detail}",
                self.describe(),
                self.target_name(target)
            )),
        }
    }
}

/// What a failure to exchange a request with the server means.
enum Dispatch {
    /// The server could not be reached at all (DNS, refused, connect timeout, TLS).
    Connect,
    /// The connection broke while the request or response was under way.
    MidTransfer,
    /// No credentials could be loaded.
    Credentials,
    /// The request itself was unusable.
    Invalid,
}

/// Iterates over an error and its sources, descending into `io::Error` payloads (whose
/// `source()` skips the payload itself).
fn error_chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |&e| match e.downcast_ref::<io::Error>() {
        Some(io_err) => io_err
            .get_ref()
            .map(|inner| inner as &(dyn StdError + 'static)),
        None => e.source(),
    })
}

/// An error and its causes on one line, without the SDK's generic wrapper labels (and
/// without the `Debug` dump that `DisplayErrorContext` appends).
fn error_text(err: &(dyn StdError + 'static)) -> String {
    const GENERIC: &[&str] = &[
        "dispatch failure",
        "service error",
        "response error",
        "failed to construct request",
        "io error",
        "user error",
        "timeout",
        "other",
    ];
    let mut parts: Vec<String> = Vec::new();
    for e in error_chain(err) {
        let text = e.to_string();
        if text.is_empty()
            || GENERIC.contains(&text.as_str())
            || parts.last().is_some_and(|last| last.ends_with(&text))
        {
            continue;
        }
        parts.push(text);
    }
    if parts.is_empty() {
        err.to_string()
    } else {
        parts.join(": ")
    }
}

fn classify_dispatch(conn: Option<&ConnectorError>) -> Dispatch {
    let Some(conn) = conn else {
        return Dispatch::Connect;
    };
    let mut connect = false;
    let mut broken = false;
    let mut credentials = false;
    for e in error_chain(conn) {
        let msg = e.to_string();
        let lower = msg.to_ascii_lowercase();
        // hyper-util reports every failure to establish a connection (DNS, TCP, TLS,
        // connect timeout) as "client error (Connect)".
        if msg.starts_with("client error (Connect)")
            || lower.contains("dns error")
            || lower.contains("failed to lookup address")
            || lower.contains("connect timeout")
        {
            connect = true;
        }
        if lower.contains("credential") {
            credentials = true;
        }
        if let Some(io_err) = e.downcast_ref::<io::Error>() {
            match io_err.kind() {
                io::ErrorKind::ConnectionRefused
                | io::ErrorKind::AddrNotAvailable
                | io::ErrorKind::NotConnected => connect = true,
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::TimedOut => broken = true,
                _ => {}
            }
        }
    }
    if credentials {
        Dispatch::Credentials
    } else if connect {
        Dispatch::Connect
    } else if broken
        || conn.is_io()
        || conn.is_timeout()
        || conn.as_other() == Some(aws_smithy_types::retry::ErrorKind::TransientError)
    {
        // An I/O failure that is not a connection failure happened on an established
        // connection: closed, reset, incomplete message or a read timeout.
        Dispatch::MidTransfer
    } else if conn.is_user() {
        Dispatch::Invalid
    } else {
        Dispatch::Connect
    }
}
