//! What every access (reveal, search, export) shares: checks of who asks, the request's time,
//! the rate-limit budget read and added to inside the access's own transaction, and how a
//! field's outcome is written in the audit trail.

use std::borrow::Cow;

use super::{Access, Coffer};
use crate::error::{Error, Result};
use crate::mask::{MaskForm, MaskRule, Profile};
use crate::policy::rate::Window;
use crate::policy::{FieldDecision, FieldEffect, Policy, Reason};
use crate::store::{RateKey, RetentionTx};

/// Longest id or name Coffer accepts from a request or an operation (actor, principal,
/// tenant, subject, role, purpose), in bytes: they land in the audit trail.
pub const MAX_NAME_BYTES: usize = 256;

/// How far a time the host passes in a request's context may lie from Coffer's clock, in
/// seconds. Rate-limit windows are counted on the clock; a request dated further off is refused.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// Checks an id or name the host gives: not empty, at most [`MAX_NAME_BYTES`].
pub(crate) fn check_name(name: &'static str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::InvalidArgument {
            name,
            reason: "is empty".into(),
        });
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(Error::LimitExceeded {
            what: name.into(),
            limit: MAX_NAME_BYTES,
            unit: "bytes",
        });
    }
    Ok(())
}

/// Checks who asks and for what: principal id, tenant and purpose present and bounded, and
/// every role bounded.
pub(crate) fn check_access(access: &Access) -> Result<()> {
    check_name("principal.id", &access.principal.id)?;
    check_name("principal.tenant", &access.principal.tenant)?;
    check_name("purpose", &access.purpose)?;
    for r in &access.principal.roles {
        check_name("principal.roles", r)?;
    }
    Ok(())
}

impl Coffer {
    /// The time of a request: the handle's own clock. Rate-limit windows are counted on it, so
    /// that a request cannot move them; a time the host passes in the context must lie within
    /// [`MAX_CLOCK_SKEW_SECS`] of it (it keeps its offset for the policy's hour conditions).
    pub(super) fn request_time(&self, access: &Access) -> Result<time::OffsetDateTime> {
        let now = self.clock.now();
        if let Some(t) = access.context.time {
            let skew = (t - now).whole_seconds().abs();
            if skew > MAX_CLOCK_SKEW_SECS {
                return Err(Error::InvalidArgument {
                    name: "context.time",
                    reason: format!(
                        "the request's time is {skew} s from Coffer's clock (at most {MAX_CLOCK_SKEW_SECS} s); leave it out to use the clock"
                    ),
                });
            }
        }
        Ok(now)
    }
}

/// A principal's count under one rate limit during an access: as read from the store, and what
/// the access adds to it.
struct RateCount<'a> {
    key: RateKey<'a>,
    /// Starts at the fixed window the access's time falls in.
    window: Window,
    added: u32,
}

/// A principal's counts under every limit of the policy, read inside the transaction that will
/// add to them, so that two processes cannot both read the same count and both go over.
pub(super) struct RateBudget<'a> {
    /// `None` if they could not be read: then nothing is admitted (fail closed).
    counts: Option<Vec<RateCount<'a>>>,
    at: i64,
}

impl<'a> RateBudget<'a> {
    /// The counts of `access`'s principal under each of the policy's limits, as sliding windows
    /// at `now`.
    pub(super) fn read(
        tx: &dyn RetentionTx,
        policy: &'a Policy,
        access: &'a Access,
        now: time::OffsetDateTime,
    ) -> RateBudget<'a> {
        let at = now.unix_timestamp();
        let counts = policy
            .rate_limits
            .iter()
            .map(|limit| {
                let key = RateKey {
                    limit: &limit.id,
                    tenant: &access.principal.tenant,
                    principal: &access.principal.id,
                    width: limit.window_secs,
                };
                let start = Window::aligned(at, limit.window_secs);
                let (current, previous) = tx.rate_usage(&key, start).ok()?;
                Some(RateCount {
                    key,
                    window: Window::from_counts(start, current, previous),
                    added: 0,
                })
            })
            .collect();
        RateBudget { counts, at }
    }

    /// Counts `n` more under the limit at index `li` if they fit (see
    /// `policy::rate::apply_with`).
    pub(super) fn admit(&mut self, policy: &Policy, li: usize, n: u32) -> bool {
        let (Some(counts), Some(limit)) = (self.counts.as_mut(), policy.rate_limits.get(li)) else {
            return false;
        };
        let Some(count) = counts.get_mut(li) else {
            return false;
        };
        let fits = count.window.admit(self.at, limit.window_secs, limit.max, n);
        if fits {
            count.added += n;
        }
        fits
    }

    /// Adds what this access counted to the store's counts (in the access's transaction).
    pub(super) fn commit(&self, tx: &dyn RetentionTx) -> Result<()> {
        for c in self.counts.iter().flatten().filter(|c| c.added > 0) {
            tx.add_rate_usage(&c.key, c.window.start(), c.added)?;
        }
        Ok(())
    }
}

/// A field's outcome as the audit trail writes it: `reveal`, `mask:RULE:PROFILE` or
/// `deny:REASON` (`deny:unknown_field` for a field the policy does not know).
pub(super) fn effect_text(fd: Option<&FieldDecision<'_>>) -> String {
    EffectText(fd).to_string()
}

/// [`effect_text`], written where it is wanted (into an audit entry's JSON) without a
/// `String` of its own.
pub(super) struct EffectText<'a, 'b>(pub(super) Option<&'a FieldDecision<'b>>);

impl std::fmt::Display for EffectText<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&effect_str(self.0.map(|fd| (fd.effect, fd.reason))))
    }
}

impl serde::Serialize for EffectText<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&effect_str(self.0.map(|fd| (fd.effect, fd.reason))))
    }
}

/// An effect's text: `reveal`, `mask:RULE:PROFILE` or `deny:REASON`. Every such text is made
/// of names, so it is a static string (from a table built once for the masks) rather than
/// formatted each time: a reveal batch writes one for every field of every record. It never
/// needs JSON escaping.
pub(super) fn effect_str(effect: Option<(FieldEffect, &Reason)>) -> Cow<'static, str> {
    /// `mask:RULE:PROFILE` for every rule (the three without a form, then each partial form)
    /// and both profiles.
    static MASKS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        mask_rules()
            .flat_map(|rule| PROFILES.map(|profile| mask_text(rule, profile)))
            .collect()
    });
    Cow::Borrowed(match effect {
        Some((FieldEffect::Reveal, _)) => "reveal",
        Some((FieldEffect::Mask { rule, profile }, _)) => {
            let at = mask_rules().position(|r| r == rule).and_then(|r| {
                let p = PROFILES.iter().position(|&p| p == profile)?;
                MASKS.get(r * PROFILES.len() + p)
            });
            // (A rule the table lacks is written as it always was.)
            return at.map_or_else(
                || Cow::Owned(mask_text(rule, profile)),
                |t| Cow::Borrowed(t.as_str()),
            );
        }
        Some((FieldEffect::Deny, reason)) => match reason {
            Reason::Allowed => "deny:allowed",
            Reason::Masked => "deny:masked",
            Reason::DeniedByRule => "deny:rule",
            Reason::NoMatchingAllow => "deny:no_matching_allow",
            Reason::Unmet => "deny:unmet",
            Reason::Restricted => "deny:restricted",
            Reason::RateLimited(_) => "deny:rate_limited",
            Reason::Request(_) => "deny:request",
        },
        None => "deny:unknown_field",
    })
}

fn mask_text(rule: MaskRule, profile: Profile) -> String {
    format!("mask:{rule}:{}", profile.as_str())
}

const PROFILES: [Profile; 2] = [Profile::Standard, Profile::Privileged];

/// Every mask rule, in the order of [`effect_str`]'s table.
fn mask_rules() -> impl Iterator<Item = MaskRule> {
    [MaskRule::Withhold, MaskRule::KeyedHash, MaskRule::Clear]
        .into_iter()
        .chain(MaskForm::ALL.into_iter().map(MaskRule::Partial))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::RequestDenial;

    /// Every effect is written into an audit entry as `reveal`, `mask:RULE:PROFILE` or
    /// `deny:REASON` spell it (the texts the trail has always held), as a JSON string without
    /// escapes, and each distinct effect with a text of its own.
    #[test]
    fn every_effect_is_written_as_its_text() {
        // Each reason with the code a denial for it is written with.
        let reasons = [
            (Reason::Allowed, "allowed"),
            (Reason::Masked, "masked"),
            (Reason::DeniedByRule, "rule"),
            (Reason::NoMatchingAllow, "no_matching_allow"),
            (Reason::Unmet, "unmet"),
            (Reason::Restricted, "restricted"),
            (Reason::RateLimited("bulk\"limit".into()), "rate_limited"),
            (
                Reason::Request(RequestDenial::UnknownRole("r".into())),
                "request",
            ),
        ];
        let mut cases: Vec<(Option<(FieldEffect, &Reason)>, String)> =
            vec![(None, "deny:unknown_field".into())];
        let rules = [MaskRule::Withhold, MaskRule::KeyedHash, MaskRule::Clear]
            .into_iter()
            .chain(MaskForm::ALL.into_iter().map(MaskRule::Partial));
        for rule in rules {
            for profile in [Profile::Standard, Profile::Privileged] {
                let effect = FieldEffect::Mask { rule, profile };
                let text = format!("mask:{}:{}", rule.as_str(), profile.as_str());
                cases.push((Some((effect, &Reason::Masked)), text));
            }
        }
        for (reason, code) in &reasons {
            cases.push((Some((FieldEffect::Reveal, reason)), "reveal".into()));
            cases.push((Some((FieldEffect::Deny, reason)), format!("deny:{code}")));
        }
        assert_eq!(
            cases.len(),
            1 + 2 * (3 + MaskForm::ALL.len()) + 2 * reasons.len()
        );
        let mut seen = std::collections::BTreeSet::new();
        for (effect, text) in cases {
            assert_eq!(effect_str(effect), text);
            assert!(!text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'));
            assert_eq!(
                serde_json::to_string(&effect_str(effect)).unwrap(),
                format!("\"{text}\"")
            );
            seen.insert(text);
        }
        // Each mask rule and profile has its own text.
        assert_eq!(
            seen.len(),
            1 + 2 * (3 + MaskForm::ALL.len()) + 1 + reasons.len()
        );
    }
}
