//! The proxy-wasm glue: the only code that talks to the host. It reads the
//! configuration, snapshots request headers, asks `policy` for a decision and
//! applies it. Nothing here decides anything.

use std::rc::Rc;
use std::time::UNIX_EPOCH;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::config::{self, Config};
use crate::error::{www_authenticate, AuthError};
use crate::extract::RequestView;
use crate::matcher::path_only;
use crate::policy::{Decision, Evaluator, HeaderOp};
use crate::token::native_verify;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    std::panic::set_hook(Box::new(|info| {
        let msg = format!("jwt_filter: panic (VM will abort): {info}");
        let _ = proxy_wasm::hostcalls::log(LogLevel::Critical, &msg);
    }));
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { config: None }) });
}}

struct Root {
    config: Option<Rc<Config>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match Config::parse(&bytes) {
            Ok(cfg) => {
                for w in &cfg.warnings {
                    log::warn(&format!("jwt_filter: config warning: {w}"));
                }
                log::info(&format!(
                    "jwt_filter: configured {} provider(s), {} rule(s)",
                    cfg.providers.len(),
                    cfg.rules.len()
                ));
                self.config = Some(Rc::new(cfg));
                true
            }
            Err(errors) => {
                log::error(&format!(
                    "jwt_filter: invalid plugin configuration, refusing to start: {}",
                    config::describe(&errors)
                ));
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request {
            config: self.config.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request {
    config: Option<Rc<Config>>,
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(config) = self.config.clone() else {
            // Never configured: fail closed.
            self.deny(&RequestView::default(), AuthError::JwksUnavailable);
            return Action::Pause;
        };
        for name in &config.sanitize_headers {
            self.set_http_request_header(name, None);
        }
        let view = RequestView::new(self.get_http_request_headers());
        if config.bypass_cors_preflight && is_cors_preflight(&view) {
            return Action::Continue;
        }
        let now = self
            .get_current_time()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let decision = Evaluator::new(&config, &view, now, &native_verify).decide();
        match decision {
            Decision::NoAuth => Action::Continue,
            Decision::Allow(ops) => {
                for op in ops {
                    match op {
                        HeaderOp::Set(name, value) => {
                            self.set_http_request_header(&name, Some(&value))
                        }
                        HeaderOp::Remove(name) => self.set_http_request_header(&name, None),
                    }
                }
                Action::Continue
            }
            Decision::Deny(err) => {
                self.deny(&view, err);
                Action::Pause
            }
        }
    }
}

impl Request {
    fn deny(&self, view: &RequestView, err: AuthError) {
        let path = path_only(view.path());
        let realm = format!(
            "{}://{}{}",
            view.header(":scheme").unwrap_or("http"),
            view.header(":authority").unwrap_or(""),
            path
        );
        log::info(&format!(
            "jwt_filter: denied status={} reason={} method={} path={}",
            err.status(),
            err.reason(),
            view.header(":method").unwrap_or("-"),
            path
        ));
        let challenge = www_authenticate(&realm, err, None);
        self.send_http_response(
            err.status(),
            vec![
                ("www-authenticate", challenge.as_str()),
                ("content-type", "text/plain"),
            ],
            Some(err.body().as_bytes()),
        );
    }
}

/// A CORS preflight: OPTIONS with `Origin` and `Access-Control-Request-Method`.
fn is_cors_preflight(view: &RequestView) -> bool {
    view.header(":method") == Some("OPTIONS")
        && view.header("origin").is_some_and(|v| !v.is_empty())
        && view
            .header("access-control-request-method")
            .is_some_and(|v| !v.is_empty())
}

/// Logging that never fails the request.
mod log {
    use proxy_wasm::types::LogLevel;
    pub fn info(msg: &str) {
        let _ = proxy_wasm::hostcalls::log(LogLevel::Info, msg);
    }
    pub fn warn(msg: &str) {
        let _ = proxy_wasm::hostcalls::log(LogLevel::Warn, msg);
    }
    pub fn error(msg: &str) {
        let _ = proxy_wasm::hostcalls::log(LogLevel::Error, msg);
    }
}
