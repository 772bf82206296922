//! The configuration checked and built: every problem into one list of
//! [`ConfigError`]s (with JSON paths), every warning into one list of
//! [`Warning`]s, and the parts built by the modules that own them.

use super::raw::*;
use super::*;

#[derive(Default)]
pub(super) struct Validator {
    pub(super) errors: Vec<ConfigError>,
    pub(super) warnings: Vec<Warning>,
}

impl Validator {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.into(),
            message: message.into(),
        });
    }

    // Not inlined into `Config::parse`: two smaller compile zones for V8.
    #[inline(never)]
    pub(super) fn config(&mut self, raw: RawConfig) -> Config {
        if raw.providers.len() > MAX_PROVIDERS {
            self.err("providers", format!("at most {MAX_PROVIDERS} providers"));
        }
        if raw.rules.len() > MAX_RULES {
            self.err("rules", format!("at most {MAX_RULES} rules"));
        }
        let mut providers = Vec::with_capacity(raw.providers.len());
        for (name, p) in raw.providers {
            if let Some(p) = self.provider(name, p) {
                providers.push(p);
            }
        }
        let names: Vec<String> = providers.iter().map(|p| p.name.clone()).collect();
        let default_mode = raw.mode.map_or(Mode::Enforce, |m| m.0);
        let requirement_map =
            self.requirement_table("requirement_map", raw.requirement_map, &names);
        let filter_state_rules = raw.filter_state_rules.map(|f| {
            if f.name.is_empty() || f.name.contains('\0') {
                self.err("filter_state_rules.name", "name is empty or has a NUL byte");
            }
            FilterStateRules {
                name: f.name,
                requires: self.requirement_table("filter_state_rules.requires", f.requires, &names),
            }
        });
        let route_metadata_namespace = raw.route_metadata_namespace.filter(|ns| {
            let ok = !ns.is_empty() && !ns.contains('\0');
            if !ok {
                self.err(
                    "route_metadata_namespace",
                    "namespace is empty or has a NUL byte",
                );
            }
            ok
        });
        let mut rules = Vec::with_capacity(raw.rules.len());
        let mut rule_names: Vec<String> = Vec::new();
        for (i, r) in raw.rules.into_iter().enumerate() {
            let path = format!("rules[{i}]");
            let matcher = matcher_build::route_match(
                &format!("{path}.match"),
                r.route,
                &mut self.errors,
                &mut self.warnings,
            );
            let has_requires = r.requires.is_some() || r.requirement_name.is_some();
            let requirement = match (r.requires, r.requirement_name) {
                (Some(_), Some(_)) => {
                    self.err(&path, "set only one of requires and requirement_name");
                    None
                }
                (Some(req), None) => self.requirement(&format!("{path}.requires"), req, &names, 0),
                (None, Some(name)) => match requirement_map.get(&name) {
                    Some(req) => req.clone(),
                    None => {
                        self.err(
                            format!("{path}.requirement_name"),
                            format!("{name:?} is not in requirement_map"),
                        );
                        None
                    }
                },
                (None, None) => None,
            };
            let authz = crate::authz::validate(
                &path,
                r.required_scopes,
                r.required_claims,
                r.audiences,
                has_requires,
                &mut self.errors,
            );
            let mode = r.mode.map_or(default_mode, |m| m.0);
            let name = r.name.filter(|n| self.rule_name(&path, n, &rule_names));
            rule_names.extend(name.clone());
            if let Some(matcher) = matcher {
                rules.push(Rule {
                    matcher,
                    requirement,
                    authz,
                    mode,
                    name,
                });
            }
        }
        let mut sanitize: Vec<String> = Vec::new();
        for p in &providers {
            for h in p
                .claim_headers
                .iter()
                .map(|c| &c.header)
                .chain(p.payload_header.iter())
            {
                if !sanitize.contains(h) {
                    sanitize.push(h.clone());
                }
            }
        }
        let status_header = raw
            .status_header
            .and_then(|h| self.written_header("status_header", &h));
        if let Some(h) = &status_header {
            if !sanitize.contains(h) {
                sanitize.push(h.clone());
            }
        }
        let stat_prefix = raw
            .stat_prefix
            .unwrap_or_else(|| crate::metrics::DEFAULT_STAT_PREFIX.to_string());
        if let Err(e) = crate::metrics::check_prefix(&stat_prefix) {
            self.err("stat_prefix", e);
        }
        let dpop_replay =
            replay::ReplaySettings::for_providers(providers.iter().filter_map(|p| p.dpop.as_ref()));
        Config {
            dpop_replay,
            requirement_map,
            filter_state_rules,
            strip_failure_response: raw.strip_failure_response,
            route_metadata_namespace,
            default_mode,
            providers,
            rules,
            bypass_cors_preflight: raw.bypass_cors_preflight,
            sanitize_headers: sanitize,
            warnings: std::mem::take(&mut self.warnings),
            status_header,
            stat_prefix,
            host_crypto: raw.host_crypto.unwrap_or(true),
            filter_state: raw.filter_state,
            decision_histogram: raw.decision_histogram.unwrap_or(true),
            decision_log_format: raw.decision_log_format.map(|f| f.0).unwrap_or_default(),
        }
    }

    /// A rule `name`: a metric label value, so `[A-Za-z0-9_-]{1,64}`, unique.
    fn rule_name(&mut self, path: &str, name: &str, seen: &[String]) -> bool {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            self.err(
                format!("{path}.name"),
                format!("invalid rule name {name:?}: use 1 to 64 characters of [A-Za-z0-9_-]"),
            );
        } else if seen.iter().any(|s| s == name) {
            self.err(
                format!("{path}.name"),
                format!("rule name {name:?} is used by an earlier rule"),
            );
        }
        ok && !seen.iter().any(|s| s == name)
    }

    /// A map of named requirements; an empty requirement (`{}`) needs no JWT.
    fn requirement_table(
        &mut self,
        path: &str,
        raw: BTreeMap<String, RawRequirement>,
        providers: &[String],
    ) -> BTreeMap<String, Option<Requirement>> {
        if raw.len() > MAX_RULES {
            self.err(path, format!("at most {MAX_RULES} entries"));
        }
        let mut out = BTreeMap::new();
        for (name, req) in raw {
            let p = format!("{path}.{name}");
            if name.is_empty() {
                self.err(path, "name is empty");
            }
            let empty = req.provider_name.is_none()
                && req.provider_and_audiences.is_none()
                && req.requires_any.is_none()
                && req.requires_all.is_none()
                && req.allow_missing.is_none()
                && req.allow_missing_or_failed.is_none()
                && req.extract_only_without_validation.is_none();
            let value = if empty {
                None
            } else {
                self.requirement(&p, req, providers, 0)
            };
            out.insert(name, value);
        }
        out
    }

    fn provider(&mut self, name: String, raw: RawProvider) -> Option<Provider> {
        let path = format!("providers.{name}");
        let before = self.errors.len();
        if name.is_empty() {
            self.err("providers", "provider name is empty");
        }
        if let Some(iss) = &raw.issuer {
            if iss.is_empty() {
                self.err(
                    format!("{path}.issuer"),
                    "issuer is empty; omit it to accept any issuer",
                );
            }
        }
        for (i, a) in raw.audiences.iter().enumerate() {
            if a.is_empty() {
                self.err(format!("{path}.audiences[{i}]"), "audience is empty");
            }
        }

        let mut allowed_algs = match &raw.allowed_algorithms {
            None => Alg::ALL.to_vec(),
            Some(list) if list.is_empty() => {
                self.err(format!("{path}.allowed_algorithms"), "list is empty");
                Vec::new()
            }
            Some(list) => list.iter().map(|a| a.0).collect(),
        };

        let keys = match (raw.local_jwks, raw.remote_jwks) {
            (None, None) => {
                self.err(
                    path.clone(),
                    "provider has no key source: set local_jwks.inline_string or remote_jwks",
                );
                None
            }
            (Some(_), Some(_)) => {
                self.err(path.clone(), "set only one of local_jwks and remote_jwks");
                None
            }
            (None, Some(remote)) => {
                if raw.allowed_algorithms.is_none() {
                    allowed_algs.retain(|a| !a.is_hmac());
                } else if allowed_algs.iter().any(|a| a.is_hmac()) {
                    self.err(
                        format!("{path}.allowed_algorithms"),
                        "HS* algorithms are only allowed with local_jwks: a shared secret must not travel in a fetched JWKS",
                    );
                }
                crate::remote_jwks::remote_jwks(
                    &format!("{path}.remote_jwks"),
                    remote,
                    raw.issuer.as_deref(),
                    &mut self.errors,
                )
                .map(KeySource::Remote)
            }
            (Some(ds), None) => match ds.inline_string {
                None if ds.filename.is_some() => {
                    self.err(
                        format!("{path}.local_jwks.filename"),
                        "a wasm filter cannot read files; put the JWKS in inline_string \
                         (jwt-filter-check convert inlines the file)",
                    );
                    None
                }
                None => {
                    self.err(format!("{path}.local_jwks"), "inline_string is required");
                    None
                }
                Some(text) => match KeySet::parse(&text) {
                    Ok((set, warnings)) => {
                        for w in warnings {
                            self.warnings.push(Warning::new(
                                Kind::SkippedKey,
                                format!("{path}.local_jwks"),
                                format!("skipped key: {w}"),
                            ));
                        }
                        if !set
                            .keys()
                            .iter()
                            .any(|k| allowed_algs.iter().any(|a| k.fits(*a)))
                        {
                            self.err(
                                format!("{path}.local_jwks.inline_string"),
                                "no key in the JWKS can verify any allowed algorithm",
                            );
                        }
                        Some(KeySource::Local(set))
                    }
                    Err(e) => {
                        self.err(format!("{path}.local_jwks.inline_string"), e);
                        None
                    }
                },
            },
        };

        crate::warning::of_provider_settings(
            &path,
            raw.require_expiration,
            raw.clock_skew_seconds,
            [
                !raw.from_headers.is_empty(),
                !raw.from_params.is_empty(),
                !raw.from_cookies.is_empty(),
            ],
            &mut self.warnings,
        );
        let mut locations = extract::build::locations(
            &path,
            &raw.from_headers,
            &raw.from_params,
            &raw.from_cookies,
            &mut self.errors,
        );

        let payload_header = if raw.forward_payload_header.is_empty() {
            None
        } else {
            self.written_header(
                &format!("{path}.forward_payload_header"),
                &raw.forward_payload_header,
            )
        };
        let mut claim_headers = Vec::new();
        for (i, c) in raw.claim_to_headers.iter().enumerate() {
            let cpath = format!("{path}.claim_to_headers[{i}]");
            let header = self.written_header(&format!("{cpath}.header_name"), &c.header_name);
            let segments: Vec<String> = c.claim_name.split('.').map(str::to_string).collect();
            if c.claim_name.is_empty() || segments.iter().any(String::is_empty) {
                self.err(
                    format!("{cpath}.claim_name"),
                    "claim name is empty or has an empty segment",
                );
            } else if segments.len() > MAX_CLAIM_PATH_SEGMENTS {
                self.err(
                    format!("{cpath}.claim_name"),
                    "claim name is nested too deeply",
                );
            } else if let Some(header) = header {
                claim_headers.push(ClaimHeader {
                    header,
                    claim_path: segments,
                });
            }
        }

        let max_lifetime_secs = match &raw.max_lifetime {
            None => None,
            Some(d) => match diag::parse_duration_ms(d) {
                Ok(0) => {
                    self.err(format!("{path}.max_lifetime"), "must be greater than 0s");
                    None
                }
                Ok(ms) => Some(ms.div_ceil(1000)),
                Err(e) => {
                    self.err(format!("{path}.max_lifetime"), e);
                    None
                }
            },
        };

        for (field, set) in [
            ("payload_in_metadata", raw.payload_in_metadata.is_some()),
            ("header_in_metadata", raw.header_in_metadata.is_some()),
            (
                "failed_status_in_metadata",
                raw.failed_status_in_metadata.is_some(),
            ),
            (
                "normalize_payload_in_metadata",
                raw.normalize_payload_in_metadata.is_some(),
            ),
        ] {
            if set {
                self.err(
                    format!("{path}.{field}"),
                    "a wasm filter cannot write dynamic metadata; set filter_state: true \
                     instead (the verified payload is then filter state wasm.jwt_filter_payload)",
                );
            }
        }
        let subjects = raw.subjects.and_then(|m| {
            matcher_build::string_matcher(&format!("{path}.subjects"), m, &mut self.errors)
        });
        let dpop = raw.dpop.and_then(|d| {
            dpop::build::settings(
                &format!("{path}.dpop"),
                d,
                raw.clock_skew_seconds,
                &mut self.errors,
            )
        });
        let cert_binding = raw.certificate_binding.map_or(BindingMode::Off, |m| m.0);
        if dpop.is_some() && !locations.iter().any(dpop::is_dpop_location) {
            // A DPoP-bound token arrives as `Authorization: DPoP <token>`.
            locations.insert(0, dpop::dpop_location());
        }

        let jwt_cache_size = match &raw.jwt_cache_config {
            None => crate::token_cache::DEFAULT_ENTRIES,
            Some(c) if c.disabled => 0,
            Some(c) if c.jwt_cache_size == 0 => crate::token_cache::DEFAULT_ENTRIES,
            Some(c) if c.jwt_cache_size as usize > crate::token_cache::MAX_ENTRIES => {
                self.err(
                    format!("{path}.jwt_cache_config.jwt_cache_size"),
                    format!("at most {}", crate::token_cache::MAX_ENTRIES),
                );
                0
            }
            Some(c) => c.jwt_cache_size as usize,
        };

        #[cfg(feature = "revocation")]
        let revocation = raw.revocation.and_then(|r| {
            crate::revocation::build::settings(
                &format!("{path}.revocation"),
                &name,
                r,
                max_lifetime_secs,
                &mut self.errors,
            )
        });
        #[cfg(not(feature = "revocation"))]
        if raw.revocation.is_some() {
            self.err(
                format!("{path}.revocation"),
                "this build of the filter has no revocation feeds (built without the \
                 `revocation` feature): use the default build",
            );
        }

        if self.errors.len() != before {
            return None;
        }
        Some(Provider {
            name,
            issuer: raw.issuer,
            audiences: raw.audiences,
            keys: keys?,
            locations,
            forward: raw.forward,
            payload_header,
            pad_payload_header: raw.pad_forward_payload_header,
            claim_headers,
            clock_skew_secs: u64::from(raw.clock_skew_seconds.unwrap_or(60)),
            max_lifetime_secs,
            require_expiration: raw.require_expiration,
            allowed_algs,
            jwt_cache_size,
            subjects,
            dpop,
            cert_binding,
            require_access_token_type: raw.require_access_token_type,
            reject_future_iat: raw.reject_future_iat,
            #[cfg(feature = "revocation")]
            revocation,
        })
    }

    /// A header the filter writes: valid, lowercased, not reserved.
    fn written_header(&mut self, path: &str, name: &str) -> Option<String> {
        match header_name(name) {
            Ok(n) if reserved_header(&n) || n == "authorization" || n == "cookie" => {
                self.err(path, format!("the filter may not write header {n:?}"));
                None
            }
            Ok(n) => Some(n),
            Err(e) => {
                self.err(path, e);
                None
            }
        }
    }

    fn requirement(
        &mut self,
        path: &str,
        raw: RawRequirement,
        providers: &[String],
        depth: usize,
    ) -> Option<Requirement> {
        if depth >= MAX_REQUIREMENT_DEPTH {
            self.err(
                path,
                format!("requirements nested deeper than {MAX_REQUIREMENT_DEPTH}"),
            );
            return None;
        }
        if raw.extract_only_without_validation.is_some() {
            self.err(
                format!("{path}.extract_only_without_validation"),
                "refused: it forwards claims of tokens that are not verified; use \
                 allow_missing_or_failed with the provider instead (claims are forwarded \
                 only from verified tokens)",
            );
            return None;
        }
        let set = [
            raw.provider_name.is_some(),
            raw.provider_and_audiences.is_some(),
            raw.requires_any.is_some(),
            raw.requires_all.is_some(),
            raw.allow_missing_or_failed.is_some(),
            raw.allow_missing.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if set != 1 {
            self.err(
                path,
                "a requirement sets exactly one of provider_name, provider_and_audiences, \
                 requires_any, requires_all, allow_missing, allow_missing_or_failed",
            );
            return None;
        }
        let lookup = |v: &mut Self, p: &str, name: &str| -> Option<usize> {
            let idx = providers.iter().position(|n| n == name);
            if idx.is_none() {
                v.err(p, format!("unknown provider {name:?}"));
            }
            idx
        };
        if let Some(name) = raw.provider_name {
            return lookup(self, &format!("{path}.provider_name"), &name).map(|provider| {
                Requirement::Provider {
                    provider,
                    audiences: None,
                }
            });
        }
        if let Some(pa) = raw.provider_and_audiences {
            let p = format!("{path}.provider_and_audiences");
            if pa.audiences.iter().any(String::is_empty) {
                self.err(format!("{p}.audiences"), "audience is empty");
            }
            return lookup(self, &format!("{p}.provider_name"), &pa.provider_name).map(
                |provider| Requirement::Provider {
                    provider,
                    audiences: Some(pa.audiences),
                },
            );
        }
        let list = |v: &mut Self, p: String, l: RawRequirementList| -> Option<Vec<Requirement>> {
            if l.requirements.len() < 2 {
                v.err(format!("{p}.requirements"), "needs at least 2 requirements");
            }
            let before = v.errors.len();
            let out: Vec<Requirement> = l
                .requirements
                .into_iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    v.requirement(&format!("{p}.requirements[{i}]"), r, providers, depth + 1)
                })
                .collect();
            (v.errors.len() == before).then_some(out)
        };
        if let Some(l) = raw.requires_any {
            return list(self, format!("{path}.requires_any"), l).map(Requirement::Any);
        }
        if let Some(l) = raw.requires_all {
            return list(self, format!("{path}.requires_all"), l).map(Requirement::All);
        }
        if raw.allow_missing_or_failed.is_some() {
            return Some(Requirement::AllowMissingOrFailed);
        }
        Some(Requirement::AllowMissing)
    }
}
