//! The controllers' error: an API call that failed, or an object the controller cannot act on.

/// A `Result` whose error defaults to the controllers' [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a reconcile step failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("api call failed")]
    Api(#[from] cairn_client::Error),
    /// The object is not one the controller can act on (such as an invalid selector); it is
    /// retried, since the object may be fixed.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// A write lost a race (409 Conflict): retry against a fresher cache.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Api(e) if e.is_conflict())
    }

    /// The message with its causes.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}
