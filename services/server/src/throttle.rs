//! Failed token checks, per client address and presented token. After
//! [`AuthFailures::LIMIT`] failures of one key within [`AuthFailures::WINDOW`],
//! further failing tokens of that key are answered 429 until its window ends.
//!
//! A key is the client address with the presented token's public id, or the
//! address alone for a bearer value that is not shaped like a token at all.
//! So a client that guesses never locks out anybody else, not even another
//! client behind the same proxy, and a valid token is never refused: the
//! middleware checks the token first and consults the throttle only for one
//! that fails. (Guessing a 256-bit secret is hopeless anyway; the throttle
//! tells a guesser to stop and keeps the failures from being answered as if
//! nothing happened.) A request without any token is not a guess.
//!
//! The memory is bounded: keys live in two generations of at most
//! [`MAX_KEYS`] each. The current one takes new failures; every
//! [`AuthFailures::WINDOW`], or when it is full, it becomes the previous one
//! and the previous one is dropped (outside the lock). A key found in the
//! previous generation moves to the current one, so a key that keeps failing
//! is never forgotten while it is blocked; only a flood of more than
//! [`MAX_KEYS`] distinct failing keys within one window can make the throttle
//! forget a blocked key early, which lets that guesser try again.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Keys per generation.
const MAX_KEYS: usize = 50_000;

/// What a failing request presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Presented {
    /// A bearer value that is not shaped like a pilotgate token.
    Malformed,
    /// A well-formed token with this public id (12 hex digits, as a number).
    Token(u64),
}

impl Presented {
    /// The key of a token's public id (12 hex digits); `Malformed` if it is not one.
    pub fn token(token_id: &str) -> Presented {
        u64::from_str_radix(token_id, 16).map_or(Presented::Malformed, Presented::Token)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    client: IpAddr,
    presented: Presented,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

#[derive(Debug)]
struct Generations {
    current: HashMap<Key, Window>,
    previous: HashMap<Key, Window>,
    rotated_at: Instant,
}

impl Generations {
    /// The window of `key`, moved into the current generation if it was in the previous one.
    fn get(&mut self, key: &Key) -> Option<&mut Window> {
        if !self.current.contains_key(key) {
            let window = self.previous.remove(key)?;
            self.current.insert(*key, window);
        }
        self.current.get_mut(key)
    }

    /// Starts a new generation when the current one is a window old or full;
    /// returns the generation to drop (after the lock is released).
    fn rotate_if_due(&mut self, now: Instant) -> Option<HashMap<Key, Window>> {
        let due = now.saturating_duration_since(self.rotated_at) >= AuthFailures::WINDOW
            || self.current.len() >= MAX_KEYS;
        if !due {
            return None;
        }
        self.rotated_at = now;
        let current = std::mem::take(&mut self.current);
        Some(std::mem::replace(&mut self.previous, current))
    }
}

/// The failure counts of one server.
#[derive(Debug)]
pub struct AuthFailures {
    origin: Instant,
    /// Milliseconds after `origin` until which some key is blocked: while it
    /// lies in the past, a failing request takes no lock to learn it is not.
    blocking_until_ms: AtomicU64,
    keys: Mutex<Generations>,
}

impl Default for AuthFailures {
    fn default() -> Self {
        let now = Instant::now();
        AuthFailures {
            origin: now,
            blocking_until_ms: AtomicU64::new(0),
            keys: Mutex::new(Generations {
                current: HashMap::new(),
                previous: HashMap::new(),
                rotated_at: now,
            }),
        }
    }
}

impl AuthFailures {
    /// Failed token checks one key may make per window.
    pub const LIMIT: u32 = 20;
    /// The window, from a key's first failure.
    pub const WINDOW: Duration = Duration::from_secs(60);

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_millis()).unwrap_or(u64::MAX)
    }

    /// Counts one failed token check of `presented` from `client` at `now`
    /// and says whether the key was blocked: `Some(seconds)` until it may try
    /// again (the failure is then answered 429 and not counted again).
    pub fn fail(&self, client: IpAddr, presented: Presented, now: Instant) -> Option<u64> {
        let key = Key { client, presented };
        let (verdict, dropped) = {
            let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            let dropped = keys.rotate_if_due(now);
            let verdict = match keys.get(&key) {
                Some(window) if now < window.started + Self::WINDOW => {
                    if window.failures >= Self::LIMIT {
                        Some((window.started + Self::WINDOW - now).as_secs().max(1))
                    } else {
                        window.failures += 1;
                        self.note_block(window);
                        None
                    }
                }
                Some(window) => {
                    *window = Window {
                        started: now,
                        failures: 1,
                    };
                    None
                }
                None => {
                    keys.current.insert(
                        key,
                        Window {
                            started: now,
                            failures: 1,
                        },
                    );
                    None
                }
            };
            (verdict, dropped)
        };
        drop(dropped);
        verdict
    }

    /// Whether `client` is blocked for `presented` at `now`, without counting.
    pub fn blocked(&self, client: IpAddr, presented: Presented, now: Instant) -> Option<u64> {
        if self.ms(now) >= self.blocking_until_ms.load(Ordering::Acquire) {
            return None;
        }
        let key = Key { client, presented };
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let window = keys.get(&key)?;
        let ends = window.started + Self::WINDOW;
        (window.failures >= Self::LIMIT && now < ends).then(|| (ends - now).as_secs().max(1))
    }

    fn note_block(&self, window: &Window) {
        if window.failures >= Self::LIMIT {
            let ends = self.ms(window.started + Self::WINDOW);
            self.blocking_until_ms.fetch_max(ends, Ordering::AcqRel);
        }
    }

    /// Keys remembered now, in both generations.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        let keys = self.keys.lock().unwrap();
        keys.current.len() + keys.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    const GUESS: Presented = Presented::Token(0xabc);

    #[test]
    fn a_key_is_blocked_after_the_limit_until_its_window_ends() {
        let failures = AuthFailures::default();
        let start = Instant::now();
        for n in 0..AuthFailures::LIMIT {
            assert_eq!(failures.fail(ip(1), GUESS, start), None, "failure {n}");
        }
        assert_eq!(failures.blocked(ip(1), GUESS, start), Some(60));
        assert_eq!(failures.fail(ip(1), GUESS, start), Some(60));
        assert_eq!(
            failures.blocked(ip(1), GUESS, start + Duration::from_secs(59)),
            Some(1)
        );
        assert_eq!(
            failures.fail(ip(1), GUESS, start + AuthFailures::WINDOW),
            None
        );
    }

    #[test]
    fn one_guesser_blocks_neither_other_tokens_nor_other_addresses() {
        let failures = AuthFailures::default();
        let start = Instant::now();
        for _ in 0..AuthFailures::LIMIT {
            failures.fail(ip(1), Presented::Malformed, start);
        }
        assert!(
            failures
                .blocked(ip(1), Presented::Malformed, start)
                .is_some()
        );
        assert_eq!(failures.blocked(ip(1), GUESS, start), None);
        assert_eq!(failures.blocked(ip(2), Presented::Malformed, start), None);
        assert_eq!(failures.fail(ip(1), Presented::Token(1), start), None);
    }

    #[test]
    fn failures_spread_over_windows_never_block() {
        let failures = AuthFailures::default();
        let start = Instant::now();
        for window in 0..5u64 {
            let at = start + Duration::from_secs(61 * window);
            for _ in 1..AuthFailures::LIMIT {
                assert_eq!(failures.fail(ip(3), GUESS, at), None);
            }
        }
    }

    #[test]
    fn memory_stays_bounded_under_many_addresses_and_a_blocked_key_that_keeps_trying_is_kept() {
        let failures = AuthFailures::default();
        let start = Instant::now();
        for _ in 0..AuthFailures::LIMIT {
            failures.fail(ip(1), GUESS, start);
        }
        for n in 0..(3 * MAX_KEYS as u32) {
            let client = IpAddr::from(n.to_be_bytes().map(|b| b ^ 0x55));
            failures.fail(client, Presented::Malformed, start);
            if n % 10_000 == 0 {
                // The blocked guesser keeps going.
                assert!(failures.fail(ip(1), GUESS, start).is_some(), "at {n}");
            }
        }
        assert!(failures.remembered() <= 2 * MAX_KEYS);
        assert!(failures.fail(ip(1), GUESS, start).is_some());
    }

    #[test]
    fn a_token_id_is_a_key_and_anything_else_is_malformed() {
        assert_eq!(Presented::token("00000000abcd"), Presented::Token(0xabcd));
        assert_eq!(Presented::token("zz"), Presented::Malformed);
    }
}
