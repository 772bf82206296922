//! The functions the module exports to the host (proxy-wasm ABI 0.2.1): only
//! the callbacks the filter uses, so Envoy skips every other phase (response
//! headers and body, access log, done, network and gRPC callbacks) without a
//! crossing into the VM.
//!
//! Each callback finds its context's VM state and hands over to the glue in
//! `filter`. A context the filter does not know (a host that calls out of
//! order) is ignored, or failed closed for a request; nothing here panics.

use std::cell::RefCell;
use std::collections::HashMap;

use super::abi::{self, LogLevel};
use super::SharedVm;

thread_local! {
    /// Root contexts (one per plugin in this VM) and their state, `None`
    /// until a configuration was accepted.
    static ROOTS: RefCell<HashMap<u32, Option<SharedVm>>> = RefCell::new(HashMap::new());
    /// Request contexts and the root context each belongs to.
    static REQUESTS: RefCell<HashMap<u32, u32>> = RefCell::new(HashMap::new());
}

/// The VM state of a root context, or of the root a request belongs to.
/// The borrows end before the caller runs anything (the host may call back
/// into the module from inside a host call).
fn vm_of(context_id: u32) -> Option<SharedVm> {
    let root = REQUESTS
        .with(|r| r.borrow().get(&context_id).copied())
        .unwrap_or(context_id);
    ROOTS.with(|r| r.borrow().get(&root).cloned().flatten())
}

#[cfg(target_os = "wasi")]
extern "C" {
    fn __wasm_call_ctors();
}

/// WASI reactor start: static constructors, and a panic hook that says why
/// the VM stops (a panic aborts it; nothing should reach one).
#[no_mangle]
pub extern "C" fn _initialize() {
    #[cfg(target_os = "wasi")]
    // SAFETY: called once by the host before any other export, as WASI
    // reactors require.
    unsafe {
        __wasm_call_ctors();
    }
    std::panic::set_hook(Box::new(|info| {
        abi::log(
            LogLevel::Critical,
            &format!("jwt_filter: panic (VM will abort): {info}"),
        );
    }));
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// Memory the host fills and hands back to a call (header maps, buffers,
/// properties): a boxed slice of exactly `size` bytes, which
/// [`abi::host_buffer`] takes over.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let slice: Box<[std::mem::MaybeUninit<u8>]> = Box::new_uninit_slice(size);
    Box::into_raw(slice).cast::<u8>()
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, root_context_id: u32) {
    if root_context_id == 0 {
        ROOTS.with(|r| r.borrow_mut().insert(context_id, None));
    } else {
        REQUESTS.with(|r| r.borrow_mut().insert(context_id, root_context_id));
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root_context_id: u32, _vm_configuration_size: usize) -> bool {
    true
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(root_context_id: u32, _configuration_size: usize) -> bool {
    let vm = super::configure(root_context_id);
    let ok = vm.is_some();
    ROOTS.with(|r| r.borrow_mut().insert(root_context_id, vm));
    ok
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(root_context_id: u32) {
    if let Some(vm) = vm_of(root_context_id) {
        super::tick(&vm);
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(
    context_id: u32,
    _num_headers: usize,
    _end_of_stream: u32,
) -> u32 {
    super::request_headers_arrived(vm_of(context_id), context_id) as u32
}

#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    context_id: u32,
    token: u32,
    _num_headers: usize,
    body_size: usize,
    _num_trailers: usize,
) {
    if let Some(vm) = vm_of(context_id) {
        super::fetch_done(&vm, token, body_size);
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    match REQUESTS.with(|r| r.borrow_mut().remove(&context_id)) {
        Some(root) => {
            if let Some(vm) = ROOTS.with(|r| r.borrow().get(&root).cloned().flatten()) {
                super::request_gone(&vm, context_id);
            }
        }
        None => {
            ROOTS.with(|r| r.borrow_mut().remove(&context_id));
        }
    }
}
