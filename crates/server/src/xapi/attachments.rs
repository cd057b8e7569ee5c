//! Statements with attachments: a `multipart/mixed` request carries the statements as its first
//! part and each attachment's bytes as a further part named by its SHA-256
//! (`X-Experience-API-Hash`). This module splits such a body, holds every attachment a
//! statement declares without a `fileUrl` to a part that carries it (and every part to a
//! statement that declares it), checks signed statements' JWS, and writes the multipart answer
//! of a read with `attachments=true`. Pure apart from nothing: the handlers store and load.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::multipart::{self, Part};
use crate::problem::ApiError;
use crate::storage::attachments::Attachment;

/// The usage type of a statement's signature.
pub const SIGNATURE: &str = "http://adlnet.gov/expapi/attachments/signature";

/// A statements request's body: the statements' JSON and the attachment parts by SHA-256.
pub struct Received<'a> {
    pub json: std::borrow::Cow<'a, [u8]>,
    pub parts: HashMap<String, Attachment>,
}

/// Splits a statements request by its `Content-Type`: JSON (or none: JSON is assumed) is the
/// statements alone; `multipart/mixed` is statements and attachments; anything else is refused.
pub fn receive<'a>(content_type: Option<&str>, body: &'a [u8]) -> Result<Received<'a>, ApiError> {
    let media = content_type
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase());
    match media.as_deref() {
        None | Some("application/json") => {
            return Ok(Received {
                json: body.into(),
                parts: HashMap::new(),
            });
        }
        Some("multipart/mixed") => {}
        Some(other) => {
            return Err(ApiError::bad_request(
                "Content-Type",
                format!("statements are sent as application/json or multipart/mixed, not {other}"),
            ));
        }
    }
    let boundary =
        multipart::mixed_boundary(content_type.unwrap_or_default()).ok_or_else(|| {
            ApiError::bad_request("Content-Type", "multipart/mixed needs a boundary parameter")
        })?;
    let mut parts =
        multipart::parse(body, &boundary).map_err(|e| ApiError::bad_request("body", e))?;
    if parts.is_empty() {
        return Err(ApiError::bad_request(
            "body",
            "the multipart body has no parts",
        ));
    }
    let statements = parts.remove(0);
    if !statements
        .header("content-type")
        .is_some_and(super::documents::rules::is_json)
    {
        return Err(ApiError::bad_request(
            "body",
            "the first part of a multipart/mixed request must be the statements (application/json)",
        ));
    }
    let mut attachments = HashMap::new();
    for (i, part) in parts.into_iter().enumerate() {
        let sha2 = checked_hash(&part, i + 1)?;
        attachments.insert(sha2.clone(), attachment(part, sha2));
    }
    Ok(Received {
        json: statements.body.into(),
        parts: attachments,
    })
}

/// The part's declared SHA-256, which must be that of its bytes.
fn checked_hash(part: &Part, index: usize) -> Result<String, ApiError> {
    let field = format!("part {index}");
    let declared = part
        .header("x-experience-api-hash")
        .ok_or_else(|| {
            ApiError::bad_request(&field, "an attachment part needs X-Experience-API-Hash")
        })?
        .to_ascii_lowercase();
    if let Some(encoding) = part.header("content-transfer-encoding")
        && !encoding.eq_ignore_ascii_case("binary")
    {
        return Err(ApiError::bad_request(
            &field,
            "attachment parts are sent with Content-Transfer-Encoding: binary",
        ));
    }
    if hex::encode(Sha256::digest(&part.body)) != declared {
        return Err(ApiError::bad_request(
            &field,
            "X-Experience-API-Hash is not the SHA-256 of the part",
        ));
    }
    Ok(declared)
}

/// A part as an attachment, under the hash [`checked_hash`] found for it.
fn attachment(part: Part, sha2: String) -> Attachment {
    let content_type = part
        .header("content-type")
        .unwrap_or("application/octet-stream")
        .to_owned();
    Attachment {
        sha2,
        content_type,
        body: part.body,
    }
}

/// Holds the statements' declared attachments to the received parts: every attachment without
/// a `fileUrl` must have its part, every part must be declared, and a signature must be a JWS
/// of its statement. Returns, per statement (by index), the parts it declares.
pub fn match_parts(
    statements: &[Value],
    path: impl Fn(usize) -> String,
    mut parts: HashMap<String, Attachment>,
) -> Result<Vec<(usize, Attachment)>, ApiError> {
    let mut matched = Vec::new();
    let mut used: Vec<String> = Vec::new();
    for (i, statement) in statements.iter().enumerate() {
        let Some(Value::Array(declared)) = statement.get("attachments") else {
            continue;
        };
        for (j, a) in declared.iter().enumerate() {
            let field = format!("{}.attachments[{j}]", path(i));
            let sha2 = a["sha2"].as_str().unwrap_or_default().to_ascii_lowercase();
            let is_signature = a["usageType"].as_str() == Some(SIGNATURE);
            if is_signature {
                if a["contentType"].as_str() != Some("application/octet-stream") {
                    return Err(ApiError::bad_request(
                        format!("{field}.contentType"),
                        "a signature is application/octet-stream",
                    ));
                }
                let part = parts.get(&sha2).ok_or_else(|| {
                    ApiError::bad_request(&field, "the signature's part is missing")
                })?;
                check_signature(statement, &part.body)
                    .map_err(|e| ApiError::bad_request(&field, e))?;
            }
            if a.get("fileUrl").is_some() && !parts.contains_key(&sha2) {
                continue;
            }
            match parts.get(&sha2) {
                Some(part) => {
                    matched.push((i, part.clone()));
                    used.push(sha2);
                }
                None => {
                    return Err(ApiError::bad_request(
                        format!("{field}.sha2"),
                        "no part of the request carries this attachment, and it has no fileUrl",
                    ));
                }
            }
        }
    }
    parts.retain(|sha2, _| !used.contains(sha2));
    if let Some(extra) = parts.keys().next() {
        return Err(ApiError::bad_request(
            "body",
            format!("a part ({extra}) is no attachment of any statement"),
        ));
    }
    Ok(matched)
}

/// A signature is a JWS (compact serialisation) with an RSA algorithm whose payload is the
/// statement as it was signed: the same statement, compared by the specification's rules,
/// without its attachments. (The LRS holds no key to check the RSA signature itself against.)
pub fn check_signature(statement: &Value, jws: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(jws).map_err(|_| "the signature is not a JWS")?;
    let mut segments = text.trim().split('.');
    let (Some(header), Some(payload), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err("the signature is not a JWS (three base64url segments)".into());
    };
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s.trim_end_matches('='));
    let header: Value = decode(header)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("the JWS header is not base64url JSON")?;
    match header["alg"].as_str() {
        Some("RS256" | "RS384" | "RS512") => {}
        _ => return Err("a statement signature uses RS256, RS384 or RS512".into()),
    }
    if decode(signature).map_or(true, |s| s.is_empty()) {
        return Err("the JWS has no signature".into());
    }
    let signed: Value = decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("the JWS payload is not the JSON of a statement")?;
    let without_attachments = |v: &Value| {
        let mut v = v.clone();
        if let Some(map) = v.as_object_mut() {
            map.remove("attachments");
        }
        super::prepare::fingerprint(&v)
    };
    if without_attachments(&signed) != without_attachments(statement) {
        return Err("the JWS payload is not this statement".into());
    }
    Ok(())
}

/// The hashes of the attachments these statements (JSON texts) declare, in order, once each.
pub fn declared_hashes(statements: &[Value]) -> Vec<String> {
    let mut hashes: Vec<String> = Vec::new();
    for s in statements {
        if let Some(Value::Array(declared)) = s.get("attachments") {
            for a in declared {
                if let Some(h) = a["sha2"].as_str()
                    && !hashes.iter().any(|k| k == h)
                {
                    hashes.push(h.to_owned());
                }
            }
        }
    }
    hashes
}

/// A statement read with `attachments=true`: the JSON answer, then each attachment's bytes.
pub fn multipart_answer(json: String, attachments: Vec<Attachment>) -> (String, Vec<u8>) {
    let boundary = format!("learnpulse-{}", uuid::Uuid::new_v4().simple());
    let mut parts = vec![Part {
        headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
        body: json.into_bytes(),
    }];
    for a in attachments {
        parts.push(Part {
            headers: vec![
                ("Content-Type".to_owned(), a.content_type),
                ("Content-Transfer-Encoding".to_owned(), "binary".to_owned()),
                ("X-Experience-API-Hash".to_owned(), a.sha2),
            ],
            body: a.body,
        });
    }
    let body = multipart::write(&parts, &boundary);
    (format!("multipart/mixed; boundary={boundary}"), body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jws(alg: &str, payload: &Value) -> String {
        let enc = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.{}",
            enc(json!({"alg": alg}).to_string().as_bytes()),
            enc(payload.to_string().as_bytes()),
            enc(b"signature bytes")
        )
    }

    fn statement() -> Value {
        json!({"actor": {"mbox": "mailto:a@b.org"}, "verb": {"id": "http://v/x"},
               "object": {"id": "http://a/1"}})
    }

    #[test]
    fn a_signature_names_an_rsa_algorithm_and_its_statement() {
        let s = statement();
        let mut signed = s.clone();
        signed["attachments"] = json!([{"usageType": SIGNATURE}]);
        check_signature(&signed, jws("RS384", &s).as_bytes()).unwrap();
        assert!(check_signature(&signed, jws("HS256", &s).as_bytes()).is_err());
        let mut other = s.clone();
        other["verb"]["id"] = json!("http://v/y");
        assert!(check_signature(&signed, jws("RS256", &other).as_bytes()).is_err());
        assert!(check_signature(&signed, b"not a jws").is_err());
    }

    #[test]
    fn parts_and_declarations_must_match() {
        let bytes = b"hello".to_vec();
        let sha2 = hex::encode(Sha256::digest(&bytes));
        let part = Attachment {
            sha2: sha2.clone(),
            content_type: "text/plain".into(),
            body: bytes,
        };
        let mut s = statement();
        s["attachments"] =
            json!([{"usageType": "http://u", "contentType": "text/plain", "sha2": sha2}]);
        let path = |i: usize| format!("statements[{i}]");
        let parts = HashMap::from([(sha2.clone(), part.clone())]);
        assert_eq!(
            match_parts(&[s.clone()], path, parts.clone()).unwrap(),
            vec![(0, part)]
        );
        assert!(
            match_parts(&[s.clone()], path, HashMap::new()).is_err(),
            "a missing part"
        );
        assert!(
            match_parts(&[statement()], path, parts).is_err(),
            "an undeclared part"
        );
    }

    #[test]
    fn a_body_is_received_by_its_type() {
        assert!(receive(Some("text/plain"), b"{}").is_err());
        assert!(receive(Some("multipart/form-data; boundary=x"), b"").is_err());
        assert_eq!(&*receive(None, b"[]").unwrap().json, b"[]");
        let hash = hex::encode(Sha256::digest(b"abc"));
        let body = format!(
            "--b\r\nContent-Type: application/json\r\n\r\n[]\r\n--b\r\nContent-Type: text/plain\r\n\
X-Experience-API-Hash: {hash}\r\n\r\nabc\r\n--b--"
        );
        let r = receive(Some("multipart/mixed; boundary=b"), body.as_bytes()).unwrap();
        assert_eq!(&*r.json, b"[]");
        assert_eq!(r.parts[&hash].body, b"abc");
        let wrong = body.replace("\r\nabc\r\n", "\r\nabd\r\n");
        assert!(receive(Some("multipart/mixed; boundary=b"), wrong.as_bytes()).is_err());
    }
}
