//! Rate limits that catch bulk harvesting: per principal, sliding windows, bounded memory.

use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use super::decide::{Decision, FieldEffect, Reason, Request};
use super::{Policy, RATE_READ, RATE_SEARCH, bits};
use crate::HashMap;
use crate::record::FieldPath;

const SHARDS: usize = 16;

/// A rate limit that a request exceeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitExceeded {
    /// The limit's id.
    pub limit: String,
    /// How many fields the request would have revealed under it.
    pub requested: u32,
    /// The limit's maximum per window.
    pub max: u32,
}

/// Two adjacent fixed windows; the count over the sliding window is estimated by weighting the
/// previous window by how much of it the sliding window still covers (the usual "sliding window
/// counter"). Constant memory per key, exact at window boundaries, and never under-counts by
/// more than the previous window's share.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    start: i64,
    current: u32,
    previous: u32,
}

impl Window {
    /// A window from stored counts: `current` in the fixed window that starts at `start`,
    /// `previous` in the one before it.
    pub(crate) fn from_counts(start: i64, current: u32, previous: u32) -> Window {
        Window {
            start,
            current,
            previous,
        }
    }

    /// The start of the current fixed window.
    pub(crate) fn start(&self) -> i64 {
        self.start
    }

    /// The start of the fixed window of `width` seconds that holds `now`.
    pub(crate) fn aligned(now: i64, width: i64) -> i64 {
        now - now.rem_euclid(width)
    }

    /// Counts `n` more if they fit under `max` over the sliding window ending at `now`.
    pub(crate) fn admit(&mut self, now: i64, width: i64, max: u32, n: u32) -> bool {
        if self.estimate(now, width) + f64::from(n) > f64::from(max) {
            return false;
        }
        self.current = self.current.saturating_add(n);
        true
    }

    fn estimate(&mut self, now: i64, width: i64) -> f64 {
        let aligned = now - now.rem_euclid(width);
        if aligned != self.start {
            self.previous = if aligned - self.start == width {
                self.current
            } else {
                0
            };
            self.current = 0;
            self.start = aligned;
        }
        let elapsed = (now - aligned) as f64 / width as f64;
        f64::from(self.previous) * (1.0 - elapsed) + f64::from(self.current)
    }
}

#[derive(Default)]
struct Shard {
    windows: HashMap<(usize, String), Window>,
}

/// Counts what each principal reveals under the policy's rate limits, and denies what goes over.
///
/// Thread-safe (sharded locks). Memory is bounded by `max_keys` (principal × limit pairs): when
/// full, expired windows are dropped first; if none can be dropped, requests from principals
/// not yet tracked are refused under the limit (fail closed) rather than forgetting the counts
/// of principals that are.
pub struct RateLimiter {
    shards: Vec<Mutex<Shard>>,
    max_keys_per_shard: usize,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("max_keys", &(self.max_keys_per_shard * SHARDS))
            .finish()
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl RateLimiter {
    /// A limiter that tracks at most `max_keys` principal × limit pairs.
    pub fn new(max_keys: usize) -> Self {
        RateLimiter {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            max_keys_per_shard: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    /// Applies the policy's rate limits to a decision about a record with these field paths:
    /// counts the fields the decision reveals in clear under each limit that applies to the
    /// principal's roles, and if a request would go over a limit, denies those fields instead
    /// (reason `RateLimited`) and counts nothing. Returns the limits exceeded, for the audit
    /// trail's alert. The time comes from the request; without it, limited fields are denied.
    pub fn apply(
        &self,
        policy: &Policy,
        req: &Request,
        decision: &mut Decision,
        paths: &[FieldPath],
    ) -> Vec<LimitExceeded> {
        let slots: Vec<usize> = paths.iter().filter_map(|p| policy.slot_for(p)).collect();
        self.apply_slots(policy, req, decision, &slots)
    }

    /// [`RateLimiter::apply`] with each field given by its slot ([`Policy::slot_for`]).
    pub fn apply_slots(
        &self,
        policy: &Policy,
        req: &Request,
        decision: &mut Decision,
        slots: &[usize],
    ) -> Vec<LimitExceeded> {
        apply_with(policy, req, decision, slots, &mut |li, now, n| {
            let limit = &policy.rate_limits[li];
            self.admit(li, &req.principal.id, now, limit.window_secs, limit.max, n)
        })
    }
}

/// The principal's roles and every role they inherit from, as bits.
fn role_bits(policy: &Policy, req: &Request) -> u128 {
    req.principal
        .roles
        .iter()
        .filter_map(|r| policy.roles.get(r))
        .fold(0u128, |acc, &i| acc | policy.role_closure[i])
}

/// The logic of [`RateLimiter::apply_slots`] over counts kept anywhere: `admit(limit index,
/// now, n)` says whether `n` more fields fit under that limit at `now` (Unix seconds) and, if
/// so, counts them. Coffer keeps the counts in its store, so that they hold across processes.
pub(crate) fn apply_with(
    policy: &Policy,
    req: &Request,
    decision: &mut Decision,
    slots: &[usize],
    admit: &mut dyn FnMut(usize, i64, u32) -> bool,
) -> Vec<LimitExceeded> {
    let mut exceeded = Vec::new();
    if policy.rate_limits.is_empty() || decision.denial().is_some() {
        return exceeded;
    }
    let role_bits = role_bits(policy, req);
    let mut per_slot = vec![0u32; policy.slot_count()];
    for &s in slots {
        if s < per_slot.len()
            && decision
                .slot(s)
                .is_some_and(|d| d.effect == FieldEffect::Reveal)
        {
            per_slot[s] += 1;
        }
    }
    for (li, limit) in policy.rate_limits.iter().enumerate() {
        if limit.roles.is_some_and(|r| r & role_bits == 0) || limit.actions & RATE_READ == 0 {
            continue;
        }
        let requested: u32 = bits(limit.fields)
            .map(|s| per_slot.get(s).copied().unwrap_or(0))
            .sum();
        if requested == 0 {
            continue;
        }
        let allowed = match req.context.time {
            None => false,
            Some(t) => admit(li, t.unix_timestamp(), requested),
        };
        if !allowed {
            for s in bits(limit.fields) {
                if per_slot.get(s).copied().unwrap_or(0) > 0 {
                    decision.deny_slot(s, Reason::RateLimited(limit.id.clone()));
                    per_slot[s] = 0;
                }
            }
            exceeded.push(LimitExceeded {
                limit: limit.id.clone(),
                requested,
                max: limit.max,
            });
        }
    }
    exceeded
}

/// Applies the rate limits that count searches to a search of `count` values of the field in
/// `slots` (one slot): if the decision lets the search run (allow or mask), each value counts
/// once under every limit that covers the field and the principal's roles; if one would go
/// over, the field is denied (`RateLimited`) and nothing is counted.
pub(crate) fn apply_search(
    policy: &Policy,
    req: &Request,
    decision: &mut Decision,
    slots: &[usize],
    count: u32,
    admit: &mut dyn FnMut(usize, i64, u32) -> bool,
) -> Vec<LimitExceeded> {
    let mut exceeded = Vec::new();
    if policy.rate_limits.is_empty() || decision.denial().is_some() {
        return exceeded;
    }
    let role_bits = role_bits(policy, req);
    for &s in slots {
        if decision
            .slot(s)
            .is_none_or(|d| d.effect == FieldEffect::Deny)
        {
            continue;
        }
        for (li, limit) in policy.rate_limits.iter().enumerate() {
            if limit.roles.is_some_and(|r| r & role_bits == 0)
                || limit.actions & RATE_SEARCH == 0
                || !bits(limit.fields).any(|f| f == s)
            {
                continue;
            }
            let allowed = match req.context.time {
                None => false,
                Some(t) => admit(li, t.unix_timestamp(), count),
            };
            if !allowed {
                decision.deny_slot(s, Reason::RateLimited(limit.id.clone()));
                exceeded.push(LimitExceeded {
                    limit: limit.id.clone(),
                    requested: count,
                    max: limit.max,
                });
                break;
            }
        }
    }
    exceeded
}

impl RateLimiter {
    fn admit(&self, limit: usize, principal: &str, now: i64, width: i64, max: u32, n: u32) -> bool {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (limit, principal).hash(&mut h);
        let shard = &self.shards[(h.finish() as usize) % SHARDS];
        let mut shard = shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (limit, principal.to_owned());
        if !shard.windows.contains_key(&key) && shard.windows.len() >= self.max_keys_per_shard {
            // Drop windows that have fully expired; they count nothing any more.
            shard.windows.retain(|_, w| now - w.start < 2 * width);
            if shard.windows.len() >= self.max_keys_per_shard {
                return false;
            }
        }
        shard
            .windows
            .entry(key)
            .or_insert(Window::from_counts(Window::aligned(now, width), 0, 0))
            .admit(now, width, max, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides() {
        let mut w = Window {
            start: 0,
            current: 0,
            previous: 0,
        };
        assert_eq!(w.estimate(10, 100), 0.0);
        w.current = 100;
        // Half-way into the next window, half of the previous one still counts.
        assert_eq!(w.estimate(150, 100), 50.0);
        // Two windows later, nothing counts.
        assert_eq!(w.estimate(310, 100), 0.0);
    }

    #[test]
    fn bounded_keys_fail_closed() {
        let l = RateLimiter::new(16);
        // One key per shard at most: a new principal hashing to a full shard is refused.
        let admitted = (0..200)
            .filter(|i| l.admit(0, &format!("p{i}"), 1000, 3600, 10, 1))
            .count();
        assert!(admitted <= 16, "{admitted}");
        // After the windows expire, new principals are admitted again.
        assert!((0..200).any(|i| l.admit(0, &format!("q{i}"), 1000 + 3 * 3600, 3600, 10, 1)));
    }
}
