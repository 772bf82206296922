//! The built filter module (`dist/jwt_filter.wasm`) in wasmtime, under a fake
//! proxy-wasm host (ABI 0.2.1), driven as Envoy drives it: VM start,
//! configure, request headers, HTTP call answers, ticks, stream end.
//!
//! - [`host`]: the host's state (header maps, properties, shared data,
//!   metrics, calls, logs, the clock) and the hostile answers ([`host::Faults`]);
//! - [`linker`]: the `env.proxy_*` and WASI functions over that state;
//! - [`Filter`] (here): one VM with its root context, and the callbacks.
//!
//! A trap (a panic in the module: `panic = "abort"`) is an `Err` from every
//! driver call, carrying the module's last log lines.

pub mod crypto;
pub mod host;
pub mod linker;
pub mod wire;

use std::path::PathBuf;
use std::sync::OnceLock;

use wasmtime::{Config, Engine, Instance, Linker, Module, Store, TypedFunc, Val};

use host::{CallResponse, HostState, Stream};

/// proxy-wasm `Action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Continue,
    Pause,
}

/// Where the module is: `JWT_FILTER_WASM`, else `dist/jwt_filter.wasm` of
/// the repository. `Err(why)` when the variable is unset and there is no
/// module (the caller skips, saying why); a variable naming a missing file
/// is a failure (panics).
pub fn module_path() -> Result<PathBuf, String> {
    match std::env::var_os("JWT_FILTER_WASM") {
        Some(p) => {
            // cargo runs the tests in abi-tests/: a relative path is taken
            // from the repository root, where ./build.sh and people run it.
            let p = PathBuf::from(p);
            let p = if p.is_relative() {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
            } else {
                p
            };
            assert!(
                p.is_file(),
                "JWT_FILTER_WASM={} does not exist: build it with ./build.sh build",
                p.display()
            );
            Ok(p)
        }
        None => {
            let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dist/jwt_filter.wasm");
            if p.is_file() {
                Ok(p)
            } else {
                Err(format!(
                    "SKIPPED: no filter module ({} is missing and JWT_FILTER_WASM is unset; \
                     ./build.sh build makes it, ./build.sh test runs these tests with it)",
                    p.display()
                ))
            }
        }
    }
}

/// The engine and the compiled module, once per test process.
fn compiled() -> Result<&'static (Engine, Module), String> {
    static CELL: OnceLock<Result<(Engine, Module), String>> = OnceLock::new();
    CELL.get_or_init(|| {
        let path = module_path()?;
        let mut config = Config::new();
        config.cranelift_opt_level(wasmtime::OptLevel::None);
        let engine = Engine::new(&config).map_err(|e| e.to_string())?;
        let module =
            Module::from_file(&engine, &path).map_err(|e| format!("{}: {e:#}", path.display()))?;
        Ok((engine, module))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Whether the module exists; else says why the test skips, once per test
/// binary, on stderr itself (not through `eprintln!`, which the test harness
/// captures and hides for a passing test).
pub fn available() -> bool {
    static SAID: std::sync::Once = std::sync::Once::new();
    match module_path() {
        Ok(_) => true,
        Err(why) => {
            SAID.call_once(|| {
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "{why}");
            });
            false
        }
    }
}

/// One VM: the instance, its store (the host state), its root context.
pub struct Filter {
    store: Store<HostState>,
    instance: Instance,
    next_context: u32,
}

/// A trap or a missing export, with the module's log tail.
pub type Outcome<T> = Result<T, String>;

impl Filter {
    /// Instantiates the module over `host` and runs its start function
    /// (no callback yet).
    pub fn new(host: HostState) -> Outcome<Filter> {
        let (engine, module) = compiled()?;
        let mut linker = Linker::new(engine);
        linker::add_to_linker(&mut linker).map_err(|e| e.to_string())?;
        let mut store = Store::new(engine, host);
        let instance = linker
            .instantiate(&mut store, module)
            .map_err(|e| format!("instantiate: {e:#}"))?;
        let mut f = Filter {
            store,
            instance,
            next_context: 2,
        };
        if f.instance
            .get_export(&mut f.store, "proxy_abi_version_0_2_1")
            .is_none()
        {
            return Err("the module does not export proxy_abi_version_0_2_1".into());
        }
        for start in ["_initialize", "_start"] {
            if f.instance.get_func(&mut f.store, start).is_some() {
                f.call(start, &[])?;
                break;
            }
        }
        Ok(f)
    }

    /// Creates the root context and runs `proxy_on_vm_start` and
    /// `proxy_on_configure`; `Ok(false)` when the module refused its
    /// configuration.
    pub fn start(&mut self) -> Outcome<bool> {
        let root = self.host().root_id;
        self.host_mut().current_context = root;
        self.call(
            "proxy_on_context_create",
            &[Val::I32(root as i32), Val::I32(0)],
        )?;
        let vm_size = self.host().vm_config.len() as i32;
        if self.exported("proxy_on_vm_start")
            && self.call_i32(
                "proxy_on_vm_start",
                &[Val::I32(root as i32), Val::I32(vm_size)],
            )? == 0
        {
            return Ok(false);
        }
        let size = self.host().plugin_config.len() as i32;
        Ok(self.call_i32(
            "proxy_on_configure",
            &[Val::I32(root as i32), Val::I32(size)],
        )? != 0)
    }

    /// A new stream with these request headers: `proxy_on_context_create`
    /// and `proxy_on_request_headers` (end of stream). Returns its id and
    /// the action.
    pub fn request(&mut self, headers: host::HeaderMap) -> Outcome<(u32, Action)> {
        let id = self.next_context;
        self.next_context += 1;
        let n = headers.len() as i32;
        self.host_mut().streams.insert(
            id,
            Stream {
                request_headers: headers,
                ..Stream::default()
            },
        );
        self.host_mut().current_context = id;
        let root = self.host().root_id as i32;
        self.call(
            "proxy_on_context_create",
            &[Val::I32(id as i32), Val::I32(root)],
        )?;
        let action = self.call_i32(
            "proxy_on_request_headers",
            &[Val::I32(id as i32), Val::I32(n), Val::I32(1)],
        )?;
        Ok((id, action_of(action)?))
    }

    /// The stream ends (Envoy: `proxy_on_done`, `proxy_on_log`,
    /// `proxy_on_delete`, whichever the module exports). As Envoy, the
    /// HTTP calls this context made and that are still out are cancelled:
    /// their answers never come.
    pub fn end(&mut self, id: u32) -> Outcome<()> {
        self.host_mut().current_context = id;
        for cb in ["proxy_on_done", "proxy_on_log", "proxy_on_delete"] {
            if self.exported(cb) {
                self.call(cb, &[Val::I32(id as i32)])?;
            }
        }
        let s = self.host_mut();
        s.streams.remove(&id);
        for c in s
            .calls
            .iter_mut()
            .filter(|c| c.context_id == id && !c.answered)
        {
            c.cancelled = true;
        }
        Ok(())
    }

    /// Delivers the answer to call `token` on the context that made it:
    /// `None` is a failed call (reset, timeout: Envoy calls back with no
    /// headers and no body).
    pub fn answer_call(&mut self, token: u32, response: Option<CallResponse>) -> Outcome<()> {
        let Some(call) = self.host_mut().calls.iter_mut().find(|c| c.token == token) else {
            return Err(format!("no HTTP call with token {token}"));
        };
        if call.cancelled {
            return Err(format!("HTTP call {token} was cancelled with its context"));
        }
        call.answered = true;
        let context = call.context_id;
        let (headers, body) = response
            .as_ref()
            .map(|r| (r.headers.len(), r.body.len()))
            .unwrap_or((0, 0));
        let trailers = response.as_ref().map(|r| r.trailers.len()).unwrap_or(0);
        linker::set_call_response(self.host_mut(), response);
        self.host_mut().current_context = context;
        let r = self.call(
            "proxy_on_http_call_response",
            &[
                Val::I32(context as i32),
                Val::I32(token as i32),
                Val::I32(headers as i32),
                Val::I32(body as i32),
                Val::I32(trailers as i32),
            ],
        );
        linker::set_call_response(self.host_mut(), None);
        r
    }

    /// A timer tick on the root context.
    pub fn tick(&mut self) -> Outcome<()> {
        let root = self.host().root_id;
        self.host_mut().current_context = root;
        self.call("proxy_on_tick", &[Val::I32(root as i32)])
    }

    /// Moves the host clock.
    pub fn advance_ms(&mut self, ms: u64) {
        self.host_mut().now_ns += ms * 1_000_000;
    }

    pub fn host(&self) -> &HostState {
        self.store.data()
    }

    pub fn host_mut(&mut self) -> &mut HostState {
        self.store.data_mut()
    }

    pub fn stream(&self, id: u32) -> &Stream {
        self.host()
            .stream(id)
            .unwrap_or_else(|| panic!("no stream {id}"))
    }

    fn exported(&mut self, name: &str) -> bool {
        self.instance.get_func(&mut self.store, name).is_some()
    }

    fn call(&mut self, name: &str, args: &[Val]) -> Outcome<()> {
        self.call_results(name, args).map(|_| ())
    }

    fn call_i32(&mut self, name: &str, args: &[Val]) -> Outcome<i32> {
        match self.call_results(name, args)?.first() {
            Some(Val::I32(v)) => Ok(*v),
            other => Err(format!("{name} returned {other:?}")),
        }
    }

    fn call_results(&mut self, name: &str, args: &[Val]) -> Outcome<Vec<Val>> {
        let func = self
            .instance
            .get_func(&mut self.store, name)
            .ok_or_else(|| format!("the module does not export {name}"))?;
        let mut results = vec![Val::I32(0); func.ty(&self.store).results().len()];
        func.call(&mut self.store, args, &mut results)
            .map_err(|e| {
                let logs = self.host().log_text();
                let tail: Vec<&str> = logs.lines().rev().take(8).collect();
                format!(
                "TRAP in {name}: {e:#}\nlast host calls: {:?}\nlast log lines (newest first):\n{}",
                self.host().trace.iter().rev().take(12).collect::<Vec<_>>(),
                tail.join("\n")
            )
            })?;
        Ok(results)
    }

    /// `proxy_on_memory_allocate(size)`: the module's pointer.
    pub fn allocate(&mut self, size: i32) -> Outcome<i32> {
        let f: TypedFunc<i32, i32> = self
            .instance
            .get_typed_func(&mut self.store, "proxy_on_memory_allocate")
            .map_err(|e| e.to_string())?;
        f.call(&mut self.store, size).map_err(|e| e.to_string())
    }

    /// Whether the module exports `name`.
    pub fn exports(&mut self, name: &str) -> bool {
        self.instance.get_export(&mut self.store, name).is_some()
    }
}

fn action_of(v: i32) -> Outcome<Action> {
    match v {
        0 => Ok(Action::Continue),
        1 => Ok(Action::Pause),
        other => Err(format!("unknown action {other}")),
    }
}
