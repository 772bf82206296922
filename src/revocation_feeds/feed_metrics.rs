//! Each feed's metrics: list age and entries, polls by result, rules refused;
//! for SSF, events by result and SETs rejected by reason.

use super::*;

/// One feed's metric ids.
#[derive(Clone, Debug, Default)]
pub struct FeedIds {
    pub age_seconds: Option<u32>,
    pub entries: Option<u32>,
    pub poll_success: Option<u32>,
    pub poll_not_modified: Option<u32>,
    pub poll_failure: Option<u32>,
    pub poll_refused: Option<u32>,
    pub rules_refused: Option<u32>,
    /// SSF only.
    pub events_applied: Option<u32>,
    pub events_ignored: Option<u32>,
    pub sets_rejected: Vec<Option<u32>>,
}

pub(super) fn inc(host: &dyn MetricHost, id: Option<u32>, n: usize) {
    if let (Some(id), true) = (id, n > 0) {
        host.increment(id, i64::try_from(n).unwrap_or(i64::MAX));
    }
}

impl FeedIds {
    pub(super) fn define(
        host: &mut dyn MetricHost,
        prefix: &str,
        provider: &str,
        source: Source,
    ) -> FeedIds {
        let f = source.name();
        let p = [("provider", provider)];
        let mut def = |kind, name: &str, labels: &[(&str, &str)]| {
            host.define(kind, &stat_name(prefix, name, labels))
        };
        use MetricKind::{Counter as C, Gauge as G};
        let polls = format!("revocation_{f}_polls_total");
        let result = |r| [("provider", provider), ("result", r)];
        let mut ids = FeedIds {
            age_seconds: def(G, &format!("revocation_{f}_age_seconds"), &p),
            entries: def(G, &format!("revocation_{f}_entries"), &p),
            poll_success: def(C, &polls, &result("success")),
            poll_not_modified: def(C, &polls, &result("not_modified")),
            poll_failure: def(C, &polls, &result("failure")),
            poll_refused: def(C, &polls, &result("refused")),
            rules_refused: def(C, &format!("revocation_{f}_rules_refused_total"), &p),
            ..FeedIds::default()
        };
        if source == Source::Ssf {
            let events = "revocation_ssf_events_total";
            ids.events_applied = def(C, events, &result("applied"));
            ids.events_ignored = def(C, events, &result("ignored"));
            for r in Reject::ALL {
                ids.sets_rejected.push(def(
                    C,
                    "revocation_ssf_sets_rejected_total",
                    &[("provider", provider), ("reason", r.reason())],
                ));
            }
        }
        ids
    }
}

/// Every revocation metric name of a configuration (for docs and tests).
pub fn metric_names(config: &Config) -> Vec<(MetricKind, String)> {
    struct Names(Vec<(MetricKind, String)>);
    impl MetricHost for Names {
        fn define(&mut self, kind: MetricKind, name: &str) -> Option<u32> {
            self.0.push((kind, name.to_string()));
            None
        }
        fn increment(&self, _: u32, _: i64) {}
        fn record(&self, _: u32, _: u64) {}
    }
    let mut host = Names(Vec::new());
    let _ = RevocationFeeds::new(config, &mut host, 1, 0);
    host.0
}
