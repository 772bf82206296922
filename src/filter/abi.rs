//! Every host function the filter calls (proxy-wasm ABI 0.2.1), in one place.
//!
//! Each import is declared with plain integers: a status or an enum value the
//! host returns is a number here, so no answer can be an invalid Rust enum.
//! Each wrapper returns `Result<_, Status>` (or nothing, where the caller has
//! nothing to do on failure) and never panics, whatever the host answers. A
//! buffer the host hands back is owned and freed here ([`host_buffer`]).
//!
//! The proxy-wasm Rust SDK's wrappers panic on statuses they do not expect, and
//! with `panic = "abort"` a panic kills the VM and every request it serves.

use std::ptr::{null, null_mut};

use crate::extract::serialize_pairs;

/// A host status (`0` is OK; see [`status`]).
pub type Status = u32;

/// Host statuses the filter tells apart.
pub mod status {
    pub const OK: u32 = 0;
    pub const NOT_FOUND: u32 = 1;
}

/// Log levels (`proxy_log`, `proxy_get_log_level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum LogLevel {
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

/// Header maps the filter reads or writes.
#[derive(Clone, Copy)]
#[repr(u32)]
pub enum MapType {
    HttpRequestHeaders = 0,
    HttpCallResponseHeaders = 6,
}

/// Buffers the filter reads.
#[derive(Clone, Copy)]
#[repr(u32)]
pub enum BufferType {
    HttpCallResponseBody = 4,
    PluginConfiguration = 7,
}

/// Metric kinds (`proxy_define_metric`).
#[derive(Clone, Copy)]
#[repr(u32)]
pub enum MetricType {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

/// What a request-headers callback tells the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Action {
    Continue = 0,
    Pause = 1,
}

/// `proxy_continue_stream`'s stream type for the HTTP request.
const STREAM_HTTP_REQUEST: u32 = 0;
/// `proxy_send_local_response`'s "not a gRPC reply".
const NO_GRPC_STATUS: i32 = -1;
/// `proxy_get_shared_data`'s CAS value for "no version".
const NO_CAS: u32 = 0;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    #[allow(clippy::too_many_arguments)]
    fn proxy_send_local_response(
        status_code: u32,
        details_data: *const u8,
        details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    #[allow(clippy::too_many_arguments)]
    fn proxy_http_call(
        upstream_data: *const u8,
        upstream_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        body_data: *const u8,
        body_size: usize,
        trailers_data: *const u8,
        trailers_size: usize,
        timeout_ms: u32,
        return_token: *mut u32,
    ) -> u32;
    fn proxy_call_foreign_function(
        name_data: *const u8,
        name_size: usize,
        arguments_data: *const u8,
        arguments_size: usize,
        results_data: *mut *mut u8,
        results_size: *mut usize,
    ) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
}

fn check(code: u32) -> Result<(), Status> {
    if code == status::OK {
        Ok(())
    } else {
        Err(code)
    }
}

/// Runs a host call that hands back a buffer through out-pointers (`data`,
/// `size`) and takes ownership of that buffer: `Ok(bytes)` when the call
/// returns OK (no buffer: empty), `Err(status)` otherwise (a buffer the host
/// wrote anyway is freed). The one place that turns host memory into a `Vec`.
pub fn host_buffer(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Result<Vec<u8>, Status> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let code = call(&mut data, &mut size);
    let bytes = if data.is_null() {
        Vec::new()
    } else {
        // SAFETY: the host has pointed `data` at `size` bytes it allocated
        // through this module's `proxy_on_memory_allocate` (a boxed slice of
        // exactly `size` bytes), which we now own: capacity == length == size.
        unsafe { Vec::from_raw_parts(data, size, size) }
    };
    check(code).map(|()| bytes)
}

/// Writes a log line; a host that refuses it is ignored.
pub fn log(level: LogLevel, message: &str) {
    // SAFETY: the message is valid for the duration of the call.
    let _ = unsafe { proxy_log(level as u32, message.as_ptr(), message.len()) };
}

/// Whether the host keeps lines at `level` from this plugin (true when it
/// cannot say).
pub fn log_enabled(level: LogLevel) -> bool {
    let mut current: u32 = 0;
    // SAFETY: the host writes one u32 through the pointer we own.
    let code = unsafe { proxy_get_log_level(&mut current) };
    code != status::OK || current <= level as u32
}

/// The host clock in ns since the epoch (0 if the host cannot say).
pub fn now_ns() -> u64 {
    let mut t: u64 = 0;
    // SAFETY: the host writes one u64 through the pointer we own.
    match unsafe { proxy_get_current_time_nanoseconds(&mut t) } {
        status::OK => t,
        _ => 0,
    }
}

/// The host clock in ms since the epoch (0 if the host cannot say).
pub fn now_ms() -> u64 {
    now_ns() / 1_000_000
}

pub fn set_tick_period_ms(ms: u64) -> Result<(), Status> {
    let ms = u32::try_from(ms).unwrap_or(u32::MAX);
    // SAFETY: plain integers.
    check(unsafe { proxy_set_tick_period_milliseconds(ms) })
}

/// Makes `context_id` the context later calls act on (`Err` when the host
/// no longer knows it, e.g. the request went away).
pub fn set_effective_context(context_id: u32) -> Result<(), Status> {
    // SAFETY: plain integers.
    check(unsafe { proxy_set_effective_context(context_id) })
}

/// A buffer's bytes from `start`, at most `max` of them.
pub fn buffer(kind: BufferType, start: usize, max: usize) -> Result<Vec<u8>, Status> {
    host_buffer(|data, size| {
        // SAFETY: the out-pointers are valid for the duration of the call.
        unsafe { proxy_get_buffer_bytes(kind as u32, start, max, data, size) }
    })
}

/// A header map, serialized as the host wrote it (see
/// [`crate::extract::RequestView::from_serialized`]).
pub fn header_pairs(map: MapType) -> Result<Vec<u8>, Status> {
    host_buffer(|data, size| {
        // SAFETY: the out-pointers are valid for the duration of the call.
        unsafe { proxy_get_header_map_pairs(map as u32, data, size) }
    })
}

/// One header's value as bytes (`Ok(None)`: absent).
pub fn header_value(map: MapType, name: &str) -> Result<Option<Vec<u8>>, Status> {
    match host_buffer(|data, size| {
        // SAFETY: the name and the out-pointers are valid for the call.
        unsafe { proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), data, size) }
    }) {
        Ok(v) => Ok(Some(v)),
        Err(status::NOT_FOUND) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sets (`Some`) or removes (`None`) a header.
pub fn set_header(map: MapType, name: &str, value: Option<&str>) -> Result<(), Status> {
    // SAFETY: the name and the value are valid for the duration of the call.
    check(unsafe {
        match value {
            Some(v) => proxy_replace_header_map_value(
                map as u32,
                name.as_ptr(),
                name.len(),
                v.as_ptr(),
                v.len(),
            ),
            None => proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()),
        }
    })
}

/// A property's bytes (`path` parts joined by NUL, as the ABI wants).
pub fn property(path: &[&str]) -> Result<Vec<u8>, Status> {
    let joined = path.join("\0");
    host_buffer(|data, size| {
        // SAFETY: the path buffer and the out-pointers are valid for the call.
        unsafe { proxy_get_property(joined.as_ptr(), joined.len(), data, size) }
    })
}

/// Sets a property (Envoy keeps it as filter state `wasm.<key>`).
pub fn set_property(path: &[&str], value: &[u8]) -> Result<(), Status> {
    let joined = path.join("\0");
    // SAFETY: both buffers are valid for the duration of the call.
    check(unsafe { proxy_set_property(joined.as_ptr(), joined.len(), value.as_ptr(), value.len()) })
}

/// A shared-data value and its version: `(None, None)` when absent.
pub fn shared_get(key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), Status> {
    let mut cas: u32 = NO_CAS;
    let got = host_buffer(|data, size| {
        // SAFETY: the key and the out-pointers are valid for the call.
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), data, size, &mut cas) }
    });
    match got {
        // An empty value reads as none, with its version (as Envoy hands
        // it over: no buffer).
        Ok(bytes) => {
            let cas = (cas != NO_CAS).then_some(cas);
            Ok(((!bytes.is_empty()).then_some(bytes), cas))
        }
        Err(status::NOT_FOUND) => Ok((None, None)),
        Err(e) => Err(e),
    }
}

/// Writes a shared-data value if its version is still `cas` (`None`: any).
pub fn shared_set(key: &str, value: &[u8], cas: Option<u32>) -> Result<(), Status> {
    // SAFETY: both buffers are valid for the duration of the call.
    check(unsafe {
        proxy_set_shared_data(
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
            cas.unwrap_or(NO_CAS),
        )
    })
}

/// Lets the current (paused) request go on.
pub fn resume_request() -> Result<(), Status> {
    // SAFETY: plain integers.
    check(unsafe { proxy_continue_stream(STREAM_HTTP_REQUEST) })
}

/// Replies to the current request from the filter.
pub fn send_reply(status_code: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), Status> {
    let headers = serialize_pairs(headers);
    // SAFETY: every buffer is valid for the duration of the call; no
    // details string (null, 0).
    check(unsafe {
        proxy_send_local_response(
            status_code,
            null(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            NO_GRPC_STATUS,
        )
    })
}

/// Sends an HTTP request through `cluster`; `Ok(token)` names its answer.
pub fn http_call(
    cluster: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout_ms: u64,
) -> Result<u32, Status> {
    let headers = serialize_pairs(headers);
    let trailers = serialize_pairs::<&str, &str>(&[]);
    let timeout = u32::try_from(timeout_ms).unwrap_or(u32::MAX);
    let mut token: u32 = 0;
    // SAFETY: every buffer and the out-pointer are valid for the call.
    check(unsafe {
        proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            headers.as_ptr(),
            headers.len(),
            body.as_ptr(),
            body.len(),
            trailers.as_ptr(),
            trailers.len(),
            timeout,
            &mut token,
        )
    })
    .map(|()| token)
}

/// Calls a host function by name: `Ok(result bytes)` or `Err(status)`.
pub fn call_foreign(name: &str, args: &[u8]) -> Result<Vec<u8>, Status> {
    host_buffer(|data, size| {
        // SAFETY: every pointer is valid for the duration of the call.
        unsafe {
            proxy_call_foreign_function(
                name.as_ptr(),
                name.len(),
                args.as_ptr(),
                args.len(),
                data,
                size,
            )
        }
    })
}

pub fn define_metric(kind: MetricType, name: &str) -> Result<u32, Status> {
    let mut id: u32 = 0;
    // SAFETY: the name and the out-pointer are valid for the call.
    check(unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) })
        .map(|()| id)
}

pub fn increment_metric(id: u32, delta: i64) {
    // SAFETY: plain integers.
    let _ = unsafe { proxy_increment_metric(id, delta) };
}

pub fn record_metric(id: u32, value: u64) {
    // SAFETY: plain integers.
    let _ = unsafe { proxy_record_metric(id, value) };
}
