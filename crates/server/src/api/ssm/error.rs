//! Errors on the wire as botocore reads them (spec §1.7): HTTP 400 (500
//! for `InternalServerError`), `{"__type": code, "message": text}`. The
//! code picks the client's exception class, so each one is chosen per
//! operation: the native services' errors are translated here, with the
//! code an SSM client expects for that operation.

use super::model::Invalid;
use crate::api::error::ApiError;
use crate::services::Caller;
use crate::sigv4::SigError;
use axum::http::StatusCode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsmError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl SsmError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> SsmError {
        SsmError {
            status,
            code,
            message: message.into(),
        }
    }

    /// A client error (400) with `code`.
    pub fn client(code: &'static str, message: impl Into<String>) -> SsmError {
        SsmError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn validation(message: impl Into<String>) -> SsmError {
        SsmError::client("ValidationException", message)
    }

    pub fn serialization(message: impl Into<String>) -> SsmError {
        SsmError::client("SerializationException", message)
    }

    pub fn from_invalid(e: Invalid) -> SsmError {
        match e {
            Invalid::Type(m) => SsmError::serialization(m),
            c @ Invalid::Constraints(_) => SsmError::validation(c.message()),
        }
    }

    pub fn from_sig(e: SigError) -> SsmError {
        SsmError::client(e.code(), e.to_string())
    }

    pub fn unrecognized_client() -> SsmError {
        SsmError::client(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    }

    pub fn unknown_operation(target: &str) -> SsmError {
        SsmError::client(
            "UnknownOperationException",
            if target.is_empty() {
                "Missing X-Amz-Target header: expected AmazonSSM.<Operation>".to_string()
            } else {
                format!("Unknown operation {target}")
            },
        )
    }

    /// An operation of the SSM model that this server does not serve yet.
    pub fn unsupported_operation(op: &str) -> SsmError {
        SsmError::client(
            "UnknownOperationException",
            format!("Operation {op} is not supported by this Patchfleet server yet"),
        )
    }

    pub fn access_denied(caller: &Caller, op: &str) -> SsmError {
        SsmError::client(
            "AccessDeniedException",
            format!(
                "User: {} is not authorized to perform: ssm:{op} (the {} role may not)",
                caller.actor,
                caller.role.as_str()
            ),
        )
    }

    pub fn internal(e: impl std::fmt::Display) -> SsmError {
        tracing::error!("internal error in the SSM API: {e}");
        SsmError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "The server failed to complete the request; see its log.",
        )
    }

    pub fn invalid_next_token() -> SsmError {
        SsmError::client("InvalidNextToken", "The specified token is not valid.")
    }

    pub fn invalid_filter(message: impl Into<String>) -> SsmError {
        SsmError::client("InvalidFilter", message)
    }

    /// A native service's error, with `not_found` the code this operation
    /// answers for a missing object. Validation messages of the services
    /// are already in AWS's words where they come from `core`.
    pub fn from_api(e: ApiError, not_found: &'static str) -> SsmError {
        let code = match (e.status, e.code) {
            (_, "InternalError") => return SsmError::internal(e.message),
            (StatusCode::FORBIDDEN, _) => "AccessDeniedException",
            (StatusCode::UNAUTHORIZED, _) => "UnrecognizedClientException",
            (StatusCode::NOT_FOUND, _) => not_found,
            (_, "AlreadyExists") => "AlreadyExistsException",
            (_, "Conflict") => "TooManyUpdates",
            (_, "ResourceInUse") => "ResourceInUseException",
            (_, "ReadOnly") => "InvalidResourceId",
            (_, "IdempotentParameterMismatch") => "IdempotentParameterMismatch",
            (_, "InvalidActivation" | "ExpiredActivation" | "ActivationLimitReached") => {
                "InvalidActivation"
            }
            // Run Command's services answer in SSM's own codes already.
            (
                _,
                c @ ("InvalidDocument"
                | "InvalidParameters"
                | "InvalidInstanceId"
                | "InvalidTarget"
                | "InvalidOutputFolder"
                | "InvalidCommandId"
                | "InvocationDoesNotExist"),
            ) => c,
            _ => "ValidationException",
        };
        SsmError::client(code, e.message)
    }
}

/// [`SsmError::from_api`], with the "not found" case worded by `message`
/// (AWS names the missing object in its own words).
pub fn not_found_as(
    code: &'static str,
    message: impl Fn() -> String,
) -> impl Fn(ApiError) -> SsmError {
    move |e| {
        let mut e = SsmError::from_api(e, code);
        if e.code == code {
            e.message = message();
        }
        e
    }
}

impl From<crate::store::StoreError> for SsmError {
    fn from(e: crate::store::StoreError) -> SsmError {
        SsmError::from_api(e.into(), "DoesNotExistException")
    }
}
