//! Failed sign-ins per client. After [`AuthFailures::LIMIT`] presented
//! tokens that do not authenticate within [`AuthFailures::WINDOW`] from one
//! address, every request from it that needs a token is refused with 429
//! until the window ends, valid tokens included (answering a valid token
//! would let the guessing go on). A request without any token is not a guess
//! and does not count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Clients remembered at once; beyond this, finished windows are forgotten.
const MAX_CLIENTS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// The failure counts of one server.
#[derive(Debug)]
pub struct AuthFailures {
    origin: Instant,
    /// Milliseconds after `origin` until which some client is blocked: while
    /// it lies in the past, a request takes no lock.
    blocking_until_ms: AtomicU64,
    clients: Mutex<HashMap<IpAddr, Window>>,
}

impl Default for AuthFailures {
    fn default() -> Self {
        AuthFailures {
            origin: Instant::now(),
            blocking_until_ms: AtomicU64::new(0),
            clients: Mutex::new(HashMap::new()),
        }
    }
}

impl AuthFailures {
    /// Failed token checks a client may make per window.
    pub const LIMIT: u32 = 20;
    /// The window, from a client's first failure.
    pub const WINDOW: Duration = Duration::from_secs(60);

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_millis()).unwrap_or(u64::MAX)
    }

    /// Whole seconds until `client` may try again, when it is blocked at `now`.
    pub fn blocked(&self, client: IpAddr, now: Instant) -> Option<u64> {
        if self.ms(now) >= self.blocking_until_ms.load(Ordering::Acquire) {
            return None;
        }
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let window = clients.get(&client)?;
        let ends = window.started + Self::WINDOW;
        (window.failures >= Self::LIMIT && now < ends).then(|| (ends - now).as_secs().max(1))
    }

    /// Counts a failed token check of `client` at `now`.
    pub fn failed(&self, client: IpAddr, now: Instant) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() >= MAX_CLIENTS {
            clients.retain(|_, w| now < w.started + Self::WINDOW);
        }
        let window = clients.entry(client).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now >= window.started + Self::WINDOW {
            *window = Window {
                started: now,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
        if window.failures >= Self::LIMIT {
            let ends = self.ms(window.started + Self::WINDOW);
            self.blocking_until_ms.fetch_max(ends, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_client_is_blocked_after_the_limit_until_its_window_ends() {
        let failures = AuthFailures::default();
        let start = Instant::now();
        for n in 0..AuthFailures::LIMIT {
            assert_eq!(failures.blocked(ip(1), start), None, "after {n} failures");
            failures.failed(ip(1), start);
        }
        assert_eq!(failures.blocked(ip(1), start), Some(60));
        assert_eq!(
            failures.blocked(ip(1), start + Duration::from_secs(59)),
            Some(1)
        );
        assert_eq!(failures.blocked(ip(1), start + AuthFailures::WINDOW), None);
        // Others are not affected.
        assert_eq!(failures.blocked(ip(2), start), None);
    }

    #[test]
    fn failures_spread_over_windows_never_block() {
        let failures = AuthFailures::default();
        let start = Instant::now();
        for window in 0..5u64 {
            let at = start + Duration::from_secs(61 * window);
            for _ in 1..AuthFailures::LIMIT {
                failures.failed(ip(3), at);
            }
            assert_eq!(failures.blocked(ip(3), at), None);
        }
    }
}
