//! `multipart/mixed` bodies (RFC 2046), as xAPI sends statements with their attachments: the
//! first part is the statements (JSON), each further part one attachment's raw bytes, named by
//! its SHA-256 in `X-Experience-API-Hash`. Pure: parsing a buffered body and writing one.

/// One part: its headers (as sent, in order) and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Part {
    /// The first header of this name (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The boundary of a `multipart/mixed` content type, `None` for any other type.
pub fn mixed_boundary(content_type: &str) -> Option<String> {
    let mut pieces = content_type.split(';');
    let media = pieces.next()?.trim();
    if !media.eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }
    pieces.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// Splits a body into its parts. Anything before the first delimiter (the preamble) and after
/// the closing one (the epilogue) is ignored; a body without its closing delimiter, or a part
/// without the blank line that ends its headers, is an error.
pub fn parse(body: &[u8], boundary: &str) -> Result<Vec<Part>, String> {
    if boundary.is_empty() || boundary.len() > 70 {
        return Err("the multipart boundary must be 1 to 70 characters".into());
    }
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut rest = match find(body, delimiter) {
        Some(i) => &body[i + delimiter.len()..],
        None => return Err("the body has no multipart boundary".into()),
    };
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // The rest of the delimiter line (transport padding), then the part.
        let line_end = find(rest, b"\r\n").ok_or("a multipart delimiter line does not end")?;
        rest = &rest[line_end + 2..];
        let mut next_delimiter = Vec::with_capacity(delimiter.len() + 2);
        next_delimiter.extend_from_slice(b"\r\n");
        next_delimiter.extend_from_slice(delimiter);
        let end = find(rest, &next_delimiter).ok_or("the multipart body does not close")?;
        parts.push(part(&rest[..end], boundary)?);
        rest = &rest[end + next_delimiter.len()..];
    }
}

fn part(bytes: &[u8], boundary: &str) -> Result<Part, String> {
    let (head, body) = if bytes.starts_with(b"\r\n") {
        (&bytes[..0], &bytes[2..])
    } else {
        let split = find(bytes, b"\r\n\r\n").ok_or("a multipart part has no end of headers")?;
        (&bytes[..split], &bytes[split + 4..])
    };
    let head = std::str::from_utf8(head).map_err(|_| "multipart headers must be text")?;
    let mut headers = Vec::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("a multipart header line has no name: {line:?}"))?;
        let name = name.trim();
        // A line that starts with the delimiter can only be one (RFC 2046): as a header it
        // would make the part mean something else to the next reader.
        if name
            .strip_prefix("--")
            .is_some_and(|n| n.starts_with(boundary))
        {
            return Err("a part's headers contain its boundary".into());
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(Part {
        headers,
        body: body.to_vec(),
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Writes parts as a `multipart/mixed` body with this boundary.
pub fn write(parts: &[Part], boundary: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        for (name, value) in &part.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&part.body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_parses_into_its_parts_and_writes_back() {
        let body = b"preamble\r\n--abc\r\nContent-Type: application/json\r\n\r\n[{\"a\":1}]\r\n--abc\r\n\
Content-Type: text/plain\r\nX-Experience-API-Hash: 00ff\r\n\r\nhello\r\nworld\r\n--abc--\r\nepilogue";
        let parts = parse(body, "abc").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].header("content-type"), Some("application/json"));
        assert_eq!(parts[0].body, b"[{\"a\":1}]");
        assert_eq!(parts[1].header("x-experience-api-hash"), Some("00ff"));
        assert_eq!(parts[1].body, b"hello\r\nworld");
        assert_eq!(parse(&write(&parts, "xyz"), "xyz").unwrap(), parts);
    }

    #[test]
    fn a_header_that_starts_with_the_delimiter_is_refused() {
        // Found by the fuzz target: written back, such a header would be a delimiter.
        let body = b"--q\r\nA: 1\r\n --q&q: x\r\n\r\nbody\r\n--q--";
        assert!(parse(body, "q").is_err());
    }

    #[test]
    fn header_names_keep_their_case_and_order() {
        // Found by the fuzz target: "--Q…" lowercased to "--q…" became a delimiter.
        let body = b"--q\r\nB: 1\r\n--Qx: 2\r\n\r\nbody\r\n--q--";
        let parts = parse(body, "q").unwrap();
        assert_eq!(
            parts[0].headers,
            [("B".into(), "1".into()), ("--Qx".into(), "2".into())]
        );
        assert_eq!(parts[0].header("b"), Some("1"));
        assert_eq!(parse(&write(&parts, "q"), "q").unwrap(), parts);
    }

    #[test]
    fn broken_bodies_are_errors() {
        assert!(parse(b"no boundary here", "abc").is_err());
        assert!(parse(b"--abc\r\nContent-Type: a\r\n\r\nunclosed", "abc").is_err());
        assert!(parse(b"--abc\r\nno blank line\r\n--abc--", "abc").is_err());
        assert!(parse(b"--abc--", "").is_err());
    }

    #[test]
    fn only_mixed_types_have_a_boundary_here() {
        assert_eq!(
            mixed_boundary("multipart/mixed; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(mixed_boundary("multipart/form-data; boundary=x"), None);
        assert_eq!(mixed_boundary("application/json"), None);
    }
}
