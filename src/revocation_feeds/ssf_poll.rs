//! The SSF side of the feeds: the transmitter's keys (fetched like a JWKS),
//! the poll request (RFC 8936) and what its answer does: SETs verified,
//! turned into rules, acknowledged.

use super::*;

impl RevocationFeeds {
    pub(super) fn jwks_answered(
        &mut self,
        host: &mut impl FeedHost,
        i: usize,
        now: u64,
        status: Option<&str>,
        body: Option<Vec<u8>>,
        size: usize,
    ) {
        let Some(s) = self.feeds.get(i).and_then(|f| f.ssf.clone()) else {
            return;
        };
        let checked = match &body {
            Some(b) => store::validate_response(status, b, &ssf::set_algorithms()),
            None => store::jwks_status(status).and(Err(store::too_large(size))),
        };
        match checked {
            Ok(_) => {
                let mut stored = format!("{now} ").into_bytes();
                stored.extend_from_slice(body.as_deref().unwrap_or_default());
                host.shared_set(&s.jwks.shared_key, &stored, None);
                let call = poll_call(host, &s);
                self.dispatch(host, i, now, (CallKind::Poll, call));
            }
            Err(e) => {
                let msg = format!(
                    "{}: transmitter JWKS from {} failed: {e}",
                    self.name(i),
                    s.jwks.uri
                );
                host.log(Level::Warn, &msg);
                self.failed(host, i, now);
            }
        }
    }

    /// The transmitter's keys, parsed once per fetch.
    pub(super) fn transmitter_keys(
        &mut self,
        host: &impl KeyHost,
        i: usize,
    ) -> Option<(u64, Rc<KeySet>)> {
        let f = self.feeds.get_mut(i)?;
        let s = f.ssf.as_ref()?;
        let (at, text) = read_jwks(host, &s.jwks.shared_key)?;
        if let Some((cached_at, keys)) = &f.jwks {
            if *cached_at == at {
                return Some((at, keys.clone()));
            }
        }
        let (set, _) = KeySet::parse(&text).ok()?;
        let keys = Rc::new(set);
        f.jwks = Some((at, keys.clone()));
        Some((at, keys))
    }

    pub(super) fn poll_answered(
        &mut self,
        host: &mut impl FeedHost,
        i: usize,
        now: u64,
        status: Option<&str>,
        body: Option<Vec<u8>>,
        size: usize,
    ) {
        let Some(f) = self.feeds.get(i) else { return };
        let Some(s) = f.ssf.clone() else { return };
        let (ids, provider) = (f.ids.clone(), f.provider);
        let response = match (status, body) {
            (Some("200"), Some(b)) => ssf::parse_poll_response(&b),
            (Some("200"), None) => Err(format!(
                "poll response of {size} bytes exceeds the {} byte limit",
                ssf::MAX_POLL_RESPONSE_BYTES
            )),
            (Some(s), _) => Err(format!("HTTP {s}")),
            (None, _) => Err("no response (timeout, reset, or unknown cluster)".into()),
        };
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                let msg = format!(
                    "{}: poll of {} failed: {e}; keeping the last good rules",
                    self.name(i),
                    s.poll.fetch.uri
                );
                host.log(Level::Warn, &msg);
                self.failed(host, i, now);
                return;
            }
        };
        let keys = self.transmitter_keys(host, i);
        let issuer = self.issuers.get(provider).cloned().flatten();
        let mut pending = Pending::default();
        let mut rules = Vec::new();
        let (mut applied, mut ignored) = (0usize, 0usize);
        let mut refetch_keys = false;
        let max = usize::try_from(s.max_events).unwrap_or(usize::MAX);
        for (jti, text) in response.sets.iter().take(max) {
            let verdict = match &keys {
                Some((_, k)) => ssf::verify_set(jti, text, &s, k, &token::native_verify),
                None => Err(Reject::UnknownKey),
            };
            match verdict {
                Ok(v) => {
                    for (event_type, payload) in &v.events {
                        let r = ssf::rules_for_event(
                            event_type,
                            payload,
                            v.sub_id.as_ref(),
                            v.iat,
                            issuer.as_deref(),
                            s.rule_lifetime_secs,
                        );
                        if r.is_empty() {
                            ignored += 1;
                        } else {
                            applied += 1;
                            rules.extend(r);
                        }
                    }
                    pending.ack.push(jti.clone());
                }
                Err(Reject::UnknownKey)
                    if keys
                        .as_ref()
                        .is_none_or(|(at, _)| now >= at.saturating_add(s.jwks.min_refetch_ms)) =>
                {
                    // Not acknowledged: delivered again after the keys are refetched.
                    refetch_keys = true;
                }
                Err(r) => {
                    let idx = Reject::ALL.iter().position(|x| *x == r).unwrap_or(0);
                    inc(host, ids.sets_rejected.get(idx).copied().flatten(), 1);
                    let msg = format!(
                        "{}: SET {:.64} refused ({}): not applied",
                        self.name(i),
                        jti,
                        r.reason()
                    );
                    host.log(Level::Warn, &msg);
                    pending.errs.push((jti.clone(), r.code()));
                }
            }
        }
        if refetch_keys {
            // Fetched again before the next poll.
            host.shared_set(&s.jwks.shared_key, b"0 {}", None);
        }
        inc(host, ids.events_applied, applied);
        inc(host, ids.events_ignored, ignored);
        let changed = !rules.is_empty() && self.merge(host, i, &rules, now);
        pending.ack.truncate(ssf::MAX_PENDING_ACKS);
        pending.errs.truncate(ssf::MAX_PENDING_ACKS);
        host.shared_set(
            &format!("{}|pending", s.poll.fetch.shared_key),
            pending.encode().as_bytes(),
            None,
        );
        inc(host, ids.poll_success, 1);
        if !response.sets.is_empty() {
            let msg = format!(
                "{}: {} SET(s) received, {applied} event(s) applied, {ignored} ignored",
                self.name(i),
                response.sets.len()
            );
            host.log(Level::Info, &msg);
        }
        let more = response.more_available || response.sets.len() > max || refetch_keys;
        self.succeeded(host, i, now, changed, more);
    }

    /// Adds rules to the shared SSF rule set (compare-and-swap); returns
    /// whether it changed.
    pub(super) fn merge(
        &mut self,
        host: &mut impl FeedHost,
        i: usize,
        rules: &[ssf::Rule],
        now: u64,
    ) -> bool {
        let Some(f) = self.feeds.get(i) else {
            return false;
        };
        let (base, ids) = (f.settings.fetch.shared_key.clone(), f.ids.clone());
        let (max_entries, max_bytes) = self.bounds(f.provider);
        let secs = now / 1000;
        for _ in 0..8 {
            let (bytes, cas) = host.shared_get(&base);
            let mut set = bytes
                .and_then(|b| denylist::parse(&b, max_entries, max_bytes, secs).ok())
                .map(|p| p.set)
                .unwrap_or_else(|| RuleSet::new(max_entries, max_bytes));
            set.prune(secs);
            let mut refused = 0;
            for r in rules {
                if set.insert(r.kind, &r.value, r.entry, secs) == Err(Refused::Full) {
                    refused += 1;
                }
            }
            if host.shared_set(&base, denylist::encode(&set).as_bytes(), cas) {
                if refused > 0 {
                    inc(host, ids.rules_refused, refused);
                    let msg = format!(
                        "{}: {refused} rule(s) refused: the rule set is full ({max_entries} \
                         entries / {max_bytes} bytes)",
                        self.name(i)
                    );
                    host.log(Level::Warn, &msg);
                }
                return true;
            }
        }
        false
    }
}

/// The poll request of an SSF stream, acknowledging what is pending.
pub(super) fn poll_call(host: &impl KeyHost, s: &SsfSettings) -> FeedCall {
    let pending = host
        .shared_get(&format!("{}|pending", s.poll.fetch.shared_key))
        .0
        .map(|b| Pending::decode(&b))
        .unwrap_or_default();
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("accept", "application/json".to_string()),
    ];
    if let Some(a) = &s.authorization {
        headers.push(("authorization", a.clone()));
    }
    FeedCall {
        request: request_of(&s.poll.fetch),
        method: "POST",
        headers,
        body: pending.poll_body(s.max_events).into_bytes(),
    }
}
