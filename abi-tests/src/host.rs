//! The fake proxy-wasm host's state: what Envoy keeps for one VM (header
//! maps per stream, properties, shared data, metrics, HTTP calls, the clock,
//! the configuration buffers) and what the tests read back (local replies,
//! resumed streams, logs). Plain data: the ABI functions that read and write
//! it are in [`crate::linker`].

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// proxy-wasm ABI 0.2.1 status codes.
pub mod status {
    pub const OK: u32 = 0;
    pub const NOT_FOUND: u32 = 1;
    pub const BAD_ARGUMENT: u32 = 2;
    pub const SERIALIZATION_FAILURE: u32 = 3;
    pub const PARSE_FAILURE: u32 = 4;
    pub const EMPTY: u32 = 7;
    pub const CAS_MISMATCH: u32 = 8;
    pub const INTERNAL_FAILURE: u32 = 10;
    pub const UNIMPLEMENTED: u32 = 12;
}

/// proxy-wasm map types.
pub mod map_type {
    pub const REQUEST_HEADERS: u32 = 0;
    pub const REQUEST_TRAILERS: u32 = 1;
    pub const RESPONSE_HEADERS: u32 = 2;
    pub const RESPONSE_TRAILERS: u32 = 3;
    pub const GRPC_RECEIVE_INITIAL_METADATA: u32 = 4;
    pub const GRPC_RECEIVE_TRAILING_METADATA: u32 = 5;
    pub const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
    pub const HTTP_CALL_RESPONSE_TRAILERS: u32 = 7;
}

/// proxy-wasm buffer types.
pub mod buffer_type {
    pub const HTTP_REQUEST_BODY: u32 = 0;
    pub const HTTP_RESPONSE_BODY: u32 = 1;
    pub const DOWNSTREAM_DATA: u32 = 2;
    pub const UPSTREAM_DATA: u32 = 3;
    pub const HTTP_CALL_RESPONSE_BODY: u32 = 4;
    pub const GRPC_RECEIVE_BUFFER: u32 = 5;
    pub const VM_CONFIGURATION: u32 = 6;
    pub const PLUGIN_CONFIGURATION: u32 = 7;
}

/// An ordered header map; values are bytes (a real Envoy can hold
/// non-UTF-8 values).
pub type HeaderMap = Vec<(String, Vec<u8>)>;

/// One stream (an HTTP context) as Envoy keeps it.
#[derive(Clone, Debug, Default)]
pub struct Stream {
    pub request_headers: HeaderMap,
    pub request_trailers: HeaderMap,
    pub response_headers: HeaderMap,
    pub response_trailers: HeaderMap,
    /// `proxy_send_local_response` on this stream.
    pub local_response: Option<LocalResponse>,
    /// `proxy_continue_stream` calls (stream type each: 0 request).
    pub continued: Vec<u32>,
    /// `proxy_set_property` on this stream (filter state), path joined by '.'.
    pub properties_set: BTreeMap<String, Vec<u8>>,
}

/// A local reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u32,
    pub details: Vec<u8>,
    pub body: Vec<u8>,
    pub headers: HeaderMap,
    pub grpc_status: i32,
}

impl LocalResponse {
    /// First value of a header (case-insensitive name), lossy UTF-8.
    pub fn header(&self, name: &str) -> Option<String> {
        find(&self.headers, name)
    }
}

/// First value of `name` (case-insensitive) in a map, lossy UTF-8.
pub fn find(map: &HeaderMap, name: &str) -> Option<String> {
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

/// A `proxy_http_call` the module made.
#[derive(Clone, Debug)]
pub struct HttpCall {
    pub token: u32,
    /// The context that was current when it was dispatched (Envoy answers there).
    pub context_id: u32,
    pub upstream: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub timeout_ms: u32,
    /// Set once the test delivered its answer.
    pub answered: bool,
    /// Envoy cancels the calls of a context that is destroyed: never answered.
    pub cancelled: bool,
}

impl HttpCall {
    pub fn header(&self, name: &str) -> Option<String> {
        find(&self.headers, name)
    }
}

/// The answer the module reads during `proxy_on_http_call_response`.
#[derive(Clone, Debug, Default)]
pub struct CallResponse {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
}

/// A metric as Envoy's stats store keeps it.
#[derive(Clone, Debug)]
pub struct Metric {
    /// 0 counter, 1 gauge, 2 histogram.
    pub kind: u32,
    pub name: String,
    /// Counter and gauge value.
    pub value: i64,
    /// Histogram samples.
    pub samples: Vec<u64>,
}

/// What `verify_signature` (Envoy's host crypto) does here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForeignCrypto {
    /// No such foreign function (an Envoy before 1.31): status NotFound.
    Absent,
    /// Verifies RSA PKCS#1 v1.5 signatures for real (`crate::crypto`);
    /// answers `result: false` for everything else, as a host that cannot.
    Rsa,
}

/// Hostile answers: which host functions misbehave, and how.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Host function name (e.g. `proxy_get_property`) -> status it returns
    /// without doing anything.
    pub status: HashMap<String, u32>,
    /// Bytes `proxy_get_header_map_pairs` returns (status Ok) for every map.
    pub header_map_pairs: Option<Vec<u8>>,
    /// Bytes every `proxy_get_property` returns (status Ok).
    pub property: Option<Vec<u8>>,
    /// Bytes every `proxy_get_header_map_value` returns (status Ok).
    pub header_map_value: Option<Vec<u8>>,
    /// Bytes every `proxy_get_buffer_bytes` of an HTTP call answer returns.
    pub call_body: Option<Vec<u8>>,
    /// Bytes `proxy_call_foreign_function` returns (status Ok).
    pub foreign_result: Option<Vec<u8>>,
    /// Bytes and CAS every `proxy_get_shared_data` returns (status Ok).
    pub shared_data: Option<(Vec<u8>, u32)>,
    /// Value `proxy_get_current_time_nanoseconds` writes (status Ok).
    pub time: Option<u64>,
}

/// Envoy's shared data, one map for every VM of the process.
pub type SharedData = Rc<RefCell<HashMap<String, (Vec<u8>, u32)>>>;

/// The whole host side of one VM.
#[derive(Debug)]
pub struct HostState {
    pub vm_config: Vec<u8>,
    pub plugin_config: Vec<u8>,
    /// The root context's id.
    pub root_id: u32,
    /// The context whose callback runs (or that `proxy_set_effective_context` chose).
    pub current_context: u32,
    pub streams: HashMap<u32, Stream>,
    /// Properties by path (segments joined with NUL, as the ABI sends them).
    pub properties: HashMap<Vec<u8>, Vec<u8>>,
    /// Properties set outside any stream (root context).
    pub root_properties_set: BTreeMap<String, Vec<u8>>,
    /// Shared data: key -> (value, cas). The CAS of a key starts at 1.
    /// One Envoy's VMs (one per worker) share it: see [`HostState::sharing_with`].
    pub shared: SharedData,
    pub queues: Vec<(String, Vec<Vec<u8>>)>,
    /// Last `proxy_set_tick_period_milliseconds` (0: no tick).
    pub tick_period_ms: u32,
    pub calls: Vec<HttpCall>,
    next_token: u32,
    /// The answer being delivered (during `proxy_on_http_call_response`).
    pub call_response: Option<CallResponse>,
    pub metrics: Vec<Metric>,
    pub logs: Vec<(u32, String)>,
    /// The level `proxy_get_log_level` reports (0 trace .. 5 critical).
    pub log_level: u32,
    /// The host clock, ns since the epoch.
    pub now_ns: u64,
    pub foreign: ForeignCrypto,
    /// `verify_signature` calls made.
    pub foreign_calls: u32,
    pub faults: Faults,
    /// What the module wrote to stdout / stderr (WASI `fd_write`).
    pub stdio: Vec<u8>,
    /// Host functions the module called, in order (name only).
    pub trace: Vec<&'static str>,
}

/// 2026-12-01T00:00:00Z: a fixed start for the host clock.
pub const START_NS: u64 = 1_796_083_200 * 1_000_000_000;

impl HostState {
    pub fn new(plugin_config: impl Into<Vec<u8>>) -> HostState {
        HostState {
            vm_config: Vec::new(),
            plugin_config: plugin_config.into(),
            root_id: 1,
            current_context: 0,
            streams: HashMap::new(),
            properties: HashMap::new(),
            root_properties_set: BTreeMap::new(),
            shared: SharedData::default(),
            queues: Vec::new(),
            tick_period_ms: 0,
            calls: Vec::new(),
            next_token: 1,
            call_response: None,
            metrics: Vec::new(),
            logs: Vec::new(),
            log_level: 2,
            now_ns: START_NS,
            foreign: ForeignCrypto::Absent,
            foreign_calls: 0,
            faults: Faults::default(),
            stdio: Vec::new(),
            trace: Vec::new(),
        }
    }

    /// Another VM (worker) of the same Envoy: the same shared data and
    /// configuration, the same clock.
    pub fn sharing_with(other: &HostState) -> HostState {
        let mut h = HostState::new(other.plugin_config.clone());
        h.shared = other.shared.clone();
        h.now_ns = other.now_ns;
        h.foreign = other.foreign;
        h
    }

    /// The status a faulty host function returns instead of working.
    pub fn fault(&self, name: &str) -> Option<u32> {
        self.faults.status.get(name).copied()
    }

    /// A property for the path `segments` (as the module asks for it).
    pub fn set_property(&mut self, segments: &[&str], value: impl Into<Vec<u8>>) {
        self.properties
            .insert(segments.join("\0").into_bytes(), value.into());
    }

    pub fn stream(&self, id: u32) -> Option<&Stream> {
        self.streams.get(&id)
    }

    pub fn current_stream(&mut self) -> Option<&mut Stream> {
        self.streams.get_mut(&self.current_context)
    }

    /// The map of a type for the current context (HTTP call answers are
    /// the one being delivered, whatever the context).
    pub fn map(&mut self, map_type: u32) -> Option<&mut HeaderMap> {
        match map_type {
            map_type::HTTP_CALL_RESPONSE_HEADERS => {
                self.call_response.as_mut().map(|r| &mut r.headers)
            }
            map_type::HTTP_CALL_RESPONSE_TRAILERS => {
                self.call_response.as_mut().map(|r| &mut r.trailers)
            }
            map_type::REQUEST_HEADERS => self.current_stream().map(|s| &mut s.request_headers),
            map_type::REQUEST_TRAILERS => self.current_stream().map(|s| &mut s.request_trailers),
            map_type::RESPONSE_HEADERS => self.current_stream().map(|s| &mut s.response_headers),
            map_type::RESPONSE_TRAILERS => self.current_stream().map(|s| &mut s.response_trailers),
            _ => None,
        }
    }

    /// Records a dispatched call; returns its token.
    pub fn add_call(&mut self, mut call: HttpCall) -> u32 {
        call.token = self.next_token;
        call.context_id = self.current_context;
        self.next_token += 1;
        let token = call.token;
        self.calls.push(call);
        token
    }

    /// Calls not answered (nor cancelled) yet.
    pub fn pending_calls(&self) -> Vec<HttpCall> {
        self.calls
            .iter()
            .filter(|c| !c.answered && !c.cancelled)
            .cloned()
            .collect()
    }

    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// The metric's value (0 when not defined).
    pub fn metric_value(&self, name: &str) -> i64 {
        self.metric(name).map(|m| m.value).unwrap_or(0)
    }

    /// Every log line, one per line, with its level.
    pub fn log_text(&self) -> String {
        self.logs
            .iter()
            .map(|(l, m)| format!("[{l}] {m}\n"))
            .collect()
    }
}
