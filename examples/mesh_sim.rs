//! What a mesh of Envoys running this filter does to its identity provider,
//! simulated with the filter's own remote-key code.
//!
//! N Envoys x W workers; each worker is a real [`KeyLifecycle`] (the code the
//! filter ships), each Envoy a [`KeyHost`] with proxy-wasm shared-data
//! semantics (get with a compare-and-swap tag, set with it), fetch latencies
//! and a scripted identity provider (200, 500, 429 with `Retry-After`, or a
//! hang until the fetch timeout). Time is simulated: an event queue (binary
//! heap) of ticks, requests and fetch answers. Traffic arrives at every
//! worker (Poisson); after a key rotation the new `kid` reaches proxies as
//! clients renew their tokens (the share of new-kid tokens grows linearly
//! over the token renewal ramp).
//!
//! The decision for a request mirrors the policy for one remote provider
//! (allow when the worker's key set holds the token's `kid`; a denial the
//! policy reports as worth waiting for goes to `KeyLifecycle::park`, as the
//! glue does). Ticks that provably do nothing (no parked request, no fetch
//! due, no stale transition, shared record unchanged) are elided; `--all-ticks`
//! runs every tick and `--check` verifies both give the same IdP load.
//!
//!   cargo run --release --example mesh_sim -- [--short|--check] [--out DIR]
//!
//! `./build.sh mesh-sim` runs the full set and plots it (docs/mesh-scale.md).
//!
//! The revocation feeds' load on the IdP (`revocation.csv`) comes from the
//! same schedule code the feeds run (`Meta::after_success`, spread, with the
//! poll interval the configuration parser derives): every Envoy polls the
//! deny list (a conditional GET: 304 unless the document changed since its
//! last poll) and the SSF stream (one POST per poll), all polls answered.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::rc::Rc;

use jwt_filter::config::Config;
use jwt_filter::extract::RequestView;
use jwt_filter::fake_shared::FakeSharedData;
use jwt_filter::keys::remote::{
    unique_owner_id, FetchRequest, KeyHost, KeyLifecycle, Level, ParkResult, Parked,
};
use jwt_filter::keys::store::{mix, Meta, Schedule};
use jwt_filter::keys::{RemoteKeys, Wait};
use jwt_filter::metrics::{KeySourceKind, Layout, MetricHost, MetricKind, Metrics};
use jwt_filter::shared_data::SharedData;

const MIN: u64 = 60_000;
/// Streams of random draws (see `Sim::draw`).
const STREAM_START: u64 = 1;
const STREAM_LATENCY: u64 = 2;
const STREAM_REQUEST: u64 = 1 << 32;
const HOUR: u64 = 60 * MIN;
const FIXTURE: &str = include_str!("../tests/fixtures/keys/jwks.json");
const OLD_KID: &str = "k-2026-11";
const NEW_KID: &str = "k-2026-12";

// ---------------------------------------------------------------- the IdP

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Up,
    /// Answers 500 at once.
    Error,
    /// Never answers: the fetch times out.
    Hang,
}

#[derive(Clone, Debug)]
struct Idp {
    /// (from, mode): the mode in force from that time.
    modes: Vec<(u64, Mode)>,
    /// Requests per second it serves; beyond: 429 with `Retry-After`.
    qps_limit: Option<f64>,
    retry_after_s: u64,
    /// When the new key appears in the JWKS.
    publish_ms: u64,
    tokens: f64,
    refilled_ms: u64,
}

enum Answer {
    Status(&'static str, bool),
    Hang,
}

impl Idp {
    fn mode(&self, now: u64) -> Mode {
        self.modes
            .iter()
            .rev()
            .find(|(from, _)| now >= *from)
            .map_or(Mode::Up, |(_, m)| *m)
    }

    /// The answer to a request arriving at `now`: (status, new key published).
    fn answer(&mut self, now: u64) -> Answer {
        match self.mode(now) {
            Mode::Hang => return Answer::Hang,
            Mode::Error => return Answer::Status("500", false),
            Mode::Up => {}
        }
        if let Some(qps) = self.qps_limit {
            let elapsed = now.saturating_sub(self.refilled_ms) as f64 / 1000.0;
            self.tokens = (self.tokens + elapsed * qps).min(qps);
            self.refilled_ms = now;
            if self.tokens < 1.0 {
                return Answer::Status("429", false);
            }
            self.tokens -= 1.0;
        }
        Answer::Status("200", now >= self.publish_ms)
    }
}

// ---------------------------------------------------------------- one Envoy

/// One Envoy's host: shared data with compare-and-swap, the calls its
/// workers dispatched, the response being delivered.
#[derive(Default)]
struct Host {
    shared: FakeSharedData,
    next_token: u32,
    outbox: Vec<(u32, u64)>,
    status: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    body: Rc<Vec<u8>>,
}

impl MetricHost for Host {
    fn define(&mut self, _kind: MetricKind, _name: &str) -> Option<u32> {
        Some(0)
    }
    fn increment(&self, _id: u32, _delta: i64) {}
    fn record(&self, _id: u32, _value: u64) {}
}

impl SharedData for Host {
    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.shared.get(key)
    }
    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        self.shared.set(key, value, cas)
    }
}

impl KeyHost for Host {
    fn dispatch(&mut self, request: &FetchRequest) -> Result<u32, String> {
        self.next_token += 1;
        self.outbox.push((self.next_token, request.timeout_ms));
        Ok(self.next_token)
    }
    fn response_header(&self, name: &str) -> Option<String> {
        if name == ":status" {
            return self.status.map(str::to_string);
        }
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    }
    fn response_body(&self, size: usize) -> Vec<u8> {
        self.body.iter().copied().take(size).collect()
    }
    fn log(&mut self, _level: Level, _message: &str) {}
}

struct Worker {
    keys: KeyLifecycle,
    /// Tick timer: last tick, period; the scheduled tick and its generation.
    last_tick: u64,
    period: u64,
    next_tick: u64,
    tick_gen: u64,
    /// Parked requests: context id -> (kid is new, parked at).
    parked: HashMap<u32, (bool, u64)>,
    /// Requests so far (indexes the worker's draws).
    requests: u64,
}

struct Envoy {
    host: Host,
    workers: Vec<Worker>,
    /// Dispatched call token -> worker.
    calls: HashMap<u32, usize>,
    /// When this Envoy last got keys (for stale-key use).
    last_ok_ms: u64,
    started: bool,
}

// ---------------------------------------------------------------- scenarios

#[derive(Clone, Debug)]
struct Scenario {
    name: &'static str,
    title: &'static str,
    duration_ms: u64,
    /// Envoys start uniformly within this window from 0.
    start_window_ms: u64,
    idp: Idp,
    /// Tokens carry the new kid from this time on (share ramps up).
    sign_ms: u64,
    ramp_ms: u64,
    /// Window for the load figures (mean, peaks).
    measure: (u64, u64),
}

fn idp(publish_ms: u64) -> Idp {
    Idp {
        modes: Vec::new(),
        qps_limit: None,
        retry_after_s: 0,
        publish_ms,
        tokens: 0.0,
        refilled_ms: 0,
    }
}

fn scenarios(short: bool) -> Vec<Scenario> {
    let k = if short { 4 } else { 1 }; // the short form: hours become quarter hours
    let never = u64::MAX;
    // Mid-way through a cache window of Envoys started at 0 s..60 s, so that
    // their scheduled refreshes do not happen to fetch the new key.
    let rot = 65 * MIN / k;
    let outage = 60 * MIN / k;
    vec![
        Scenario {
            name: "steady",
            title: "steady state (Envoys started over hours)",
            duration_ms: 3 * HOUR / k,
            start_window_ms: 2 * HOUR / k,
            idp: idp(never),
            sign_ms: never,
            ramp_ms: 1,
            measure: (2 * HOUR / k, 3 * HOUR / k),
        },
        Scenario {
            name: "rollout",
            title: "rollout: every Envoy started within 60 s",
            duration_ms: 3 * HOUR / k,
            start_window_ms: MIN,
            idp: idp(never),
            sign_ms: never,
            ramp_ms: 1,
            measure: (HOUR / k, 3 * HOUR / k),
        },
        Scenario {
            name: "rotation",
            title: "key rotation: new kid published and used at once",
            duration_ms: 2 * HOUR / k,
            start_window_ms: MIN,
            idp: idp(rot),
            sign_ms: rot,
            ramp_ms: 10 * MIN,
            measure: (rot, rot + 10 * MIN),
        },
        Scenario {
            name: "outage",
            title: "IdP answers 500 for 10 minutes",
            duration_ms: 2 * HOUR / k,
            start_window_ms: MIN,
            idp: Idp {
                modes: vec![(outage, Mode::Error), (outage + 10 * MIN, Mode::Up)],
                ..idp(never)
            },
            sign_ms: never,
            ramp_ms: 1,
            measure: (outage, outage + 20 * MIN),
        },
        Scenario {
            name: "outage_hang",
            title: "IdP hangs for 10 minutes",
            duration_ms: 2 * HOUR / k,
            start_window_ms: MIN,
            idp: Idp {
                modes: vec![(outage, Mode::Hang), (outage + 10 * MIN, Mode::Up)],
                ..idp(never)
            },
            sign_ms: never,
            ramp_ms: 1,
            measure: (outage, outage + 20 * MIN),
        },
        Scenario {
            name: "ratelimit",
            title:
                "IdP limited to 20 QPS (Retry-After 10 s); rotation announced a cache window ahead",
            duration_ms: 3 * HOUR / k,
            start_window_ms: MIN,
            idp: Idp {
                qps_limit: Some(20.0),
                retry_after_s: 10,
                tokens: 20.0,
                ..idp(2 * HOUR / k + 5 * MIN - 10 * MIN)
            },
            sign_ms: 2 * HOUR / k + 5 * MIN,
            ramp_ms: 10 * MIN,
            measure: (HOUR / k, 3 * HOUR / k),
        },
        Scenario {
            name: "ratelimit_rotation",
            title: "IdP limited to 20 QPS; new kid published and used at once",
            duration_ms: 2 * HOUR / k,
            start_window_ms: 30 * MIN / k,
            idp: Idp {
                qps_limit: Some(20.0),
                retry_after_s: 10,
                tokens: 20.0,
                ..idp(rot)
            },
            sign_ms: rot,
            ramp_ms: 10 * MIN,
            measure: (rot, rot + 10 * MIN),
        },
    ]
}

// ---------------------------------------------------------------- the run

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Start {
        envoy: usize,
    },
    Tick {
        envoy: usize,
        worker: usize,
        gen: u64,
    },
    Request {
        envoy: usize,
        worker: usize,
    },
    Answer {
        envoy: usize,
        token: u32,
        kind: u8,
    },
}

const ANSWER_OLD: u8 = 0;
const ANSWER_BOTH: u8 = 1;
const ANSWER_500: u8 = 2;
const ANSWER_429: u8 = 3;
const ANSWER_NONE: u8 = 4;

#[derive(Default, Clone, Debug)]
struct Stats {
    /// IdP requests per second: total, 200, 429, 500 or no answer.
    per_sec: Vec<[u32; 4]>,
    requests: u64,
    allowed: u64,
    allowed_stale: u64,
    max_key_age_ms: u64,
    refused_unknown_kid: u64,
    refused_unavailable: u64,
    refused_full: u64,
    new_kid_requests: u64,
    new_kid_refused: u64,
    last_new_kid_refused_ms: Option<u64>,
    waited: u64,
    wait_total_ms: u64,
    wait_max_ms: u64,
    new_kid_waited: u64,
    new_kid_wait_max_ms: u64,
    ticks: u64,
}

struct Sim<'a> {
    sc: &'a Scenario,
    config: Rc<Config>,
    schedule: Schedule,
    workers: usize,
    /// Requests per second per worker.
    rate: f64,
    all_ticks: bool,
    seed: u64,
    queue: BinaryHeap<Reverse<(u64, Event)>>,
    envoys: Vec<Envoy>,
    idp: Idp,
    bodies: [Rc<Vec<u8>>; 2],
    next_ctx: u32,
    st: Stats,
}

fn jwks_with(kids: &[&str]) -> Rc<Vec<u8>> {
    let all: serde_json::Value = serde_json::from_str(FIXTURE).unwrap_or_default();
    let template = all
        .get("keys")
        .and_then(|k| k.get(0))
        .cloned()
        .unwrap_or_default();
    let keys: Vec<serde_json::Value> = kids
        .iter()
        .map(|kid| {
            let mut k = template.clone();
            k["kid"] = serde_json::Value::from(*kid);
            k
        })
        .collect();
    Rc::new(serde_json::json!({ "keys": keys }).to_string().into_bytes())
}

fn sim_config() -> Rc<Config> {
    let json = r#"{"providers":{"idp":{"issuer":"https://idp.example","audiences":["api"],
        "remote_jwks":{"http_uri":{"uri":"https://idp.example/.well-known/jwks.json",
        "cluster":"idp","timeout":"5s"},"cache_duration":"600s"}}},
        "rules":[{"match":{"prefix":"/"},"requires":{"provider_name":"idp"}}]}"#;
    match Config::parse(json.as_bytes()) {
        Ok(c) => Rc::new(c),
        Err(e) => {
            eprintln!("simulation config: {}", jwt_filter::diag::describe(&e));
            std::process::exit(2);
        }
    }
}

impl<'a> Sim<'a> {
    /// A uniform draw in [0, 1) for (`stream`, `index`): each source of
    /// randomness has its own streams, so that the order events of the same
    /// millisecond run in changes nothing else.
    fn draw(&self, stream: u64, index: u64) -> f64 {
        (mix(mix(self.seed, stream), index) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn push(&mut self, at: u64, ev: Event) {
        self.queue.push(Reverse((at, ev)));
    }

    fn exp_ms(u: f64, rate_per_s: f64) -> u64 {
        (-u.max(1e-12).ln() / rate_per_s * 1000.0) as u64 + 1
    }

    /// The next request time of a worker (its own stream of draws).
    fn next_request(&mut self, e: usize, w: usize, now: u64) -> u64 {
        let wk = &mut self.envoys[e].workers[w];
        wk.requests += 1;
        let (stream, index) = (STREAM_REQUEST + (e * 64 + w) as u64 * 4, wk.requests);
        now + Self::exp_ms(self.draw(stream, index), self.rate)
    }

    fn run(mut self) -> Stats {
        let n = self.envoys.len();
        for e in 0..n {
            let at = (self.draw(STREAM_START, e as u64) * self.sc.start_window_ms as f64) as u64;
            self.push(at, Event::Start { envoy: e });
        }
        let secs = (self.sc.duration_ms / 1000) as usize + 1;
        self.st.per_sec = vec![[0; 4]; secs];
        while let Some(Reverse((now, ev))) = self.queue.pop() {
            if now > self.sc.duration_ms {
                break;
            }
            let envoy = match ev {
                Event::Start { envoy } => {
                    self.start(envoy, now);
                    envoy
                }
                Event::Tick { envoy, worker, gen } => {
                    if self.envoys[envoy].workers[worker].tick_gen != gen {
                        continue;
                    }
                    self.tick(envoy, worker, now);
                    envoy
                }
                Event::Request { envoy, worker } => {
                    self.request(envoy, worker, now);
                    let next = self.next_request(envoy, worker, now);
                    self.push(next, Event::Request { envoy, worker });
                    envoy
                }
                Event::Answer { envoy, token, kind } => {
                    self.answer(envoy, token, kind, now);
                    envoy
                }
            };
            self.after(envoy, now);
        }
        self.st
    }

    fn start(&mut self, e: usize, now: u64) {
        let mut ws = Vec::new();
        let host = &mut self.envoys[e].host;
        for w in 0..self.workers {
            let layout = Layout {
                providers: vec![("idp", KeySourceKind::Remote)],
                rules: vec![None],
                ..Layout::default()
            };
            let (_, metrics) = Metrics::define(host, &self.config.stat_prefix, &layout);
            let owner = unique_owner_id(host, w as u32 + 1, now);
            let keys = KeyLifecycle::new(self.config.clone(), metrics, owner)
                .with_seed(mix(self.seed ^ 0x5eed, (e * 64 + w) as u64))
                .with_schedule(self.schedule);
            let first = keys.first_tick_ms().unwrap_or(100);
            ws.push(Worker {
                keys,
                last_tick: now,
                period: first,
                next_tick: u64::MAX,
                tick_gen: 0,
                parked: HashMap::new(),
                requests: 0,
            });
        }
        self.envoys[e].workers = ws;
        self.envoys[e].started = true;
        for w in 0..self.workers {
            let at = now + self.envoys[e].workers[w].period;
            self.set_tick(e, w, at);
            let next = self.next_request(e, w, now);
            self.push(
                next,
                Event::Request {
                    envoy: e,
                    worker: w,
                },
            );
        }
    }

    fn set_tick(&mut self, e: usize, w: usize, at: u64) {
        let wk = &mut self.envoys[e].workers[w];
        wk.tick_gen += 1;
        wk.next_tick = at;
        let gen = wk.tick_gen;
        self.push(
            at,
            Event::Tick {
                envoy: e,
                worker: w,
                gen,
            },
        );
    }

    fn tick(&mut self, e: usize, w: usize, now: u64) {
        self.st.ticks += 1;
        let env = &mut self.envoys[e];
        let wk = &mut env.workers[w];
        let (ready, period) = wk.keys.on_tick(&mut env.host, now);
        wk.last_tick = now;
        wk.next_tick = u64::MAX;
        if let Some(p) = period {
            wk.period = p;
        }
        self.release(e, w, ready, now);
        self.dispatch(e, w, now);
    }

    /// The next tick a worker needs: every period while anything waits;
    /// otherwise (ticks elided) the first tick at or after the time the
    /// shared record says something becomes due.
    fn wanted_tick(&self, e: usize, w: usize, now: u64) -> u64 {
        let env = &self.envoys[e];
        let wk = &env.workers[w];
        let next_grid = |t: u64| {
            let p = wk.period.max(1);
            let k = t.saturating_sub(wk.last_tick).div_ceil(p).max(1);
            wk.last_tick + k * p
        };
        if self.all_ticks {
            return next_grid(now + 1);
        }
        let busy = wk.keys.parked() > 0
            || wk
                .keys
                .providers()
                .iter()
                .any(|p| p.pending() || !p.in_flight.is_empty());
        if busy {
            return next_grid(now + 1);
        }
        let meta = env
            .host
            .shared
            .find_suffix("|meta")
            .and_then(|v| Meta::decode(&v));
        let Some(m) = meta else {
            return next_grid(now + 1);
        };
        let installed = wk.keys.providers().first().map_or(0, |p| p.installed);
        if m.has_keys() && installed != m.version {
            return next_grid(now + 1); // keys to install
        }
        let r = self.remote();
        let mut due = if m.failures > 0 {
            m.retry_ms
        } else {
            m.refresh_ms
        };
        if m.leased(now) {
            due = due.max(m.lease_until_ms);
        }
        if m.has_keys() {
            due = due.min(m.refresh_ms.saturating_add(r.max_stale_ms) + 1);
        }
        next_grid(due.max(now + 1))
    }

    fn remote(&self) -> &jwt_filter::remote_jwks::RemoteJwks {
        match self.config.providers.first().map(|p| &p.keys) {
            Some(jwt_filter::config::KeySource::Remote(r)) => r,
            _ => unreachable_config(),
        }
    }

    /// After any event at an Envoy: calls to send, ticks to bring forward.
    fn after(&mut self, e: usize, now: u64) {
        if !self.envoys[e].started {
            return;
        }
        for w in 0..self.workers {
            let want = self.wanted_tick(e, w, now);
            if want < self.envoys[e].workers[w].next_tick {
                self.set_tick(e, w, want);
            }
        }
    }

    /// Sends the calls the worker dispatched to the IdP.
    fn dispatch(&mut self, e: usize, w: usize, now: u64) {
        let out = std::mem::take(&mut self.envoys[e].host.outbox);
        for (token, timeout) in out {
            self.envoys[e].calls.insert(token, w);
            let sec = (now / 1000) as usize;
            let answer = self.idp.answer(now);
            let u = self.draw(STREAM_LATENCY + e as u64 * 4, u64::from(token));
            let latency = 20 + Self::exp_ms(u, 1000.0 / 30.0); // ~50 ms
            let (at, kind, slot) = match answer {
                Answer::Hang => (now + timeout, ANSWER_NONE, 3),
                Answer::Status("429", _) => (now + latency, ANSWER_429, 2),
                Answer::Status("500", _) => (now + latency, ANSWER_500, 3),
                Answer::Status(_, true) => (now + latency, ANSWER_BOTH, 1),
                Answer::Status(_, false) => (now + latency, ANSWER_OLD, 1),
            };
            if let Some(c) = self.st.per_sec.get_mut(sec) {
                c[0] += 1;
                c[slot] += 1;
            }
            self.push(
                at,
                Event::Answer {
                    envoy: e,
                    token,
                    kind,
                },
            );
        }
    }

    fn answer(&mut self, e: usize, token: u32, kind: u8, now: u64) {
        let Some(w) = self.envoys[e].calls.remove(&token) else {
            return;
        };
        let retry_after = self.idp.retry_after_s.to_string();
        let env = &mut self.envoys[e];
        let host = &mut env.host;
        host.headers.clear();
        let body = match kind {
            ANSWER_OLD | ANSWER_BOTH => {
                host.status = Some("200");
                env.last_ok_ms = now;
                self.bodies[usize::from(kind)].clone()
            }
            ANSWER_429 => {
                host.status = Some("429");
                host.headers.push(("retry-after", retry_after));
                Rc::new(b"slow down".to_vec())
            }
            ANSWER_500 => {
                host.status = Some("500");
                Rc::new(b"internal error".to_vec())
            }
            _ => {
                host.status = None;
                Rc::new(Vec::new())
            }
        };
        let size = body.len();
        host.body = body;
        let ready = env.workers[w]
            .keys
            .on_fetch_response(host, now, token, size);
        self.release(e, w, ready, now);
        self.dispatch(e, w, now);
    }

    /// Whether the worker's current request carries the new kid.
    fn kid_is_new(&self, e: usize, w: usize, now: u64) -> bool {
        if now < self.sc.sign_ms {
            return false;
        }
        let share = (now - self.sc.sign_ms) as f64 / self.sc.ramp_ms as f64;
        let index = self.envoys[e].workers[w].requests;
        self.draw(STREAM_REQUEST + (e * 64 + w) as u64 * 4 + 1, index) < share
    }

    fn request(&mut self, e: usize, w: usize, now: u64) {
        let new = self.kid_is_new(e, w, now);
        self.st.requests += 1;
        if new {
            self.st.new_kid_requests += 1;
        }
        self.next_ctx = self.next_ctx.wrapping_add(1);
        let ctx = self.next_ctx;
        let env = &mut self.envoys[e];
        let wk = &mut env.workers[w];
        wk.keys.before_decide(&mut env.host, now);
        let verdict = decide(&wk.keys, new);
        let Verdict::Deny(cause, Some(wait)) = verdict else {
            self.outcome(e, verdict, new, now);
            return;
        };
        let view = RequestView::default();
        match wk
            .keys
            .park(&mut env.host, now, ctx, &view, 512, &[(0, wait)], None)
        {
            ParkResult::Parked => {
                wk.parked.insert(ctx, (new, now));
            }
            ParkResult::DecideNow => self.outcome(e, Verdict::Deny(cause, None), new, now),
            ParkResult::DecideAgain => {
                let v = decide(&wk.keys, new);
                self.outcome(e, v, new, now);
            }
            ParkResult::Deny(_) => self.outcome(e, Verdict::Deny(Cause::Full, None), new, now),
        }
        self.dispatch(e, w, now);
    }

    fn release(&mut self, e: usize, w: usize, ready: Vec<Parked>, now: u64) {
        for p in ready {
            let Some((new, at)) = self.envoys[e].workers[w].parked.remove(&p.context_id) else {
                continue;
            };
            let waited = now - at;
            self.st.waited += 1;
            self.st.wait_total_ms += waited;
            self.st.wait_max_ms = self.st.wait_max_ms.max(waited);
            if new {
                self.st.new_kid_waited += 1;
                self.st.new_kid_wait_max_ms = self.st.new_kid_wait_max_ms.max(waited);
            }
            let v = decide(&self.envoys[e].workers[w].keys, new);
            self.outcome(e, v, new, now);
        }
    }

    fn outcome(&mut self, e: usize, v: Verdict, new: bool, now: u64) {
        match v {
            Verdict::Allow => {
                self.st.allowed += 1;
                let age = now.saturating_sub(self.envoys[e].last_ok_ms);
                if age > self.remote().cache_duration_ms {
                    self.st.allowed_stale += 1;
                }
                self.st.max_key_age_ms = self.st.max_key_age_ms.max(age);
            }
            Verdict::Deny(cause, _) => {
                match cause {
                    Cause::UnknownKid => self.st.refused_unknown_kid += 1,
                    Cause::Unavailable => self.st.refused_unavailable += 1,
                    Cause::Full => self.st.refused_full += 1,
                }
                if new {
                    self.st.new_kid_refused += 1;
                    self.st.last_new_kid_refused_ms = Some(now);
                }
            }
        }
    }
}

fn unreachable_config() -> ! {
    eprintln!("the simulation config has no remote provider");
    std::process::exit(2)
}

#[derive(Clone, Copy, Debug)]
enum Cause {
    UnknownKid,
    Unavailable,
    Full,
}

#[derive(Clone, Copy, Debug)]
enum Verdict {
    Allow,
    Deny(Cause, Option<Wait>),
}

/// The policy's decision for a valid token with this `kid` and the one
/// remote provider: what `policy::Evaluator` decides, and the wait it reports.
fn decide(keys: &KeyLifecycle, new_kid: bool) -> Verdict {
    let kid = if new_kid { NEW_KID } else { OLD_KID };
    match keys.providers().first().map(|p| &p.keys) {
        Some(RemoteKeys::Ready(set)) if set.has_kid(kid) => Verdict::Allow,
        Some(RemoteKeys::Ready(_)) => Verdict::Deny(Cause::UnknownKid, Some(Wait::UnknownKid)),
        Some(RemoteKeys::Pending) | None => {
            Verdict::Deny(Cause::Unavailable, Some(Wait::FirstFetch))
        }
        Some(RemoteKeys::Unavailable) => Verdict::Deny(Cause::Unavailable, None),
    }
}

// ---------------------------------------------------------------- figures

struct Summary {
    mean_qps: f64,
    peak_qps: u32,
    peak_60s_qps: f64,
    total: u64,
    throttled: u64,
    failed: u64,
}

fn summarize(sc: &Scenario, st: &Stats) -> Summary {
    let (a, b) = sc.measure;
    let (a, b) = (
        (a / 1000) as usize,
        ((b / 1000) as usize).min(st.per_sec.len()),
    );
    let window = st.per_sec.get(a..b).unwrap_or(&[]);
    let total: u64 = window.iter().map(|c| u64::from(c[0])).sum();
    let mean_qps = total as f64 / window.len().max(1) as f64;
    let peak_qps = window.iter().map(|c| c[0]).max().unwrap_or(0);
    let peak_60s_qps = window
        .windows(60)
        .map(|w| w.iter().map(|c| u64::from(c[0])).sum::<u64>() as f64 / 60.0)
        .fold(0.0, f64::max);
    Summary {
        mean_qps,
        peak_qps,
        peak_60s_qps,
        total: st.per_sec.iter().map(|c| u64::from(c[0])).sum(),
        throttled: st.per_sec.iter().map(|c| u64::from(c[2])).sum(),
        failed: st.per_sec.iter().map(|c| u64::from(c[3])).sum(),
    }
}

struct Opts {
    short: bool,
    check: bool,
    all_ticks: bool,
    out: String,
    sizes: Vec<usize>,
    only: Option<String>,
    /// Requests per second per worker.
    rate: f64,
}

fn parse_args() -> Opts {
    let mut o = Opts {
        short: false,
        check: false,
        all_ticks: false,
        out: "target/mesh-sim".into(),
        sizes: vec![100, 1_000, 5_000],
        only: None,
        rate: 0.05,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--short" => o.short = true,
            "--check" => {
                o.check = true;
                o.short = true;
            }
            "--all-ticks" => o.all_ticks = true,
            "--out" => o.out = args.next().unwrap_or(o.out),
            "--n" => {
                o.sizes = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|s| s.parse().ok())
                    .collect();
            }
            "--scenario" => o.only = args.next(),
            "--rate" => o.rate = args.next().and_then(|r| r.parse().ok()).unwrap_or(o.rate),
            _ => {
                eprintln!(
                    "usage: mesh_sim [--short] [--check] [--all-ticks] [--n 100,1000] \
                     [--scenario NAME,...] [--rate REQ_PER_S_PER_WORKER] [--out DIR]"
                );
                std::process::exit(2);
            }
        }
    }
    if o.short && o.sizes == [100, 1_000, 5_000] {
        o.sizes = vec![200];
    }
    o
}

fn simulate(sc: &Scenario, n: usize, schedule: Schedule, all_ticks: bool, rate: f64) -> Stats {
    let sim = Sim {
        sc,
        config: sim_config(),
        schedule,
        workers: 2,
        rate,
        all_ticks,
        seed: 0x6d65_7368 ^ n as u64,
        queue: BinaryHeap::new(),
        envoys: (0..n)
            .map(|_| Envoy {
                host: Host::default(),
                workers: Vec::new(),
                calls: HashMap::new(),
                last_ok_ms: 0,
                started: false,
            })
            .collect(),
        idp: sc.idp.clone(),
        bodies: [jwks_with(&[OLD_KID]), jwks_with(&[OLD_KID, NEW_KID])],
        next_ctx: 0,
        st: Stats::default(),
    };
    sim.run()
}

fn main() {
    let o = parse_args();
    let _ = std::fs::create_dir_all(&o.out);
    let mut summary = String::from(
        "scenario,schedule,n,mean_qps,peak_qps,peak_60s_qps,idp_requests,throttled,failed,\
         requests,refused_unknown_kid,refused_unavailable,refused_full,new_kid_requests,\
         new_kid_refused,new_kid_refused_for_s,waited,mean_wait_ms,max_wait_ms,\
         new_kid_waited,new_kid_max_wait_ms,allowed_stale,max_key_age_s,ticks\n",
    );
    let mut series = String::from("scenario,schedule,n,second,requests,ok,throttled,failed\n");
    let mut failures = Vec::new();
    for sc in scenarios(o.short) {
        if o.only
            .as_deref()
            .is_some_and(|names| !names.split(',').any(|s| s == sc.name))
        {
            continue;
        }
        for &n in &o.sizes {
            for schedule in [Schedule::Fixed, Schedule::Spread] {
                let clock = std::time::Instant::now();
                let st = simulate(&sc, n, schedule, o.all_ticks, o.rate);
                let s = summarize(&sc, &st);
                let sched = match schedule {
                    Schedule::Fixed => "fixed",
                    Schedule::Spread => "spread",
                };
                let refused_for = st
                    .last_new_kid_refused_ms
                    .map_or(0.0, |t| t.saturating_sub(sc.sign_ms) as f64 / 1000.0);
                let _ = writeln!(
                    summary,
                    "{},{sched},{n},{:.2},{},{:.2},{},{},{},{},{},{},{},{},{},{:.1},{},{:.0},{},{},{},{},{},{}",
                    sc.name,
                    s.mean_qps,
                    s.peak_qps,
                    s.peak_60s_qps,
                    s.total,
                    s.throttled,
                    s.failed,
                    st.requests,
                    st.refused_unknown_kid,
                    st.refused_unavailable,
                    st.refused_full,
                    st.new_kid_requests,
                    st.new_kid_refused,
                    refused_for,
                    st.waited,
                    st.wait_total_ms as f64 / st.waited.max(1) as f64,
                    st.wait_max_ms,
                    st.new_kid_waited,
                    st.new_kid_wait_max_ms,
                    st.allowed_stale,
                    st.max_key_age_ms / 1000,
                    st.ticks,
                );
                eprintln!(
                    "{:<19} {sched:<6} n={n:<5} mean {:>7.2} qps, peak {:>5}/s, peak 60s {:>7.2} qps, \
                     429 {:>6}, new-kid refused {:>5}, unavailable {:>5}, waited {:>6} \
                     (max {:>5} ms) [{:.1}s]",
                    sc.name,
                    s.mean_qps,
                    s.peak_qps,
                    s.peak_60s_qps,
                    s.throttled,
                    st.new_kid_refused,
                    st.refused_unavailable,
                    st.waited,
                    st.wait_max_ms,
                    clock.elapsed().as_secs_f64()
                );
                for (sec, c) in st.per_sec.iter().enumerate() {
                    let _ = writeln!(
                        series,
                        "{},{sched},{n},{sec},{},{},{},{}",
                        sc.name, c[0], c[1], c[2], c[3]
                    );
                }
                if schedule == Schedule::Spread {
                    failures.extend(goals(&sc, n, &s, &st));
                }
                // Every tick against elided idle ticks, for two scenarios (the
                // all-ticks run is the slow part of the check).
                if o.check
                    && n == o.sizes[0]
                    && schedule == Schedule::Spread
                    && matches!(sc.name, "rotation" | "outage")
                {
                    let every = simulate(&sc, n, schedule, true, o.rate);
                    if every.per_sec != st.per_sec || every.allowed != st.allowed {
                        failures.push(format!(
                            "{}: eliding idle ticks changed the outcome (IdP requests {} vs {})",
                            sc.name,
                            s.total,
                            summarize(&sc, &every).total
                        ));
                    }
                }
            }
        }
    }
    let revocation = revocation_table(&o.sizes, o.short, &mut failures);
    let write = |name: &str, text: &str| {
        let path = format!("{}/{name}", o.out);
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("cannot write {path}: {e}");
        }
    };
    let titles: String = scenarios(o.short)
        .iter()
        .map(|sc| format!("{},{}\n", sc.name, sc.title))
        .collect();
    write("scenarios.csv", &format!("scenario,title\n{titles}"));
    write("summary.csv", &summary);
    write("qps.csv", &series);
    write("revocation.csv", &revocation);
    eprintln!(
        "wrote {0}/summary.csv, {0}/qps.csv and {0}/revocation.csv",
        o.out
    );
    if o.check {
        if failures.is_empty() {
            eprintln!("mesh simulation: every goal met");
        } else {
            for f in &failures {
                eprintln!("GOAL NOT MET: {f}");
            }
            std::process::exit(1);
        }
    } else {
        for f in &failures {
            eprintln!("goal not met: {f}");
        }
    }
}

/// The goals, for the spread schedule: load after a rollout within 2x of
/// its mean, no valid new-kid token refused at a rotation, no refused
/// valid traffic against a 20-QPS IdP once every Envoy has its keys, stale
/// keys carrying traffic through an outage.
fn goals(sc: &Scenario, n: usize, s: &Summary, st: &Stats) -> Vec<String> {
    let mut out = Vec::new();
    let name = sc.name;
    match name {
        "rollout" | "steady" if n >= 200 && s.peak_60s_qps > 2.0 * s.mean_qps => out.push(format!(
            "{name} n={n}: peak over 60 s {:.2} QPS > 2 x mean {:.2}",
            s.peak_60s_qps, s.mean_qps
        )),
        "rotation" | "ratelimit" if st.new_kid_refused > 0 => out.push(format!(
            "{name} n={n}: {} valid new-kid tokens refused",
            st.new_kid_refused
        )),
        "outage" | "outage_hang"
            if st.refused_unknown_kid + st.refused_unavailable + st.refused_full > 0 =>
        {
            out.push(format!(
                "{name} n={n}: valid tokens refused during the outage"
            ))
        }
        _ => {}
    }
    if name == "ratelimit" && st.refused_unknown_kid + st.refused_full > 0 {
        out.push(format!("{name} n={n}: valid tokens refused"));
    }
    out
}

// ---------------------------------------------------------------- revocation feeds

/// Deny-list entries in the simulated document.
const DENY_LIST_ENTRIES: usize = 10_000;
/// The deny list changes this often (one revocation a minute).
const DENY_LIST_CHANGE_MS: u64 = MIN;
/// Bytes of an HTTP response without a body (status line and headers).
const RESPONSE_HEAD_BYTES: usize = 200;
/// Bytes of an SSF poll request body (`ack` empty, `maxEvents`) and of an
/// answer without SETs.
const SSF_POLL_BODY_BYTES: usize = 48;
const SSF_EMPTY_ANSWER_BYTES: usize = 32;

/// The feed settings the filter derives from a configuration with both
/// feeds at their default poll intervals (deny list 30 s, SSF 5 s).
fn revocation_feeds() -> (
    jwt_filter::remote_jwks::RemoteJwks,
    jwt_filter::remote_jwks::RemoteJwks,
) {
    let json = serde_json::json!({
        "providers": {"idp": {
            "issuer": "https://idp.example",
            "audiences": ["api"],
            "local_jwks": {"inline_string": FIXTURE},
            "revocation": {
                "deny_list": {"http_uri": {"uri": "https://idp.example/revoked.json", "cluster": "idp"}},
                "ssf": {
                    "poll_endpoint": {"uri": "https://idp.example/ssf/poll", "cluster": "idp"},
                    "transmitter_jwks": {"http_uri": {"uri": "https://idp.example/ssf/jwks", "cluster": "idp"}},
                    "issuer": "https://idp.example",
                    "audience": "https://mesh.example",
                },
            },
        }},
        "rules": [],
    })
    .to_string();
    let feeds = Config::parse(json.as_bytes()).ok().and_then(|c| {
        let r = c.providers.first()?.revocation.clone()?;
        Some((r.deny_list?.fetch, r.ssf?.poll.fetch))
    });
    feeds.unwrap_or_else(|| {
        eprintln!("simulation config with revocation refused");
        std::process::exit(2);
    })
}

/// The deny-list document of `DENY_LIST_ENTRIES` `jti` rules, as served.
fn deny_list_bytes() -> usize {
    let mut doc = String::from("{\"version\":1,\"entries\":[");
    for i in 0..DENY_LIST_ENTRIES {
        if i > 0 {
            doc.push(',');
        }
        let _ = write!(
            doc,
            "{{\"kind\":\"jti\",\"value\":\"{:016x}{:016x}\",\"expires\":1767229200}}",
            mix(1, i as u64),
            mix(2, i as u64)
        );
    }
    doc.push_str("]}");
    doc.len()
}

/// One feed's polls at the IdP over `span_ms`.
struct FeedLoad {
    polls: u64,
    full: u64,
    per_sec: Vec<u32>,
    bytes_out: u64,
}

/// Every Envoy starts within the first minute (a rollout), polls at once,
/// then when its schedule says. `full_bytes(prev, now)`: the answer's body
/// when the document changed between the Envoy's previous poll and this one
/// (`None`: 304 / no SETs).
fn feed_load(
    fetch: &jwt_filter::remote_jwks::RemoteJwks,
    n: usize,
    span_ms: u64,
    stream: u64,
    changed: &dyn Fn(u64, u64) -> bool,
    full_bytes: usize,
    empty_bytes: usize,
) -> FeedLoad {
    let mut load = FeedLoad {
        polls: 0,
        full: 0,
        per_sec: vec![0; (span_ms / 1000) as usize + 1],
        bytes_out: 0,
    };
    for e in 0..n as u64 {
        let seed = mix(stream, e);
        let mut now = seed % MIN;
        let mut meta = Meta::default();
        let mut last: Option<u64> = None;
        while now < span_ms {
            load.polls += 1;
            if let Some(c) = load.per_sec.get_mut((now / 1000) as usize) {
                *c += 1;
            }
            // A first poll gets the whole document (an SSF stream: nothing queued).
            let full = match last {
                None => full_bytes > 0,
                Some(prev) => changed(prev, now),
            };
            if full {
                load.full += 1;
                load.bytes_out += (RESPONSE_HEAD_BYTES + full_bytes) as u64;
            } else {
                load.bytes_out += (RESPONSE_HEAD_BYTES + empty_bytes) as u64;
            }
            last = Some(now);
            meta = meta.after_success(fetch, now, None, Schedule::Spread, mix(seed, meta.attempts));
            now = meta.refresh_ms.max(now + 1);
        }
    }
    load
}

/// The revocation rows (CSV) for each mesh size; in the short form, a goal:
/// the busiest minute within 1.5x of the mean once the rollout is over.
fn revocation_table(sizes: &[usize], short: bool, failures: &mut Vec<String>) -> String {
    let (deny, ssf) = revocation_feeds();
    let doc = deny_list_bytes();
    let span_ms = if short { 10 * MIN } else { HOUR };
    let mut out = String::from(
        "feed,n,poll_interval_s,polls,mean_rps,peak_1s_rps,peak_60s_rps,full_answers,\
         not_modified,mean_egress_kib_s,mean_request_body_kib_s,document_bytes\n",
    );
    for &n in sizes {
        let feeds: [(&str, &jwt_filter::remote_jwks::RemoteJwks, FeedLoad); 2] = [
            (
                "deny_list",
                &deny,
                feed_load(
                    &deny,
                    n,
                    span_ms,
                    0xde17,
                    &|prev, now| prev / DENY_LIST_CHANGE_MS != now / DENY_LIST_CHANGE_MS,
                    doc,
                    0,
                ),
            ),
            (
                "ssf",
                &ssf,
                feed_load(
                    &ssf,
                    n,
                    span_ms,
                    0x55f,
                    &|_, _| false,
                    0,
                    SSF_EMPTY_ANSWER_BYTES,
                ),
            ),
        ];
        for (name, fetch, load) in feeds {
            let secs = (span_ms / 1000) as f64;
            // Past the first two minutes: the rollout's first polls are over.
            let steady = load.per_sec.get(120..).unwrap_or(&[]);
            let mean =
                steady.iter().map(|&c| f64::from(c)).sum::<f64>() / steady.len().max(1) as f64;
            let peak_1s = load.per_sec.iter().copied().max().unwrap_or(0);
            let peak_60s = steady
                .windows(60)
                .map(|w| w.iter().map(|&c| f64::from(c)).sum::<f64>() / 60.0)
                .fold(0.0, f64::max);
            let egress = load.bytes_out as f64 / secs / 1024.0;
            let ingress = if name == "ssf" {
                (load.polls * SSF_POLL_BODY_BYTES as u64) as f64 / secs / 1024.0
            } else {
                0.0
            };
            let _ = writeln!(
                out,
                "{name},{n},{},{},{mean:.2},{peak_1s},{peak_60s:.2},{},{},{egress:.1},{ingress:.1},{}",
                fetch.cache_duration_ms / 1000,
                load.polls,
                load.full,
                load.polls - load.full,
                if name == "ssf" { 0 } else { doc },
            );
            eprintln!(
                "revocation {name:<9} n={n:<5} every {:>2} s: mean {mean:>7.2} req/s, peak 1 s {peak_1s:>4}, \
                 peak 60 s {peak_60s:>7.2}, full answers {:>5.1}%, egress {egress:>8.1} KiB/s",
                fetch.cache_duration_ms / 1000,
                100.0 * load.full as f64 / load.polls.max(1) as f64,
            );
            if short && peak_60s > 1.5 * mean {
                failures.push(format!(
                    "revocation {name} n={n}: busiest minute {peak_60s:.2} req/s > 1.5 x mean {mean:.2}"
                ));
            }
        }
    }
    out
}
