//! Requests waiting for keys: which denials a fetch could change are parked
//! (bounded in count and header bytes), when their wait ends, and what the
//! glue does after a decision ([`KeyLifecycle::settle`]).

use super::*;

/// A request parked until a fetch completes or its deadline passes.
#[derive(Clone, Debug)]
pub struct Parked {
    pub context_id: u32,
    pub view: RequestView,
    /// Header bytes the copy holds (counted against [`MAX_PARKED_BYTES`]).
    pub bytes: usize,
    /// (provider, why, `Meta.attempts` when parked). A first-fetch wait ends
    /// when the provider has keys or has run out of retries; an unknown-kid
    /// wait when one more fetch attempt has completed.
    providers: Vec<(usize, Wait, u64)>,
    pub deadline_ms: u64,
    /// The DPoP proof the request recorded as fresh before it waited: its
    /// own when it is decided again, not a replay.
    pub proof: Option<[u8; 32]>,
}

/// What [`KeyLifecycle::park`] did with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum ParkResult {
    /// Parked: pause the request; it comes back to be decided again.
    Parked,
    /// Nothing to wait for: decide now.
    DecideNow,
    /// Worth waiting for, but the parking bounds are reached: deny now
    /// with this cause (`AuthError::KeyWaitFull`).
    Deny(AuthError),
    /// Another VM fetched keys moments ago and they are installed now:
    /// decide again with them, without parking (they are at most one tick
    /// old, so an unknown `kid` they lack is refused rather than refetched).
    DecideAgain,
}

/// What the glue does after a decision ([`KeyLifecycle::settle`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Settled {
    /// Carry out the (possibly amended) outcome.
    Apply,
    /// The request waits for keys: pause it; it comes back to be decided again.
    Park,
    /// Keys arrived meanwhile: decide again at once.
    DecideAgain,
}

impl KeyLifecycle {
    /// What follows a decision: a denial that a fetch could change (`waits`,
    /// from the policy) of a request that may still wait (`may_wait`: the size
    /// of the headers `view` holds) is parked, decided again, or stands with
    /// the cause the parking bounds give; anything else stands as decided.
    /// `proof`: the DPoP proof the request recorded as fresh, kept with it
    /// while it waits.
    #[allow(clippy::too_many_arguments)]
    pub fn settle(
        &mut self,
        host: &mut impl KeyHost,
        now: u64,
        context_id: u32,
        view: &RequestView,
        may_wait: Option<usize>,
        outcome: &mut Outcome,
        waits: &[(usize, Wait)],
        proof: Option<[u8; 32]>,
    ) -> Settled {
        let (Some(bytes), Decision::Deny(_)) = (may_wait, &outcome.decision) else {
            return Settled::Apply;
        };
        let parked = self.park(host, now, context_id, view, bytes, waits, proof);
        match parked {
            ParkResult::Parked => Settled::Park,
            ParkResult::DecideAgain => Settled::DecideAgain,
            ParkResult::Deny(err) => {
                outcome.decision = Decision::Deny(err);
                Settled::Apply
            }
            ParkResult::DecideNow => Settled::Apply,
        }
    }

    /// A denied request that a fetch could change (`waits`, from the
    /// policy): parks it when a fetch is under way or may start now (keys
    /// not fetched yet, or an unknown `kid` within the refetch rate limit).
    /// `bytes`: the size of the headers `view` holds.
    #[allow(clippy::too_many_arguments)]
    pub fn park(
        &mut self,
        host: &mut impl KeyHost,
        now: u64,
        context_id: u32,
        view: &RequestView,
        bytes: usize,
        waits: &[(usize, Wait)],
        proof: Option<[u8; 32]>,
    ) -> ParkResult {
        let config = self.config.clone();
        let mut providers = Vec::new();
        let mut deadline = now;
        let mut installed_now = false;
        for (idx, wait) in waits {
            let Some(r) = remote_of(&config, *idx) else {
                continue;
            };
            let (meta, _) = read_meta(host, r);
            let before = self.providers.get(*idx).map(|p| p.installed);
            let worth_waiting = match wait {
                // Still pending: a fetch is under way or a retry is scheduled.
                Wait::FirstFetch => {
                    self.sync_provider(host, *idx, now, false);
                    self.providers.get(*idx).is_some_and(ProviderState::pending)
                }
                Wait::UnknownKid => {
                    // Past the bounds no refetch is started for this request.
                    if self.full(bytes) {
                        meta.leased(now) || meta.kid_refetch_allowed(r, now, self.schedule)
                    } else {
                        self.sync_provider(host, *idx, now, true)
                    }
                }
            };
            if self.providers.get(*idx).map(|p| p.installed) != before {
                installed_now = true;
            }
            if worth_waiting {
                providers.push((*idx, *wait, meta.attempts));
                deadline = deadline.max(now.saturating_add(wait_budget_ms(r, *wait)));
            }
        }
        if installed_now && self.schedule == Schedule::Spread {
            return ParkResult::DecideAgain;
        }
        if providers.is_empty() {
            return ParkResult::DecideNow;
        }
        if self.full(bytes) {
            return ParkResult::Deny(AuthError::KeyWaitFull);
        }
        self.parked_bytes = self.parked_bytes.saturating_add(bytes);
        self.parked.push(Parked {
            context_id,
            view: view.clone(),
            bytes,
            providers,
            deadline_ms: deadline,
            proof,
        });
        ParkResult::Parked
    }

    /// Whether one more parked request of `bytes` would pass a bound.
    pub(super) fn full(&self, bytes: usize) -> bool {
        self.parked.len() >= self.max_parked
            || self.parked_bytes.saturating_add(bytes) > self.max_parked_bytes
    }

    /// A request ended (while parked or not): it stops waiting.
    pub fn on_request_gone(&mut self, context_id: u32) {
        let mut freed = 0;
        self.parked.retain(|w| {
            let keep = w.context_id != context_id;
            if !keep {
                freed += w.bytes;
            }
            keep
        });
        self.parked_bytes = self.parked_bytes.saturating_sub(freed);
    }

    /// Takes the parked requests whose fetch completed or whose time ran out.
    pub(super) fn take_ready(&mut self, host: &impl KeyHost, now: u64) -> Vec<Parked> {
        let config = self.config.clone();
        let providers = &self.providers;
        let (done, keep): (Vec<Parked>, Vec<Parked>) =
            std::mem::take(&mut self.parked).into_iter().partition(|w| {
                now >= w.deadline_ms
                    || w.providers.iter().all(|(idx, wait, attempts)| {
                        let Some(r) = remote_of(&config, *idx) else {
                            return true;
                        };
                        match wait {
                            Wait::FirstFetch => {
                                !providers.get(*idx).is_some_and(ProviderState::pending)
                            }
                            Wait::UnknownKid => read_meta(host, r).0.attempts > *attempts,
                        }
                    })
            });
        self.parked = keep;
        self.parked_bytes = self.parked.iter().map(|w| w.bytes).sum();
        done
    }
}

/// How long a request waits: for a first fetch, every retry's timeout and
/// back-off (capped); for an unknown `kid`, one fetch.
fn wait_budget_ms(r: &RemoteJwks, wait: Wait) -> u64 {
    match wait {
        Wait::FirstFetch => (r.timeout_ms.saturating_add(r.max_interval_ms))
            .saturating_mul(u64::from(r.num_retries) + 1)
            .min(MAX_FIRST_FETCH_WAIT_MS),
        Wait::UnknownKid => r.timeout_ms.saturating_add(KID_WAIT_SLACK_MS),
    }
}
