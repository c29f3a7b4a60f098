//! The one error type that knows Grafana: every stage error becomes a [`QueryError`] with a
//! DataResponse `status` and `errorSource` (protocol.md §2.5, §2.9, §4.4).

use crate::convert::ConvertError;
use crate::fetch::FetchError;
use crate::frame::FrameError;

/// `errorSource` values Grafana understands (protocol.md §2.5 DataResponse field 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorSource {
    /// The plugin itself failed (a bug of ours).
    Plugin,
    /// Something outside the plugin: the upstream API, the datasource settings or the query.
    Downstream,
}

impl ErrorSource {
    /// The wire string, `plugin` or `downstream`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorSource::Plugin => "plugin",
            ErrorSource::Downstream => "downstream",
        }
    }
}

/// Why one query (refId) failed. The message names the rule, field or param and the cause,
/// and never contains a secret (callers mask upstream text).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The datasource settings do not compile (400, downstream: the admin's configuration).
    #[error("datasource settings are invalid: {0}")]
    Settings(String),
    /// The query names an unknown rule, or bad params (400, downstream).
    #[error("{0}")]
    BadQuery(String),
    /// The rule could not be rendered into a request (400, downstream).
    #[error("{0}")]
    Render(String),
    /// The upstream call failed (status from [`FetchError::status`], downstream).
    #[error("{0}")]
    Fetch(FetchError),
    /// The upstream body is not JSON (502, downstream).
    #[error("rule '{rule}': upstream response is not valid JSON: {message}")]
    NotJson {
        /// Rule id.
        rule: String,
        /// Parser message and position.
        message: String,
    },
    /// The response does not fit the rule (502), or the rule forces an impossible shape
    /// (400); downstream either way.
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// Frame encoding failed: a bug of ours (500, plugin).
    #[error("internal error: {0}")]
    Frame(#[from] FrameError),
    /// Any other bug of ours, e.g. a caught panic (500, plugin).
    #[error("internal error: {0}")]
    Internal(String),
    /// The error of a computation this query waited for (identical concurrent queries share
    /// one fetch and conversion): the same status, source and message.
    #[error(transparent)]
    Shared(std::sync::Arc<QueryError>),
}

impl QueryError {
    /// The DataResponse `status` (always within 100..599, protocol.md §2.5).
    pub fn status(&self) -> i32 {
        match self {
            QueryError::Settings(_) | QueryError::BadQuery(_) | QueryError::Render(_) => 400,
            QueryError::Fetch(e) => e.status(),
            QueryError::NotJson { .. } => 502,
            QueryError::Convert(ConvertError::Shape { .. }) => 400,
            QueryError::Convert(_) => 502,
            QueryError::Frame(_) | QueryError::Internal(_) => 500,
            QueryError::Shared(e) => e.status(),
        }
    }

    /// The DataResponse `errorSource` (protocol.md §4.4).
    pub fn source(&self) -> ErrorSource {
        match self {
            QueryError::Frame(_) | QueryError::Internal(_) => ErrorSource::Plugin,
            QueryError::Shared(e) => e.source(),
            _ => ErrorSource::Downstream,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_sources() {
        let cases: Vec<(QueryError, i32, ErrorSource)> = vec![
            (
                QueryError::BadQuery("x".into()),
                400,
                ErrorSource::Downstream,
            ),
            (
                QueryError::Settings("x".into()),
                400,
                ErrorSource::Downstream,
            ),
            (
                QueryError::Fetch(FetchError::Timeout {
                    url: "u".into(),
                    seconds: 1.0,
                }),
                504,
                ErrorSource::Downstream,
            ),
            (
                QueryError::Fetch(FetchError::Status {
                    url: "u".into(),
                    status: 404,
                    body: String::new(),
                }),
                404,
                ErrorSource::Downstream,
            ),
            (
                QueryError::Fetch(FetchError::Status {
                    url: "u".into(),
                    status: 503,
                    body: String::new(),
                }),
                502,
                ErrorSource::Downstream,
            ),
            (
                QueryError::NotJson {
                    rule: "r".into(),
                    message: "m".into(),
                },
                502,
                ErrorSource::Downstream,
            ),
            (QueryError::Internal("x".into()), 500, ErrorSource::Plugin),
            (
                QueryError::Shared(std::sync::Arc::new(QueryError::Internal("x".into()))),
                500,
                ErrorSource::Plugin,
            ),
            (
                QueryError::Shared(std::sync::Arc::new(QueryError::BadQuery("x".into()))),
                400,
                ErrorSource::Downstream,
            ),
        ];
        for (e, status, source) in cases {
            assert_eq!(e.status(), status, "{e}");
            assert_eq!(e.source(), source, "{e}");
        }
    }
}
