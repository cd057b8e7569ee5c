//! `multipart/mixed` bodies, as statements with attachments arrive: any bytes with any
//! boundary parse or fail without panicking, and parts that parse write back into a body that
//! parses into the same parts (whose bodies never contain the delimiter, as parsing found them).
#![no_main]

use learnpulse_server::xapi::multipart;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &[u8])| {
    let (boundary, body) = input;
    let Ok(parts) = multipart::parse(body, boundary) else {
        return;
    };
    let written = multipart::write(&parts, boundary);
    let again = multipart::parse(&written, boundary).expect("a written body parses");
    assert_eq!(again.len(), parts.len());
    for (a, b) in parts.iter().zip(&again) {
        assert_eq!(a.body, b.body);
    }
});
