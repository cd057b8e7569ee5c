//! Browser sessions for the dashboard: an API key exchanged for an HttpOnly cookie.
//!
//! A teacher does not paste bearer tokens into a browser. Either they type their key once on the
//! sign-in page, or the platform that knows them (the LMS) asks `POST /v1/sign-in-links` with
//! their key and sends them to the one-time link it gets back. Both end in a session cookie.
//!
//! The cookie is the session: `{key id, CSRF token, expiry}` sealed under the master key
//! (ChaCha20-Poly1305), so any node of a cluster can read it and nothing needs storing. Each
//! request with it is checked like a bearer key (revoked or expired keys end their sessions at
//! once) and acts with the key's role and groups: the permission table is the API's. Requests
//! that change something must also carry the CSRF token in `X-CSRF-Token` (the page reads it
//! from `GET /ui/session`; another site can neither read it nor, with `SameSite=Strict`, send the
//! cookie). Signing out forgets the session in this process; elsewhere it lasts until it expires
//! (eight hours), which is why sessions are short.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::privacy::seal::Sealer;
use crate::storage::now_us;

/// The session cookie's name.
pub const COOKIE: &str = "lp_session";
/// How long a session lasts.
pub const SESSION_US: i64 = 8 * 3600 * 1_000_000;
/// How long a sign-in link may wait to be used.
pub const LINK_US: i64 = 15 * 60 * 1_000_000;

const SESSION_OWNER: &[u8] = b"learnpulse/dashboard/session";
const LINK_OWNER: &[u8] = b"learnpulse/dashboard/sign-in-link";

/// What a session cookie holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Session {
    #[serde(rename = "k")]
    pub key_id: String,
    /// The token every changing request must repeat in `X-CSRF-Token`.
    #[serde(rename = "c")]
    pub csrf: String,
    #[serde(rename = "e")]
    pub expires_us: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Link {
    #[serde(rename = "k")]
    key_id: String,
    #[serde(rename = "n")]
    nonce: String,
    #[serde(rename = "e")]
    expires_us: i64,
}

/// Seals and opens sessions and sign-in links; remembers used links and ended sessions.
pub struct Sessions {
    sealer: Sealer,
    /// Link nonces used, with their expiry (a link works once).
    used_links: Mutex<HashMap<String, i64>>,
    /// CSRF tokens of sessions signed out here, with their expiry.
    ended: Mutex<HashMap<String, i64>>,
}

fn random_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .ok()
}

/// Removes entries past their expiry, then inserts `key`; false if it was there already.
fn remember_once(set: &Mutex<HashMap<String, i64>>, key: &str, expires_us: i64) -> bool {
    let mut set = set.lock().unwrap();
    let now = now_us();
    set.retain(|_, until| *until > now);
    set.insert(key.to_owned(), expires_us).is_none()
}

impl Sessions {
    pub fn new(master: Sealer) -> Sessions {
        Sessions {
            sealer: master,
            used_links: Mutex::new(HashMap::new()),
            ended: Mutex::new(HashMap::new()),
        }
    }

    /// A new session for `key_id`, and the cookie value that carries it.
    pub fn start(&self, key_id: &str) -> (Session, String) {
        let session = Session {
            key_id: key_id.to_owned(),
            csrf: random_token(),
            expires_us: now_us() + SESSION_US,
        };
        let plain = serde_json::to_vec(&session).expect("sessions serialise");
        let value = encode(&self.sealer.seal(SESSION_OWNER, &plain));
        (session, value)
    }

    /// The session a cookie value carries, if it is genuine, unexpired and not signed out.
    pub fn open(&self, value: &str) -> Option<Session> {
        let plain = self.sealer.open(SESSION_OWNER, &decode(value)?).ok()?;
        let session: Session = serde_json::from_slice(&plain).ok()?;
        let ended = self.ended.lock().unwrap().contains_key(&session.csrf);
        (session.expires_us > now_us() && !ended).then_some(session)
    }

    /// Signs a session out in this process.
    pub fn end(&self, session: &Session) {
        remember_once(&self.ended, &session.csrf, session.expires_us);
    }

    /// A one-time sign-in link's token for `key_id`, and when it expires.
    pub fn link(&self, key_id: &str) -> (String, i64) {
        let link = Link {
            key_id: key_id.to_owned(),
            nonce: random_token(),
            expires_us: now_us() + LINK_US,
        };
        let plain = serde_json::to_vec(&link).expect("links serialise");
        (
            encode(&self.sealer.seal(LINK_OWNER, &plain)),
            link.expires_us,
        )
    }

    /// The key a sign-in link names, using the link up (a second use gets `None`).
    pub fn redeem(&self, token: &str) -> Option<String> {
        let plain = self.sealer.open(LINK_OWNER, &decode(token)?).ok()?;
        let link: Link = serde_json::from_slice(&plain).ok()?;
        (link.expires_us > now_us()
            && remember_once(&self.used_links, &link.nonce, link.expires_us))
        .then_some(link.key_id)
    }
}

/// The session cookie's value in a request's headers, if it carries one.
pub fn from_headers(headers: &axum::http::HeaderMap) -> Option<&str> {
    let header = headers.get(axum::http::header::COOKIE)?.to_str().ok()?;
    cookie(header, COOKIE)
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions() -> Sessions {
        Sessions::new(Sealer::new(&[9; 32]))
    }

    #[test]
    fn a_session_opens_only_unaltered_and_until_signed_out() {
        let s = sessions();
        let (session, value) = s.start("lpk_1");
        assert_eq!(s.open(&value), Some(session.clone()));
        let mut forged = value.clone().into_bytes();
        forged[10] ^= 1;
        assert_eq!(s.open(&String::from_utf8(forged).unwrap()), None);
        let elsewhere = Sessions::new(Sealer::new(&[8; 32]));
        assert_eq!(elsewhere.open(&value), None, "another master key");
        s.end(&session);
        assert_eq!(s.open(&value), None);
    }

    #[test]
    fn a_link_works_once_and_is_no_session() {
        let s = sessions();
        let (token, _) = s.link("lpk_2");
        assert_eq!(s.open(&token), None, "a link is not a session");
        assert_eq!(s.redeem(&token).as_deref(), Some("lpk_2"));
        assert_eq!(s.redeem(&token), None);
    }

    #[test]
    fn cookies_are_found_by_name() {
        let h = "theme=dark; lp_session=abc.def; other=1";
        assert_eq!(cookie(h, COOKIE), Some("abc.def"));
        assert_eq!(cookie(h, "missing"), None);
    }
}
