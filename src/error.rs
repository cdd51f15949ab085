//! The core's one error type. Every failure a user can cause or see is a variant here; the HTTP
//! layer maps it to a status once (`status_code`) and the Python bridge to an exception once.

use serde::Serialize;

/// One problem found while reading a request, in the shape upstream's clients already parse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldIssue {
    /// Path to the offending value, starting with `body` or `query`.
    pub loc: Vec<String>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is well formed but asks for something invalid (upstream's `ValueError`).
    #[error("{0}")]
    InvalidValue(String),
    /// The request body or query does not match the schema.
    #[error("invalid request: {}", describe_issues(.0))]
    Validation(Vec<FieldIssue>),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    Timeout(String),
    /// A backend a provider talks to failed or answered something we cannot use.
    #[error("provider `{provider}`: {message}")]
    Upstream { provider: String, message: String },
    /// A backend a provider talks to cannot be reached.
    #[error("provider `{provider}` is unavailable: {message}")]
    Unavailable { provider: String, message: String },
    /// The run config is wrong; raised at start-up.
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("storage error: {0}")]
    Storage(String),
    /// A bug on our side; never caused by input.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn describe_issues(issues: &[FieldIssue]) -> String {
    issues.iter().map(|i| format!("{}: {}", i.loc.join("."), i.msg)).collect::<Vec<_>>().join("; ")
}

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidValue(msg.into())
    }

    pub fn not_implemented(msg: impl Into<String>) -> Self {
        Self::NotImplemented(msg.into())
    }

    pub fn config(msg: impl Into<String>) -> Self {
        Self::Config(msg.into())
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        Self::Internal(msg.into())
    }

    pub fn field(loc: &[&str], msg: impl Into<String>, kind: &str) -> Self {
        Self::Validation(vec![FieldIssue {
            loc: loc.iter().map(|s| (*s).to_owned()).collect(),
            msg: msg.into(),
            kind: kind.to_owned(),
        }])
    }

    /// The HTTP status this error answers with.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::InvalidValue(_) | Self::Validation(_) | Self::Config(_) => 400,
            Self::PermissionDenied(_) => 403,
            Self::NotImplemented(_) => 501,
            Self::Upstream { .. } => 502,
            Self::Unavailable { .. } => 503,
            Self::Timeout(_) => 504,
            Self::Io(_) | Self::Storage(_) | Self::Internal(_) => 500,
        }
    }

    /// The text upstream puts in `detail`, prefix included.
    pub fn detail(&self) -> String {
        match self {
            Self::InvalidValue(m) | Self::Config(m) => format!("Invalid value: {m}"),
            Self::PermissionDenied(m) => format!("Permission denied: {m}"),
            Self::NotImplemented(m) => format!("Not implemented: {m}"),
            Self::Timeout(m) => format!("Operation timed out: {m}"),
            other => other.to_string(),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Self::Storage(e.to_string())
    }
}
