//! Request bodies, queries and the `Idempotency-Key` header, with their rejections as
//! problems.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use ivrpay_card::IdempotencyKey;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body; a bad one is a 400 (syntax), 415 (content type) or 422 (shape).
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::unprocessable(
                "validation-error",
                format!("the body does not fit: {}", e.body_text()),
            )),
            Err(JsonRejection::JsonSyntaxError(_)) => {
                Err(ApiError::bad_request("the body is not valid JSON"))
            }
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::unsupported_media_type(
                "send the body as Content-Type: application/json",
            )),
            Err(other) => Err(ApiError::bad_request(other.body_text())),
        }
    }
}

/// A query string; a bad one is a 422.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::unprocessable(
                "validation-error",
                format!("query: {}", e.body_text()),
            )),
            Err(other) => Err(ApiError::bad_request(other.body_text())),
        }
    }
}

/// The request's `Idempotency-Key` (required on every POST; the idempotency layer has
/// checked it before the handler runs).
#[derive(Debug)]
pub(crate) struct IdemKey(pub(crate) IdempotencyKey);

impl<S: Send + Sync> FromRequestParts<S> for IdemKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        crate::idempotency::key_of(&parts.headers).map(IdemKey)
    }
}
