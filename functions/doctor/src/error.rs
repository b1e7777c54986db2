//! The library's one error type. Diagnosis itself never fails on bad cluster or AWS state
//! (that becomes a finding or an "inconclusive"); these errors are about bad input.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}:{line}:{column}: not valid {format}: {message}")]
    Parse {
        path: PathBuf,
        format: &'static str,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{path}: {message}")]
    Shape { path: PathBuf, message: String },

    #[error("{path}: manifest has no \"targetGroupArn\"")]
    ManifestMissingTargetGroup { path: PathBuf },

    #[error("not a target group ARN: {arn:?}: {reason}")]
    InvalidArn { arn: String, reason: &'static str },

    #[error("the dump knows nothing about target group {arn}: {detail}")]
    UnknownTargetGroup { arn: String, detail: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
