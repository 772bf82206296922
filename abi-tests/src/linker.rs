//! The host functions: proxy-wasm ABI 0.2.1 (`env.proxy_*`) and the few
//! WASI preview 1 calls a wasm32-wasip1 module imports, over [`HostState`].
//!
//! Every function first checks [`HostState::fault`]: a hostile test makes
//! any of them return an error status without doing anything. Memory the
//! module hands over is read with bounds checks; a pointer outside its
//! memory is a module bug and traps (the test fails).

use wasmtime::{Caller, Extern, Linker, Memory, Result};

use crate::crypto;
use crate::host::{
    buffer_type, status, CallResponse, ForeignCrypto, HostState, HttpCall, LocalResponse, Metric,
};
use crate::wire::{deserialize_map, serialize_map};

type C<'a> = Caller<'a, HostState>;

fn memory(c: &mut C<'_>) -> Result<Memory> {
    match c.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(wasmtime::Error::msg("the module exports no memory")),
    }
}

fn read(c: &mut C<'_>, ptr: i32, len: i32) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len as u32 as usize];
    memory(c)?.read(&*c, ptr as u32 as usize, &mut buf)?;
    Ok(buf)
}

fn read_str(c: &mut C<'_>, ptr: i32, len: i32) -> Result<String> {
    Ok(String::from_utf8_lossy(&read(c, ptr, len)?).into_owned())
}

fn write(c: &mut C<'_>, ptr: i32, bytes: &[u8]) -> Result<()> {
    memory(c)?.write(&mut *c, ptr as u32 as usize, bytes)?;
    Ok(())
}

fn write_u32(c: &mut C<'_>, ptr: i32, v: u32) -> Result<()> {
    write(c, ptr, &v.to_le_bytes())
}

/// Hands `bytes` to the module as Envoy does: memory from its
/// `proxy_on_memory_allocate`, then the pointer and size through the
/// out-pointers. Status Ok.
fn give(c: &mut C<'_>, bytes: &[u8], ptr_out: i32, size_out: i32) -> Result<i32> {
    let alloc = c
        .get_export("proxy_on_memory_allocate")
        .and_then(Extern::into_func)
        .ok_or_else(|| wasmtime::Error::msg("no proxy_on_memory_allocate export"))?
        .typed::<i32, i32>(&*c)?;
    let ptr = alloc.call(&mut *c, bytes.len() as i32)?;
    if ptr == 0 && !bytes.is_empty() {
        return Err(wasmtime::Error::msg("proxy_on_memory_allocate returned 0"));
    }
    write(c, ptr, bytes)?;
    write_u32(c, ptr_out, ptr as u32)?;
    write_u32(c, size_out, bytes.len() as u32)?;
    Ok(status::OK as i32)
}

/// The fault status for `name`, when the test made it misbehave.
fn fault(c: &mut C<'_>, name: &'static str) -> Option<i32> {
    let s = c.data_mut();
    s.trace.push(name);
    s.fault(name).map(|v| v as i32)
}

macro_rules! faulty {
    ($c:expr, $name:literal) => {
        if let Some(code) = fault(&mut $c, $name) {
            return Ok(code);
        }
    };
}

/// Defines every host function the filter may import.
pub fn add_to_linker(l: &mut Linker<HostState>) -> Result<()> {
    add_proxy(l)?;
    add_wasi(l)?;
    Ok(())
}

fn add_proxy(l: &mut Linker<HostState>) -> Result<()> {
    const ENV: &str = "env";

    l.func_wrap(
        ENV,
        "proxy_log",
        |mut c: C<'_>, level: i32, p: i32, n: i32| -> Result<i32> {
            faulty!(c, "proxy_log");
            let msg = read_str(&mut c, p, n)?;
            c.data_mut().logs.push((level as u32, msg));
            Ok(0)
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_get_log_level",
        |mut c: C<'_>, out: i32| -> Result<i32> {
            faulty!(c, "proxy_get_log_level");
            let level = c.data().log_level;
            write_u32(&mut c, out, level)?;
            Ok(0)
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_get_current_time_nanoseconds",
        |mut c: C<'_>, out: i32| -> Result<i32> {
            faulty!(c, "proxy_get_current_time_nanoseconds");
            let now = c.data().faults.time.unwrap_or(c.data().now_ns);
            write(&mut c, out, &now.to_le_bytes())?;
            Ok(0)
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_set_tick_period_milliseconds",
        |mut c: C<'_>, ms: i32| -> Result<i32> {
            faulty!(c, "proxy_set_tick_period_milliseconds");
            c.data_mut().tick_period_ms = ms as u32;
            Ok(0)
        },
    )?;

    // --- buffers ---------------------------------------------------------
    l.func_wrap(
        ENV,
        "proxy_get_buffer_bytes",
        |mut c: C<'_>, t: i32, start: i32, max: i32, p_out: i32, n_out: i32| -> Result<i32> {
            faulty!(c, "proxy_get_buffer_bytes");
            let s = c.data();
            let whole = match t as u32 {
                buffer_type::VM_CONFIGURATION => Some(s.vm_config.clone()),
                buffer_type::PLUGIN_CONFIGURATION => Some(s.plugin_config.clone()),
                buffer_type::HTTP_CALL_RESPONSE_BODY => s
                    .faults
                    .call_body
                    .clone()
                    .or_else(|| s.call_response.as_ref().map(|r| r.body.clone())),
                _ => None,
            };
            let Some(whole) = whole else {
                return Ok(status::NOT_FOUND as i32);
            };
            let start = (start as u32 as usize).min(whole.len());
            let end = start.saturating_add(max as u32 as usize).min(whole.len());
            if start == end {
                // Envoy: an empty slice is NotFound (the SDK gives None).
                return Ok(status::NOT_FOUND as i32);
            }
            let slice = whole[start..end].to_vec();
            give(&mut c, &slice, p_out, n_out)
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_set_buffer_bytes",
        |mut c: C<'_>, _t: i32, _s: i32, _n: i32, _p: i32, _l: i32| -> Result<i32> {
            faulty!(c, "proxy_set_buffer_bytes");
            Ok(status::NOT_FOUND as i32)
        },
    )?;

    // --- header maps -----------------------------------------------------
    l.func_wrap(
        ENV,
        "proxy_get_header_map_pairs",
        |mut c: C<'_>, t: i32, p_out: i32, n_out: i32| -> Result<i32> {
            faulty!(c, "proxy_get_header_map_pairs");
            if let Some(raw) = c.data().faults.header_map_pairs.clone() {
                return give(&mut c, &raw, p_out, n_out);
            }
            // Envoy: an unavailable map (no call answer during a failed
            // call's callback) reads as empty, status Ok.
            let bytes = serialize_map(&c.data_mut().map(t as u32).cloned().unwrap_or_default());
            give(&mut c, &bytes, p_out, n_out)
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_set_header_map_pairs",
        |mut c: C<'_>, t: i32, p: i32, n: i32| -> Result<i32> {
            faulty!(c, "proxy_set_header_map_pairs");
            let bytes = read(&mut c, p, n)?;
            let Some(new) = deserialize_map(&bytes) else {
                return Ok(status::BAD_ARGUMENT as i32);
            };
            match c.data_mut().map(t as u32) {
                Some(map) => {
                    *map = new;
                    Ok(0)
                }
                None => Ok(status::BAD_ARGUMENT as i32),
            }
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_get_header_map_value",
        |mut c: C<'_>, t: i32, kp: i32, kn: i32, p_out: i32, n_out: i32| -> Result<i32> {
            faulty!(c, "proxy_get_header_map_value");
            if let Some(raw) = c.data().faults.header_map_value.clone() {
                return give(&mut c, &raw, p_out, n_out);
            }
            let key = read_str(&mut c, kp, kn)?;
            // Envoy's getHeaderMapValue: BadArgument when the map is not
            // available (e.g. the call answer during a failed call's
            // callback: Envoy calls back with no response), NotFound when the
            // key is absent.
            let Some(map) = c.data_mut().map(t as u32) else {
                return Ok(status::BAD_ARGUMENT as i32);
            };
            let value = map
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&key))
                .map(|(_, v)| v.clone());
            match value {
                Some(v) => give(&mut c, &v, p_out, n_out),
                None => Ok(status::NOT_FOUND as i32),
            }
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_replace_header_map_value",
        |mut c: C<'_>, t: i32, kp: i32, kn: i32, vp: i32, vn: i32| -> Result<i32> {
            faulty!(c, "proxy_replace_header_map_value");
            let key = read_str(&mut c, kp, kn)?.to_ascii_lowercase();
            let value = read(&mut c, vp, vn)?;
            let Some(map) = c.data_mut().map(t as u32) else {
                return Ok(status::BAD_ARGUMENT as i32);
            };
            map.retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
            map.push((key, value));
            Ok(0)
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_add_header_map_value",
        |mut c: C<'_>, t: i32, kp: i32, kn: i32, vp: i32, vn: i32| -> Result<i32> {
            faulty!(c, "proxy_add_header_map_value");
            let key = read_str(&mut c, kp, kn)?.to_ascii_lowercase();
            let value = read(&mut c, vp, vn)?;
            let Some(map) = c.data_mut().map(t as u32) else {
                return Ok(status::BAD_ARGUMENT as i32);
            };
            map.push((key, value));
            Ok(0)
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_remove_header_map_value",
        |mut c: C<'_>, t: i32, kp: i32, kn: i32| -> Result<i32> {
            faulty!(c, "proxy_remove_header_map_value");
            let key = read_str(&mut c, kp, kn)?;
            let Some(map) = c.data_mut().map(t as u32) else {
                return Ok(status::BAD_ARGUMENT as i32);
            };
            map.retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
            Ok(0)
        },
    )?;

    // --- properties ------------------------------------------------------
    l.func_wrap(
        ENV,
        "proxy_get_property",
        |mut c: C<'_>, pp: i32, pn: i32, p_out: i32, n_out: i32| -> Result<i32> {
            faulty!(c, "proxy_get_property");
            if let Some(raw) = c.data().faults.property.clone() {
                return give(&mut c, &raw, p_out, n_out);
            }
            let path = read(&mut c, pp, pn)?;
            match c.data().properties.get(&path).cloned() {
                Some(v) => give(&mut c, &v, p_out, n_out),
                None => Ok(status::NOT_FOUND as i32),
            }
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_set_property",
        |mut c: C<'_>, pp: i32, pn: i32, vp: i32, vn: i32| -> Result<i32> {
            faulty!(c, "proxy_set_property");
            let path = read(&mut c, pp, pn)?;
            let value = read(&mut c, vp, vn)?;
            let key = String::from_utf8_lossy(&path).replace('\0', ".");
            let s = c.data_mut();
            match s.current_stream() {
                Some(stream) => {
                    stream.properties_set.insert(key, value);
                }
                None => {
                    s.root_properties_set.insert(key, value);
                }
            }
            Ok(0)
        },
    )?;

    // --- shared data and queues -------------------------------------------
    l.func_wrap(
        ENV,
        "proxy_get_shared_data",
        |mut c: C<'_>, kp: i32, kn: i32, p_out: i32, n_out: i32, cas_out: i32| -> Result<i32> {
            faulty!(c, "proxy_get_shared_data");
            let key = read_str(&mut c, kp, kn)?;
            let found = match c.data().faults.shared_data.clone() {
                Some(v) => Some(v),
                None => c.data().shared.borrow().get(&key).cloned(),
            };
            match found {
                Some((value, cas)) => {
                    write_u32(&mut c, cas_out, cas)?;
                    give(&mut c, &value, p_out, n_out)
                }
                None => Ok(status::NOT_FOUND as i32),
            }
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_set_shared_data",
        |mut c: C<'_>, kp: i32, kn: i32, vp: i32, vn: i32, cas: i32| -> Result<i32> {
            faulty!(c, "proxy_set_shared_data");
            let key = read_str(&mut c, kp, kn)?;
            let value = read(&mut c, vp, vn)?;
            let shared = c.data().shared.clone();
            let mut shared = shared.borrow_mut();
            // Envoy: a CAS is checked only when the key exists and the CAS
            // given is not 0; each write bumps the key's CAS.
            match shared.get_mut(&key) {
                Some((v, current)) => {
                    if cas != 0 && cas as u32 != *current {
                        return Ok(status::CAS_MISMATCH as i32);
                    }
                    *v = value;
                    *current += 1;
                }
                None => {
                    shared.insert(key, (value, 1));
                }
            }
            Ok(0)
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_register_shared_queue",
        |mut c: C<'_>, np: i32, nn: i32, id_out: i32| -> Result<i32> {
            faulty!(c, "proxy_register_shared_queue");
            let name = read_str(&mut c, np, nn)?;
            let queues = &mut c.data_mut().queues;
            let id = match queues.iter().position(|(n, _)| *n == name) {
                Some(i) => i,
                None => {
                    queues.push((name, Vec::new()));
                    queues.len() - 1
                }
            };
            write_u32(&mut c, id_out, id as u32)?;
            Ok(0)
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_resolve_shared_queue",
        |mut c: C<'_>, _vp: i32, _vn: i32, np: i32, nn: i32, id_out: i32| -> Result<i32> {
            faulty!(c, "proxy_resolve_shared_queue");
            let name = read_str(&mut c, np, nn)?;
            match c.data().queues.iter().position(|(n, _)| *n == name) {
                Some(i) => {
                    write_u32(&mut c, id_out, i as u32)?;
                    Ok(0)
                }
                None => Ok(status::NOT_FOUND as i32),
            }
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_enqueue_shared_queue",
        |mut c: C<'_>, id: i32, vp: i32, vn: i32| -> Result<i32> {
            faulty!(c, "proxy_enqueue_shared_queue");
            let value = read(&mut c, vp, vn)?;
            match c.data_mut().queues.get_mut(id as u32 as usize) {
                Some((_, q)) => {
                    q.push(value);
                    Ok(0)
                }
                None => Ok(status::NOT_FOUND as i32),
            }
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_dequeue_shared_queue",
        |mut c: C<'_>, id: i32, p_out: i32, n_out: i32| -> Result<i32> {
            faulty!(c, "proxy_dequeue_shared_queue");
            let item = match c.data_mut().queues.get_mut(id as u32 as usize) {
                None => return Ok(status::NOT_FOUND as i32),
                Some((_, q)) if q.is_empty() => return Ok(status::EMPTY as i32),
                Some((_, q)) => q.remove(0),
            };
            give(&mut c, &item, p_out, n_out)
        },
    )?;

    // --- stream control --------------------------------------------------
    l.func_wrap(
        ENV,
        "proxy_continue_stream",
        |mut c: C<'_>, stream_type: i32| -> Result<i32> {
            faulty!(c, "proxy_continue_stream");
            match c.data_mut().current_stream() {
                Some(s) => {
                    s.continued.push(stream_type as u32);
                    Ok(0)
                }
                None => Ok(status::NOT_FOUND as i32),
            }
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_close_stream",
        |mut c: C<'_>, _t: i32| -> Result<i32> {
            faulty!(c, "proxy_close_stream");
            Ok(0)
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_send_local_response",
        |mut c: C<'_>,
         code: i32,
         dp: i32,
         dn: i32,
         bp: i32,
         bn: i32,
         hp: i32,
         hn: i32,
         grpc: i32|
         -> Result<i32> {
            faulty!(c, "proxy_send_local_response");
            let details = read(&mut c, dp, dn)?;
            let body = read(&mut c, bp, bn)?;
            let raw = read(&mut c, hp, hn)?;
            let Some(headers) = deserialize_map(&raw) else {
                return Err(wasmtime::Error::msg(
                    "proxy_send_local_response: the module sent a malformed header map",
                ));
            };
            let reply = LocalResponse {
                status: code as u32,
                details,
                body,
                headers,
                grpc_status: grpc,
            };
            match c.data_mut().current_stream() {
                Some(s) => {
                    s.local_response = Some(reply);
                    Ok(0)
                }
                None => Ok(status::NOT_FOUND as i32),
            }
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_set_effective_context",
        |mut c: C<'_>, id: i32| -> Result<i32> {
            faulty!(c, "proxy_set_effective_context");
            let s = c.data_mut();
            let id = id as u32;
            if id == s.root_id || s.streams.contains_key(&id) {
                s.current_context = id;
                Ok(0)
            } else {
                Ok(status::BAD_ARGUMENT as i32)
            }
        },
    )?;
    l.func_wrap(ENV, "proxy_done", |mut c: C<'_>| -> Result<i32> {
        faulty!(c, "proxy_done");
        Ok(0)
    })?;

    // --- HTTP calls ------------------------------------------------------
    l.func_wrap(
        ENV,
        "proxy_http_call",
        |mut c: C<'_>,
         up: i32,
         un: i32,
         hp: i32,
         hn: i32,
         bp: i32,
         bn: i32,
         tp: i32,
         tn: i32,
         timeout: i32,
         token_out: i32|
         -> Result<i32> {
            faulty!(c, "proxy_http_call");
            let upstream = read_str(&mut c, up, un)?;
            let raw = read(&mut c, hp, hn)?;
            let body = read(&mut c, bp, bn)?;
            let trailers = read(&mut c, tp, tn)?;
            let (Some(headers), Some(_)) = (deserialize_map(&raw), deserialize_map(&trailers))
            else {
                return Err(wasmtime::Error::msg(
                    "proxy_http_call: the module sent a malformed header map",
                ));
            };
            // Envoy refuses a call without :method, :path and :authority.
            for required in [":method", ":path", ":authority"] {
                if !headers.iter().any(|(k, _)| k == required) {
                    return Ok(status::BAD_ARGUMENT as i32);
                }
            }
            let token = c.data_mut().add_call(HttpCall {
                token: 0,
                context_id: 0,
                upstream,
                headers,
                body,
                timeout_ms: timeout as u32,
                answered: false,
                cancelled: false,
            });
            write_u32(&mut c, token_out, token)?;
            Ok(0)
        },
    )?;

    // --- gRPC (imported by the SDK's dispatcher; the filter makes no gRPC
    // call): Envoy's answer for an unknown cluster.
    l.func_wrap(
        ENV,
        "proxy_grpc_call",
        |mut c: C<'_>,
         _a: i32,
         _b: i32,
         _s: i32,
         _d: i32,
         _e: i32,
         _f: i32,
         _g: i32,
         _h: i32,
         _i: i32,
         _j: i32,
         _timeout: i32,
         _token_out: i32|
         -> Result<i32> {
            faulty!(c, "proxy_grpc_call");
            Ok(status::BAD_ARGUMENT as i32)
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_grpc_stream",
        |mut c: C<'_>,
         _a: i32,
         _b: i32,
         _s: i32,
         _d: i32,
         _e: i32,
         _f: i32,
         _g: i32,
         _h: i32,
         _token_out: i32|
         -> Result<i32> {
            faulty!(c, "proxy_grpc_stream");
            Ok(status::BAD_ARGUMENT as i32)
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_grpc_send",
        |mut c: C<'_>, _t: i32, _p: i32, _n: i32, _end: i32| -> Result<i32> {
            faulty!(c, "proxy_grpc_send");
            Ok(status::NOT_FOUND as i32)
        },
    )?;
    for name in ["proxy_grpc_cancel", "proxy_grpc_close"] {
        l.func_wrap(ENV, name, |_c: C<'_>, _t: i32| -> Result<i32> {
            Ok(status::NOT_FOUND as i32)
        })?;
    }
    l.func_wrap(
        ENV,
        "proxy_get_status",
        |mut c: C<'_>, _code_out: i32, _p_out: i32, _n_out: i32| -> Result<i32> {
            faulty!(c, "proxy_get_status");
            Ok(status::NOT_FOUND as i32)
        },
    )?;

    // --- foreign functions -------------------------------------------------
    l.func_wrap(
        ENV,
        "proxy_call_foreign_function",
        |mut c: C<'_>, np: i32, nn: i32, ap: i32, an: i32, p_out: i32, n_out: i32| -> Result<i32> {
            faulty!(c, "proxy_call_foreign_function");
            let name = read_str(&mut c, np, nn)?;
            let args = read(&mut c, ap, an)?;
            if let Some(raw) = c.data().faults.foreign_result.clone() {
                return give(&mut c, &raw, p_out, n_out);
            }
            if name != "verify_signature" || c.data().foreign == ForeignCrypto::Absent {
                return Ok(status::NOT_FOUND as i32);
            }
            c.data_mut().foreign_calls += 1;
            let result = crypto::verify_signature(&args);
            give(&mut c, &result, p_out, n_out)
        },
    )?;

    // --- metrics ---------------------------------------------------------
    l.func_wrap(
        ENV,
        "proxy_define_metric",
        |mut c: C<'_>, kind: i32, np: i32, nn: i32, id_out: i32| -> Result<i32> {
            faulty!(c, "proxy_define_metric");
            let name = read_str(&mut c, np, nn)?;
            if kind as u32 > 2 {
                return Ok(status::BAD_ARGUMENT as i32);
            }
            let metrics = &mut c.data_mut().metrics;
            // The same name gives the same id, as Envoy's stats store.
            let id = match metrics.iter().position(|m| m.name == name) {
                Some(i) => i,
                None => {
                    metrics.push(Metric {
                        kind: kind as u32,
                        name,
                        value: 0,
                        samples: Vec::new(),
                    });
                    metrics.len() - 1
                }
            };
            write_u32(&mut c, id_out, id as u32)?;
            Ok(0)
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_increment_metric",
        |mut c: C<'_>, id: i32, delta: i64| -> Result<i32> {
            faulty!(c, "proxy_increment_metric");
            match c.data_mut().metrics.get_mut(id as u32 as usize) {
                Some(m) if m.kind == 2 => Ok(status::BAD_ARGUMENT as i32),
                Some(m) => {
                    m.value += delta;
                    Ok(0)
                }
                None => Ok(status::NOT_FOUND as i32),
            }
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_record_metric",
        |mut c: C<'_>, id: i32, value: i64| -> Result<i32> {
            faulty!(c, "proxy_record_metric");
            match c.data_mut().metrics.get_mut(id as u32 as usize) {
                Some(m) if m.kind == 2 => {
                    m.samples.push(value as u64);
                    Ok(0)
                }
                Some(m) => {
                    m.value = value;
                    Ok(0)
                }
                None => Ok(status::NOT_FOUND as i32),
            }
        },
    )?;
    l.func_wrap(
        ENV,
        "proxy_get_metric",
        |mut c: C<'_>, id: i32, out: i32| -> Result<i32> {
            faulty!(c, "proxy_get_metric");
            let value = match c.data().metrics.get(id as u32 as usize) {
                Some(m) if m.kind == 2 => return Ok(status::BAD_ARGUMENT as i32),
                Some(m) => m.value,
                None => return Ok(status::NOT_FOUND as i32),
            };
            write(&mut c, out, &(value as u64).to_le_bytes())?;
            Ok(0)
        },
    )?;
    Ok(())
}

/// WASI preview 1, as far as a proxy-wasm module built for wasm32-wasip1
/// uses it: stdio, the clock, random bytes, an empty environment.
fn add_wasi(l: &mut Linker<HostState>) -> Result<()> {
    const WASI: &str = "wasi_snapshot_preview1";
    const ERRNO_BADF: i32 = 8;

    l.func_wrap(
        WASI,
        "fd_write",
        |mut c: C<'_>, fd: i32, iovs: i32, n: i32, written_out: i32| -> Result<i32> {
            if fd != 1 && fd != 2 {
                return Ok(ERRNO_BADF);
            }
            let mut total = 0u32;
            for i in 0..n {
                let iov = read(&mut c, iovs + i * 8, 8)?;
                let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                let bytes = read(&mut c, ptr, len)?;
                total += bytes.len() as u32;
                c.data_mut().stdio.extend_from_slice(&bytes);
            }
            write_u32(&mut c, written_out, total)?;
            Ok(0)
        },
    )?;
    l.func_wrap(
        WASI,
        "random_get",
        |mut c: C<'_>, p: i32, n: i32| -> Result<i32> {
            // Deterministic: the tests must repeat.
            let bytes: Vec<u8> = (0..n as u32)
                .map(|i| (i.wrapping_mul(151) >> 1) as u8)
                .collect();
            write(&mut c, p, &bytes)?;
            Ok(0)
        },
    )?;
    l.func_wrap(
        WASI,
        "clock_time_get",
        |mut c: C<'_>, _id: i32, _precision: i64, out: i32| -> Result<i32> {
            let now = c.data().now_ns;
            write(&mut c, out, &now.to_le_bytes())?;
            Ok(0)
        },
    )?;
    for name in ["environ_sizes_get", "args_sizes_get"] {
        l.func_wrap(
            WASI,
            name,
            |mut c: C<'_>, count: i32, size: i32| -> Result<i32> {
                write_u32(&mut c, count, 0)?;
                write_u32(&mut c, size, 0)?;
                Ok(0)
            },
        )?;
    }
    for name in ["environ_get", "args_get"] {
        l.func_wrap(WASI, name, |_c: C<'_>, _a: i32, _b: i32| -> Result<i32> {
            Ok(0)
        })?;
    }
    l.func_wrap(WASI, "proc_exit", |_c: C<'_>, code: i32| -> Result<()> {
        Err(wasmtime::Error::msg(format!("proc_exit({code})")))
    })?;
    l.func_wrap(WASI, "sched_yield", |_c: C<'_>| -> Result<i32> { Ok(0) })?;
    l.func_wrap(WASI, "fd_close", |_c: C<'_>, _fd: i32| -> Result<i32> {
        Ok(ERRNO_BADF)
    })?;
    l.func_wrap(
        WASI,
        "fd_fdstat_get",
        |_c: C<'_>, _fd: i32, _out: i32| -> Result<i32> { Ok(ERRNO_BADF) },
    )?;
    l.func_wrap(
        WASI,
        "fd_seek",
        |_c: C<'_>, _fd: i32, _off: i64, _whence: i32, _out: i32| -> Result<i32> { Ok(ERRNO_BADF) },
    )?;
    Ok(())
}

/// Sets the answer of the call being delivered.
pub fn set_call_response(s: &mut HostState, response: Option<CallResponse>) {
    s.call_response = response;
}
