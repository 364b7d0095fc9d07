//! The panel's one error type, shared by every layer: the user's mistakes carry a clear
//! message; the panel's own faults (database, engine, internal) are logged with their
//! cause chain and shown as a generic message. `http::error` turns it into responses.

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required: send `Authorization: Bearer <token>`")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Quota(String),
    /// Refused by the reseller's provisioning hooks.
    #[error("{0}")]
    Denied(String),
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("engine: {0}")]
    Engine(acetate_engine::Error),
    #[error("{0}")]
    Internal(String),
    /// A panel restart interrupted the operation.
    #[error("{0}")]
    Interrupted(String),
    /// Too much at once (a per-user or panel-wide bound): 429, try again later.
    #[error("{0}")]
    Busy(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl From<acetate_engine::Error> for AppError {
    fn from(e: acetate_engine::Error) -> Self {
        use acetate_engine::Error as E;
        match e {
            E::NoSuchContainer(_) | E::NoSuchSnapshot(..) | E::NoSuchBackup(_) => {
                AppError::NotFound
            }
            E::TemplateInUse(..) => AppError::Conflict(e.to_string()),
            E::NameTaken(n) => {
                AppError::Conflict(format!("a container named {n:?} already exists"))
            }
            E::AlreadyRunning(_) | E::NotRunning(_) => AppError::Conflict(e.to_string()),
            e if e.is_user_error() => AppError::Unprocessable(e.to_string()),
            e => AppError::Engine(e),
        }
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(e: tokio::task::JoinError) -> Self {
        AppError::Internal(format!("background task failed: {e}"))
    }
}

impl AppError {
    /// The error's code, as in the API's error bodies and stored operations.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::Unprocessable(_) => "invalid",
            AppError::TooLarge(_) => "too_large",
            AppError::Quota(_) => "quota_exceeded",
            AppError::Denied(_) => "denied_by_policy",
            AppError::Busy(_) => "busy",
            AppError::Interrupted(_) => "interrupted",
            AppError::Db(_) | AppError::Engine(_) | AppError::Internal(_) => "internal",
        }
    }

    /// A fault of the panel or the host rather than of the request.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            AppError::Db(_) | AppError::Engine(_) | AppError::Internal(_)
        )
    }

    /// The error with its causes, for the log.
    pub fn chain(&self) -> String {
        let mut chain = self.to_string();
        let mut src = std::error::Error::source(self);
        while let Some(s) = src {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            src = s.source();
        }
        chain
    }

    /// What the user is told: the message for their own mistakes, a generic one for the
    /// panel's (whose cause goes to the log).
    pub fn public_message(&self) -> String {
        if self.is_internal() {
            INTERNAL_MESSAGE.to_string()
        } else {
            self.to_string()
        }
    }

    /// The error a stored code and message stand for (a finished operation's).
    pub fn from_code(code: &str, message: &str) -> AppError {
        let m = message.to_string();
        match code {
            "bad_request" => AppError::BadRequest(m),
            "unauthorized" => AppError::Unauthorized,
            "forbidden" => AppError::Forbidden(m),
            "not_found" => AppError::NotFound,
            "conflict" => AppError::Conflict(m),
            "invalid" => AppError::Unprocessable(m),
            "quota_exceeded" => AppError::Quota(m),
            "denied_by_policy" => AppError::Denied(m),
            "busy" => AppError::Busy(m),
            "interrupted" => AppError::Interrupted(m),
            _ => AppError::Internal(m),
        }
    }
}

/// What users see of an internal error.
pub const INTERNAL_MESSAGE: &str =
    "internal error; the provider can find the cause in the panel's log";
