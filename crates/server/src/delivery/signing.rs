//! Standard Webhooks signing (<https://www.standardwebhooks.com>): the signed content is
//! `{webhook-id}.{webhook-timestamp}.{body}`, the signature `v1,` + base64 of its HMAC-SHA-256
//! under the secret's bytes (the base64 after `whsec_`). During a secret rotation a message is
//! signed with every live secret, space-separated, so receivers on either secret accept it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use learnpulse_privacy::pseudonym::hmac_sha256;

const PREFIX: &str = "whsec_";

/// A new random secret, `whsec_` + base64 of 32 bytes.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{PREFIX}{}", STANDARD.encode(bytes))
}

/// The key bytes of a `whsec_` secret.
pub fn secret_bytes(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(PREFIX)?).ok()
}

/// The headers of one delivery attempt: (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
pub fn headers(
    secrets: &[String],
    msg_id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> (String, String, String) {
    let mut content = format!("{msg_id}.{timestamp_secs}.").into_bytes();
    content.extend_from_slice(body);
    let signatures: Vec<String> = secrets
        .iter()
        .filter_map(|s| secret_bytes(s))
        .map(|key| format!("v1,{}", STANDARD.encode(hmac_sha256(&key, &content))))
        .collect();
    (
        msg_id.to_owned(),
        timestamp_secs.to_string(),
        signatures.join(" "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn matches_the_specification_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned();
        let body = br#"{"test": 2432232314}"#;
        let (_, _, signature) =
            headers(&[secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn rotation_signs_with_every_live_secret() {
        let (old, new) = (new_secret(), new_secret());
        let (_, _, both) = headers(&[old, new], "msg_1", 1, b"{}");
        assert_eq!(both.split(' ').count(), 2);
        assert!(both.split(' ').all(|s| s.starts_with("v1,")));
    }
}
