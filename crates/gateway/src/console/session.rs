//! Console sessions, held by the server: a random id (never the key) maps to the client who
//! signed in, its CSRF token and its expiry. Time is passed in, so expiry is tested without
//! waiting. Ids are stored only as their SHA-256: the map's lookups never compare a secret.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::token::{self, NoRandomness};
use crate::clients::Client;

/// At most this many live sessions: a flood of sign-ins cannot grow memory without bound (the
/// oldest session is ended first).
const MAX_SESSIONS: usize = 10_000;

/// A signed-in operator, as a page sees it.
#[derive(Clone)]
pub struct Session {
    pub client: Arc<Client>,
    /// The token every state-changing form of this session must carry.
    pub csrf: String,
    pub expires_at: Instant,
}

/// A new session: the id goes into the cookie, the session stays here.
pub struct Opened {
    pub id: String,
    pub session: Session,
}

pub struct Sessions {
    lifetime: Duration,
    live: Mutex<HashMap<[u8; 32], Session>>,
}

// By hand: a session's id and CSRF token are secrets, never printed (nor the client's key hash).
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("client", &self.client.name)
            .field("csrf", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened").field("id", &"[REDACTED]").field("session", &self.session).finish()
    }
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let live = self.live.lock().map_or(0, |l| l.len());
        f.debug_struct("Sessions").field("lifetime", &self.lifetime).field("live", &live).finish()
    }
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    pub fn new(lifetime: Duration) -> Self {
        Self { lifetime, live: Mutex::default() }
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Open a session for `client` at `now`.
    pub fn open(&self, client: Arc<Client>, now: Instant) -> Result<Opened, NoRandomness> {
        let id = token::fresh()?;
        let session = Session { client, csrf: token::fresh()?, expires_at: now + self.lifetime };
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if live.len() >= MAX_SESSIONS {
            live.retain(|_, s| s.expires_at > now);
        }
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live.iter().min_by_key(|(_, s)| s.expires_at).map(|(k, _)| *k)
        {
            live.remove(&oldest);
        }
        live.insert(key(&id), session.clone());
        Ok(Opened { id, session })
    }

    /// The session `id` names, if it is live at `now` (an expired one is ended here).
    pub fn get(&self, id: &str, now: Instant) -> Option<Session> {
        let k = key(id);
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        match live.get(&k) {
            Some(s) if s.expires_at > now => Some(s.clone()),
            Some(_) => {
                live.remove(&k);
                None
            }
            None => None,
        }
    }

    /// End the session `id` (sign-out): its cookie opens nothing from now on.
    pub fn end(&self, id: &str) {
        self.live.lock().unwrap_or_else(PoisonError::into_inner).remove(&key(id));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.live.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::Clients;

    fn client() -> Arc<Client> {
        let settings = crate::Settings::load_with_env(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config"),
            Some(std::collections::HashMap::from([(
                "CANCELGATE__LEDGER__URL".to_owned(),
                "sqlite::memory:".to_owned(),
            )])),
        )
        .unwrap();
        Clients::from_settings(&settings).authenticate(crate::clients::DEMO_KEY).unwrap()
    }

    #[test]
    fn a_session_lives_eight_hours_then_is_gone() {
        let sessions = Sessions::new(Duration::from_secs(8 * 3600));
        let t0 = Instant::now();
        let opened = sessions.open(client(), t0).unwrap();
        assert_ne!(opened.id, opened.session.csrf);
        assert_eq!(opened.id.len(), 64, "256 bits");
        let almost = t0 + Duration::from_secs(8 * 3600 - 1);
        assert_eq!(sessions.get(&opened.id, almost).unwrap().csrf, opened.session.csrf);
        assert!(sessions.get(&opened.id, t0 + Duration::from_secs(8 * 3600)).is_none());
        assert_eq!(sessions.len(), 0, "an expired session is dropped");
    }

    #[test]
    fn sign_out_ends_the_session_and_unknown_ids_open_nothing() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let now = Instant::now();
        let a = sessions.open(client(), now).unwrap();
        let b = sessions.open(client(), now).unwrap();
        assert!(sessions.get("nope", now).is_none());
        assert!(sessions.get(&a.session.csrf, now).is_none(), "the CSRF token is not a session id");
        let shown = format!("{sessions:?} {a:?}");
        assert!(!shown.contains(&a.id) && !shown.contains(&a.session.csrf), "{shown}");
        sessions.end(&a.id);
        assert!(sessions.get(&a.id, now).is_none());
        assert!(sessions.get(&b.id, now).is_some(), "other sessions stay");
    }
}
