//! One Envoy as the native tests of the key lifecycle and the revocation
//! feeds see it: its shared data (with proxy-wasm's compare-and-swap rules),
//! the HTTP calls dispatched (each with the next token), the response being
//! delivered (set by the test before it hands the token back), the log lines
//! and the metrics. Test code only.

use std::cell::Cell;

use crate::fake_shared::FakeSharedData;
use crate::keys::remote::{FetchRequest, KeyHost, Level};
use crate::metrics::{stat_name, MetricHost, MetricKind};
use crate::revocation_feeds::{FeedCall, FeedHost};
use crate::shared_data::SharedData;
use crate::testutil::MetricRecorder;

#[derive(Default)]
pub struct FakeHost {
    pub shared: FakeSharedData,
    pub next_token: u32,
    /// Dispatched calls, in order: (token, call). A key fetch is recorded as
    /// the `GET` the glue sends for it.
    pub calls: Vec<(u32, FeedCall)>,
    /// When set, every dispatch fails with this status.
    pub refuse_dispatch: Option<String>,
    /// The response being delivered: status, headers, body.
    pub status: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// How many times the body was read.
    pub body_reads: Cell<usize>,
    pub logs: Vec<(Level, String)>,
    pub metrics: MetricRecorder,
}

impl SharedData for FakeHost {
    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.shared.get(key)
    }
    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        self.shared.set(key, value, cas)
    }
}

impl MetricHost for FakeHost {
    fn define(&mut self, kind: MetricKind, name: &str) -> Option<u32> {
        self.metrics.define(kind, name)
    }
    fn increment(&self, id: u32, delta: i64) {
        self.metrics.increment(id, delta);
    }
    fn record(&self, id: u32, value: u64) {
        self.metrics.record(id, value);
    }
}

impl KeyHost for FakeHost {
    fn dispatch(&mut self, request: &FetchRequest) -> Result<u32, String> {
        self.dispatch_call(&FeedCall {
            request: request.clone(),
            method: "GET",
            headers: Vec::new(),
            body: Vec::new(),
        })
    }
    fn response_header(&self, name: &str) -> Option<String> {
        if name == ":status" {
            return self.status.clone();
        }
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
    fn response_body(&self, size: usize) -> Vec<u8> {
        self.body_reads.set(self.body_reads.get() + 1);
        self.body.iter().copied().take(size).collect()
    }
    fn log(&mut self, level: Level, message: &str) {
        self.logs.push((level, message.to_string()));
    }
}

impl FeedHost for FakeHost {
    fn dispatch_call(&mut self, call: &FeedCall) -> Result<u32, String> {
        if let Some(status) = &self.refuse_dispatch {
            return Err(status.clone());
        }
        self.next_token += 1;
        self.calls.push((self.next_token, call.clone()));
        Ok(self.next_token)
    }
}

impl FakeHost {
    /// Sets the response the next delivery hands over (no headers).
    pub fn answer(&mut self, status: Option<&str>, body: &str) {
        self.answer_with(status, &[], body);
    }
    /// Sets the response the next delivery hands over, with headers.
    pub fn answer_with(&mut self, status: Option<&str>, headers: &[(&str, &str)], body: &str) {
        self.status = status.map(str::to_string);
        self.headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.body = body.as_bytes().to_vec();
    }
    /// The last call dispatched (panics without one).
    pub fn last_call(&self) -> (u32, FeedCall) {
        self.calls.last().cloned().expect("a call was dispatched")
    }
    /// The last call dispatched, as the fetch it carries.
    pub fn last_fetch(&self) -> (u32, FetchRequest) {
        let (token, call) = self.last_call();
        (token, call.request)
    }
    /// A counter by its full stat name (0 when never touched).
    pub fn counter(&self, name: &str) -> i64 {
        self.metrics.value(name).unwrap_or(0)
    }
    /// A counter of the default stat prefix by name and labels.
    pub fn counter_labeled(&self, name: &str, labels: &[(&str, &str)]) -> i64 {
        self.counter(&stat_name("jwt_filter", name, labels))
    }
    /// A gauge by its full stat name, if it was set.
    pub fn gauge(&self, name: &str) -> Option<u64> {
        self.metrics.value(name).map(|v| v as u64)
    }
    /// Whether a log line contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.logs.iter().any(|(_, l)| l.contains(needle))
    }
}

#[cfg(test)]
mod tests;
