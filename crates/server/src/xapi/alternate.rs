//! xAPI 1.0.3's alternate request syntax (Communication 1.3), for clients that can only send
//! POST (old browsers, some proxies): `POST /xAPI/statements?method=PUT` with a form body whose
//! fields `Authorization`, `X-Experience-API-Version`, `Content-Type`, `If-Match` and
//! `If-None-Match` are headers, `content` is the body and the rest are query parameters. The
//! request is rewritten into the one it stands for before routing, so the resources see an
//! ordinary request. xAPI 2.0 dropped the syntax: a 2.0 request with `method=` is refused by the
//! resource (`method` is no parameter of it).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::problem::ApiError;

/// Form fields that are headers.
const HEADER_FIELDS: [&str; 6] = [
    "authorization",
    "x-experience-api-version",
    "content-type",
    "content-length",
    "if-match",
    "if-none-match",
];

/// The request an alternate-syntax request stands for.
#[derive(Debug, PartialEq, Eq)]
pub struct Rewritten {
    pub method: Method,
    /// Path and query.
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Rewrites `POST path?method=M` with a form body; `None` when the request does not use the
/// syntax (or names xAPI 2.0, which dropped it).
pub fn rewrite(
    path: &str,
    query: Option<&str>,
    content_type: Option<&str>,
    version_header: Option<&str>,
    body: &[u8],
) -> Option<Result<Rewritten, ApiError>> {
    let query: Vec<(String, String)> = form_urlencoded::parse(query?.as_bytes())
        .into_owned()
        .collect();
    let method = query
        .iter()
        .find(|(k, _)| k == "method")?
        .1
        .to_ascii_uppercase();
    let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let version = form
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-experience-api-version"))
        .map(|(_, v)| v.as_str())
        .or(version_header);
    if version.is_some_and(|v| v.starts_with("2.")) {
        return None;
    }
    Some(build(path, &query, &method, content_type, form))
}

fn build(
    path: &str,
    query: &[(String, String)],
    method: &str,
    content_type: Option<&str>,
    form: Vec<(String, String)>,
) -> Result<Rewritten, ApiError> {
    if query.len() != 1 {
        return Err(ApiError::bad_request(
            "method",
            "with the alternate request syntax, every parameter but method goes in the form body",
        ));
    }
    let method = match method {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        "PUT" => Method::PUT,
        "POST" => Method::POST,
        "DELETE" => Method::DELETE,
        _ => {
            return Err(ApiError::bad_request(
                "method",
                "must be GET, HEAD, PUT, POST or DELETE",
            ));
        }
    };
    if !content_type
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    {
        return Err(ApiError::bad_request(
            "Content-Type",
            "the alternate request syntax sends a form (application/x-www-form-urlencoded)",
        ));
    }
    let mut headers = Vec::new();
    let mut params = form_urlencoded::Serializer::new(String::new());
    let mut body = Vec::new();
    for (name, value) in form {
        let lower = name.to_ascii_lowercase();
        if lower == "content" {
            body = value.into_bytes();
        } else if HEADER_FIELDS.contains(&lower.as_str()) {
            if lower != "content-length" {
                headers.push((lower, value));
            }
        } else {
            params.append_pair(&name, &value);
        }
    }
    if !body.is_empty() && !headers.iter().any(|(k, _)| k == "content-type") {
        headers.push(("content-type".into(), "application/json".into()));
    }
    let params = params.finish();
    let uri = if params.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{params}")
    };
    Ok(Rewritten {
        method,
        uri,
        headers,
        body,
    })
}

/// The middleware, in front of routing: rewrites an alternate-syntax POST to a statements or
/// document resource.
pub async fn alternate_syntax(
    axum::extract::State(body_limit): axum::extract::State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if request.method() != Method::POST
        || !path.starts_with("/xAPI/")
        || !request.uri().query().is_some_and(|q| q.contains("method="))
    {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, body_limit).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is larger than the configured limit (limits.max_body_bytes)",
            )
            .into_response();
        }
    };
    let header_text = |name: HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let rewritten = rewrite(
        &path,
        parts.uri.query(),
        header_text(header::CONTENT_TYPE).as_deref(),
        header_text(HeaderName::from_static("x-experience-api-version")).as_deref(),
        &bytes,
    );
    let rewritten = match rewritten {
        None => {
            return next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
        }
        Some(Err(e)) => return e.into_response(),
        Some(Ok(r)) => r,
    };
    parts.method = rewritten.method;
    parts.uri = match rewritten.uri.parse::<Uri>() {
        Ok(uri) => uri,
        Err(_) => {
            return ApiError::bad_request("method", "the form makes no valid URI").into_response();
        }
    };
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in rewritten.headers {
        match (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(&value),
        ) {
            (Ok(name), Ok(value)) => {
                parts.headers.insert(name, value);
            }
            _ => return ApiError::bad_request(name, "is no valid header value").into_response(),
        }
    }
    next.run(Request::from_parts(parts, Body::from(rewritten.body)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    #[test]
    fn a_put_sent_as_a_post_is_rewritten() {
        let body = b"statementId=ec531277-b57b-4c15-8d91-d292c5b2b8f7&content=%7B%22a%22%3A1%7D\
&X-Experience-API-Version=1.0.3&Authorization=Basic%20abc";
        let r = rewrite("/xAPI/statements", Some("method=PUT"), FORM, None, body)
            .unwrap()
            .unwrap();
        assert_eq!(r.method, Method::PUT);
        assert_eq!(
            r.uri,
            "/xAPI/statements?statementId=ec531277-b57b-4c15-8d91-d292c5b2b8f7"
        );
        assert_eq!(r.body, br#"{"a":1}"#);
        assert!(
            r.headers
                .contains(&("authorization".into(), "Basic abc".into()))
        );
        assert!(
            r.headers
                .contains(&("content-type".into(), "application/json".into()))
        );
    }

    #[test]
    fn what_is_not_the_syntax_passes_and_what_breaks_it_is_refused() {
        assert!(rewrite("/xAPI/statements", Some("limit=1"), FORM, None, b"").is_none());
        assert!(
            rewrite(
                "/xAPI/statements",
                Some("method=GET"),
                FORM,
                Some("2.0.0"),
                b""
            )
            .is_none()
        );
        let extra = rewrite(
            "/xAPI/statements",
            Some("method=PUT&statementId=x"),
            FORM,
            None,
            b"",
        );
        assert!(matches!(extra, Some(Err(_))));
        let not_a_form = rewrite(
            "/xAPI/statements",
            Some("method=PUT"),
            Some("application/json"),
            None,
            b"{}",
        );
        assert!(matches!(not_a_form, Some(Err(_))));
        let get = rewrite(
            "/xAPI/statements",
            Some("method=GET"),
            FORM,
            Some("1.0.3"),
            b"limit=1",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (get.method, get.uri.as_str()),
            (Method::GET, "/xAPI/statements?limit=1")
        );
    }
}
