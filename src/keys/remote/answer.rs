//! A fetch's answer: the JWKS (or the discovery document) checked, installed
//! in shared data for every worker, or the failure recorded and retried.

use super::*;

impl KeyLifecycle {
    /// The answer to a call this VM dispatched (`token`), `body_size` bytes
    /// of body; the host delivers its headers and body. Returns the requests
    /// to decide again (empty when the token is not one of ours). Not inlined
    /// into the glue's fetch callback (a smaller compile zone for V8).
    #[inline(never)]
    pub fn on_fetch_response(
        &mut self,
        host: &mut impl KeyHost,
        now: u64,
        token: u32,
        body_size: usize,
    ) -> Vec<Parked> {
        let Some((idx, kind)) = self.take_in_flight(token) else {
            return Vec::new();
        };
        let config = self.config.clone();
        let (Some(r), Some(p)) = (remote_of(&config, idx), config.providers.get(idx)) else {
            return Vec::new();
        };
        let status = host.response_header(":status");
        let cache_control = host.response_header("cache-control");
        let retry_after = if store::is_throttled(status.as_deref()) {
            host.response_header("retry-after")
                .and_then(|v| store::parse_retry_after(&v, now))
        } else {
            None
        };
        // An oversized body is never read into the VM.
        let body = if body_size > MAX_JWKS_BYTES {
            Err(body_size)
        } else {
            Ok(host.response_body(body_size))
        };
        if kind == FetchKind::Discovery {
            let found = match &body {
                Ok(b) => store::discovered_jwks_uri(status.as_deref(), b, p.issuer.as_deref()),
                Err(_) => store::discovery_status(status.as_deref())
                    .and(Err("discovery document exceeds the size limit".to_string())),
            };
            match found {
                Ok(uri) => {
                    host.log(
                        Level::Info,
                        &format!("jwt_filter: provider {}: discovered jwks_uri {uri}", p.name),
                    );
                    if let Some(why) =
                        crate::warning::discovered_uri_problem(&uri, p.issuer.as_deref())
                    {
                        host.log(
                            Level::Warn,
                            &format!(
                                "jwt_filter: warning: providers.{}.remote_jwks.oidc_discovery: \
                                 the discovered jwks_uri {uri} is used although {why} [{}]",
                                p.name,
                                crate::warning::Kind::DiscoveryUntrusted
                            ),
                        );
                        if let Some(slot) = self.providers.get(idx) {
                            slot.metrics.on_discovery_untrusted(host);
                        }
                    }
                    host.shared_set(&discovered_key(r), uri.as_bytes(), None);
                    self.start_fetch(host, idx, now);
                    return Vec::new();
                }
                Err(e) => {
                    host.log(
                        Level::Warn,
                        &format!(
                            "jwt_filter: provider {}: OIDC discovery at {} failed: {e}",
                            p.name, r.uri
                        ),
                    );
                    self.record_failure(host, idx, now, retry_after);
                    return self.take_ready(host, now);
                }
            }
        }
        let checked = match &body {
            Ok(b) => store::validate_response(status.as_deref(), b, &p.allowed_algs),
            Err(size) => store::jwks_status(status.as_deref()).and(Err(store::too_large(*size))),
        };
        match checked {
            Ok((set, warnings)) => {
                for w in warnings {
                    host.log(
                        Level::Warn,
                        &format!("jwt_filter: provider {}: JWKS key skipped: {w}", p.name),
                    );
                }
                host.shared_set(&r.shared_key, body.as_deref().unwrap_or_default(), None);
                if let Some(slot) = self.providers.get(idx) {
                    slot.metrics.on_jwks_fetch(host, true);
                }
                self.keys_fetched(host, idx, r, &set, now);
                let max_age = cache_control.as_deref().and_then(store::parse_max_age);
                let (schedule, seed) = (self.schedule, self.seed);
                update_meta(host, r, |m| {
                    m.after_success(r, now, max_age, schedule, store::mix(seed, m.attempts))
                });
                let (meta, _) = read_meta(host, r);
                host.log(
                    Level::Info,
                    &format!(
                        "jwt_filter: provider {}: fetched {} key(s) from {} (version {})",
                        p.name,
                        set.len(),
                        r.uri,
                        meta.version
                    ),
                );
                if let Some(slot) = self.providers.get_mut(idx) {
                    slot.keys = RemoteKeys::Ready(Rc::new(set));
                    slot.installed = meta.version;
                }
                self.install_if_newer(host, idx, &meta, now); // the gauges
            }
            Err(e) => {
                let (meta, _) = read_meta(host, r);
                host.log(
                    Level::Warn,
                    &format!(
                        "jwt_filter: provider {}: JWKS fetch from {} failed (failure {} in a row): {e}; {}",
                        p.name,
                        r.uri,
                        meta.failures + 1,
                        if meta.has_keys() {
                            "keeping the last good keys"
                        } else {
                            "no keys yet"
                        }
                    ),
                );
                if r.oidc_discovery {
                    // The IdP may have moved its keys: discover again next time.
                    host.shared_set(&discovered_key(r), b"", None);
                }
                self.record_failure(host, idx, now, retry_after);
            }
        }
        self.take_ready(host, now)
    }

    /// After this VM fetched `set`: updates the shared record of when each
    /// key was first seen, and counts the keys added and removed.
    pub(super) fn keys_fetched(
        &self,
        host: &mut impl KeyHost,
        idx: usize,
        r: &RemoteJwks,
        set: &KeySet,
        now: u64,
    ) {
        let Some(metrics) = self.providers.get(idx).map(|p| &p.metrics) else {
            return;
        };
        let key = history_key(r);
        let ids = history::key_ids(set);
        for _ in 0..8 {
            let (bytes, cas) = host.shared_get(&key);
            let old = KeyHistory::decode(bytes.as_deref().unwrap_or_default());
            let (new, change) = old.update(&ids, now);
            if host.shared_set(&key, new.encode().as_bytes(), cas) {
                metrics.on_keys_changed(host, change.added, change.removed);
                metrics.set_oldest_key(new.oldest());
                return;
            }
        }
    }
}
