//! RFC 9457 problem details: every error the server returns is one of these.
//!
//! A problem names the offending request field in `field` (a JSON path such as
//! `statements[2].actor.mbox`, or a query parameter name) whenever there is one, so that a
//! platform engineer can fix the request without reading server logs.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::storage::StoreError;

/// The JSON body of an error response (`application/problem+json`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request field (JSON path or parameter) at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error a handler returns; rendered as a [`Problem`].
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    pub field: Option<String>,
    /// Extra response headers (e.g. `WWW-Authenticate` on 401).
    pub www_authenticate: bool,
    /// `Retry-After` in seconds (429 and 503 answers).
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
            field: None,
            www_authenticate: false,
            retry_after_secs: None,
        }
    }

    /// 429: this key made more requests than its rate allows; try again in `retry_after_secs`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        ApiError {
            retry_after_secs: Some(retry_after_secs),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "this key's request rate is past limits.requests_per_second_per_key",
            )
        }
    }

    pub fn bad_request(field: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(StatusCode::BAD_REQUEST, detail)
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        ApiError {
            www_authenticate: true,
            ..ApiError::new(StatusCode::UNAUTHORIZED, detail)
        }
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn problem(&self) -> Problem {
        let slug = self
            .status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
            .replace(' ', "-");
        Problem {
            kind: format!("https://learnpulse.dev/problems/{slug}"),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            field: self.field.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        // Unavailable means "not now" (storage unreachable, shutting down): say when to retry.
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        } else if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.www_authenticate {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"learnpulse\", Bearer"),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(id) => ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "statement {id} already exists with different content; statements are immutable"
                ),
            )
            .with_field("id"),
            StoreError::Unavailable(why) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why),
            StoreError::Internal(why) => {
                tracing::error!(error = %why, "storage error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "storage error; see the server log",
                )
            }
        }
    }
}

/// Body extraction that turns every failure into a problem (axum's own rejections are plain
/// text): too large gives 413, unreadable gives 400.
pub struct Body(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(Body(bytes)),
            Err(rejection) => {
                let status = rejection.status();
                let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "the request body is larger than the configured limit (limits.max_body_bytes)"
                        .to_owned()
                } else {
                    rejection.body_text()
                };
                Err(ApiError::new(status, detail))
            }
        }
    }
}

/// Like [`parse_json`], but an empty body means the type's default (optional request bodies).
pub fn parse_json_or_default<T: serde::de::DeserializeOwned + Default>(
    bytes: &[u8],
) -> Result<T, ApiError> {
    // No body, or JSON's null (what an optional body is when a client sends one anyway).
    if bytes.trim_ascii().is_empty() || bytes.trim_ascii() == b"null" {
        Ok(T::default())
    } else {
        parse_json(bytes)
    }
}

/// Path parameters, with a problem naming `path` when they do not parse (axum's own rejection
/// is plain text).
pub struct Path<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|rejection| ApiError::bad_request("path", rejection.body_text()))
    }
}

/// The query string, deserialised with the failing parameter named in the problem (axum's own
/// rejection is plain text and names nothing).
pub struct Query<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or_default()).map(Query)
    }
}

/// Parses a query string into `T`, naming the failing parameter in the error.
pub fn parse_query<T: serde::de::DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." || field.is_empty() {
            "query".to_owned()
        } else {
            field
        };
        ApiError::bad_request(field, e.into_inner().to_string())
    })
}

/// Parses a JSON body into `T`, naming the failing field in the error. Every body of this API
/// is a JSON object: anything else is refused here, before serde would read an array as a
/// struct's fields in order.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::bad_request("body", "must be a JSON object"));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let first = match serde_path_to_error::deserialize(de) {
        Ok(parsed) => return Ok(parsed),
        Err(e) => e,
    };
    // JSON has one kind of number, and JSON Schema calls 3.0 an integer; serde reads a number
    // written with a fraction as a float and refuses it for an integer field. A body that failed
    // is read once more with its whole-number floats made integers (only then: ingest's happy
    // path pays nothing for it).
    if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(bytes)
        && whole_floats_to_integers(&mut value)
    {
        return serde_path_to_error::deserialize(value).map_err(field_problem);
    }
    Err(field_problem(first))
}

fn field_problem<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> ApiError {
    let path = e.path().to_string();
    let field = if path == "." { "body".to_owned() } else { path };
    ApiError::bad_request(field, e.into_inner().to_string())
}

/// Replaces every float without a fraction (within the range floats hold exactly) by the same
/// integer; says whether there was one.
fn whole_floats_to_integers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() <= EXACT => {
                *value = Value::from(f as i64);
                true
            }
            _ => false,
        },
        // `|`, not `||`: every element is visited, not only those up to the first change.
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, v| changed | whole_floats_to_integers(v)),
        Value::Object(fields) => fields
            .values_mut()
            .fold(false, |changed, v| changed | whole_floats_to_integers(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Counts {
        days: u32,
        ratio: f64,
    }

    #[test]
    fn a_whole_number_written_as_a_float_is_an_integer() {
        let parsed: Counts = parse_json(br#"{"days": 30.0, "ratio": 2.0}"#).unwrap();
        assert_eq!(
            parsed,
            Counts {
                days: 30,
                ratio: 2.0
            }
        );
        let refused = parse_json::<Counts>(br#"{"days": 30.5, "ratio": 1}"#).unwrap_err();
        assert_eq!(refused.field.as_deref(), Some("days"));
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        let refused = parse_json::<Counts>(b"[30, 1.0]").unwrap_err();
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert_eq!(refused.field.as_deref(), Some("body"));
    }

    #[test]
    fn unavailable_storage_is_a_503_that_says_when_to_retry() {
        let response = ApiError::from(StoreError::Unavailable("PostgreSQL connection lost".into()))
            .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let ok = ApiError::not_found("x").into_response();
        assert!(ok.headers().get(header::RETRY_AFTER).is_none());
    }
}
