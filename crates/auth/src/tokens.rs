//! etcd's simple tokens: opaque random strings (`<16 letters>.<index>`) mapped to a user, kept in
//! memory only (so a restart invalidates them, as it does etcd's). Each token expires after the
//! TTL (`--auth-token-ttl`) without use; every use starts the TTL again (etcd's
//! `resetSimpleToken`). Deleting a user or changing its password invalidates its tokens;
//! disabling auth invalidates all of them. Time is passed in, in milliseconds, and the random
//! bytes too: this module has no clock and no randomness of its own.

use std::collections::HashMap;

/// The random part of a simple token: letters, as etcd's.
pub const SIMPLE_TOKEN_RANDOM_CHARACTERS: usize = 16;

const TOKEN_LETTERS: &[u8; 52] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

#[derive(Clone, Debug)]
struct Issued {
    user: String,
    expires_at_millis: u64,
}

#[derive(Clone, Debug)]
pub struct SimpleTokens {
    ttl_millis: u64,
    tokens: HashMap<String, Issued>,
}

impl SimpleTokens {
    pub fn new(ttl_millis: u64) -> SimpleTokens {
        SimpleTokens { ttl_millis, tokens: HashMap::new() }
    }

    /// Issues a token for `user`: the random bytes as letters, a dot and `index` (etcd puts the
    /// raft index of the Authenticate there). `None` if that token is taken (draw again).
    pub fn assign(&mut self, random: &[u8; SIMPLE_TOKEN_RANDOM_CHARACTERS], index: u64, user: &str, now_millis: u64) -> Option<String> {
        self.tokens.retain(|_, issued| issued.expires_at_millis > now_millis);
        let letters: String = random.iter().map(|&byte| char::from(TOKEN_LETTERS[usize::from(byte) % TOKEN_LETTERS.len()])).collect();
        let token = format!("{letters}.{index}");
        if self.tokens.contains_key(&token) {
            return None;
        }
        self.tokens.insert(token.clone(), Issued { user: user.to_string(), expires_at_millis: now_millis.saturating_add(self.ttl_millis) });
        Some(token)
    }

    /// The user a live token names, its TTL started again; `None` for an unknown or expired token.
    pub fn user_of(&mut self, token: &str, now_millis: u64) -> Option<String> {
        let issued = self.tokens.get_mut(token)?;
        if issued.expires_at_millis <= now_millis {
            self.tokens.remove(token);
            return None;
        }
        issued.expires_at_millis = now_millis.saturating_add(self.ttl_millis);
        Some(issued.user.clone())
    }

    /// Drops every token of `user` (deleted, or its password changed).
    pub fn invalidate_user(&mut self, user: &str) {
        self.tokens.retain(|_, issued| issued.user != user);
    }

    /// Drops every token (auth disabled).
    pub fn clear(&mut self) {
        self.tokens.clear();
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_after_the_ttl_without_use_and_each_use_extends_them() {
        let mut tokens = SimpleTokens::new(1000);
        let token = tokens.assign(&[0; 16], 7, "alice", 0).unwrap();
        assert_eq!(token, "aaaaaaaaaaaaaaaa.7");
        assert_eq!(tokens.assign(&[0; 16], 7, "bob", 0), None, "a taken token is not issued twice");
        assert_eq!(tokens.user_of(&token, 900).as_deref(), Some("alice"));
        assert_eq!(tokens.user_of(&token, 1800).as_deref(), Some("alice"), "the use at 900 extended it");
        assert_eq!(tokens.user_of(&token, 2800), None);
        assert_eq!(tokens.user_of(&token, 0), None, "an expired token is gone");
        assert_eq!(tokens.user_of("nonsense", 0), None);
    }

    #[test]
    fn users_and_disabling_invalidate_tokens() {
        let mut tokens = SimpleTokens::new(1000);
        let mut random = [1u8; 16];
        let alice = tokens.assign(&random, 1, "alice", 0).unwrap();
        random[0] = 51;
        let bob = tokens.assign(&random, 2, "bob", 0).unwrap();
        assert!(bob.starts_with('Z'));
        tokens.invalidate_user("alice");
        assert_eq!(tokens.user_of(&alice, 1), None);
        assert_eq!(tokens.user_of(&bob, 1).as_deref(), Some("bob"));
        tokens.clear();
        assert!(tokens.is_empty());
    }
}
