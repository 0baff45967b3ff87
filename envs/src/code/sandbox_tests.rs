//! Sandbox tests against the real guest: one per bad-input case, each asserting the limit or
//! error that names it. All tests share the process's [`Sandbox::shared`] (compiled once, then
//! loaded from the disk cache).

use super::*;
use std::sync::Arc;

fn sb() -> Arc<Sandbox> {
    Sandbox::shared().expect("the sandbox opens (the guest is fetched and compiled on first use)")
}

fn lim() -> Limits {
    Limits { fuel: 2_000_000_000, deadline_ms: 10_000, memory_mb: 512, output_bytes: 65_536, open_files: 64 }
}

fn run(code: &str, limits: &Limits) -> Execution {
    sb().run(code, limits).expect("the sandbox runs")
}

#[test]
fn print_runs_and_reports_exit_zero() {
    let e = run("print(1+1)", &lim());
    assert_eq!((e.stdout.as_str(), e.exit_code, e.limit), ("2\n", Some(0), None), "{e:?}");
    assert!(e.fuel_used > 0);
}

#[test]
fn fuel_is_deterministic() {
    let a = run("print(sum(range(1000)))", &lim());
    let b = run("print(sum(range(1000)))", &lim());
    assert_eq!(a.stdout, "499500\n");
    assert_eq!(a.fuel_used, b.fuel_used);
}

#[test]
fn uncaught_exception_is_exit_one_with_traceback() {
    let e = run("raise ValueError('boom')", &lim());
    assert_eq!(e.exit_code, Some(1));
    assert!(e.stderr.contains("ValueError: boom"), "{e:?}");
}

#[test]
fn infinite_loop_is_stopped_by_fuel() {
    let e = run("while True: pass", &Limits { fuel: 20_000_000, ..lim() });
    assert_eq!((e.limit, e.exit_code), (Some(LimitKind::Fuel), None), "{e:?}");
}

#[test]
fn infinite_loop_is_stopped_by_the_deadline() {
    let e = run("while True: pass", &Limits { fuel: u64::MAX / 2, deadline_ms: 200, ..lim() });
    assert_eq!((e.limit, e.exit_code), (Some(LimitKind::Deadline), None), "{e:?}");
}

#[test]
fn sleep_obeys_the_deadline() {
    let t = std::time::Instant::now();
    let e = run(
        "import time\nprint('before', flush=True)\ntime.sleep(30)\nprint('after')",
        &Limits { deadline_ms: 300, ..lim() },
    );
    assert_eq!((e.limit, e.exit_code), (Some(LimitKind::Deadline), None), "{e:?}");
    assert_eq!(e.stdout, "before\n");
    assert!(t.elapsed().as_secs() < 10, "time.sleep(30) outlived a 300 ms deadline");
}

#[test]
fn short_sleep_returns() {
    let e = run("import time\nt = time.monotonic()\ntime.sleep(0.05)\nprint(time.monotonic() - t >= 0.05)", &lim());
    assert_eq!((e.stdout.as_str(), e.exit_code), ("True\n", Some(0)), "{e:?}");
}

#[test]
fn memory_bomb_is_stopped_by_the_memory_limit() {
    let e = run("x = bytearray(1 << 30)\nprint(len(x))", &Limits { memory_mb: 256, ..lim() });
    assert_eq!((e.limit, e.exit_code), (Some(LimitKind::Memory), None), "{e:?}");
    let e = run("x = []\nwhile True: x.append(' ' * 100000)", &Limits { memory_mb: 256, ..lim() });
    assert_eq!((e.limit, e.exit_code), (Some(LimitKind::Memory), None), "{e:?}");
}

#[test]
fn output_flood_keeps_the_first_bytes() {
    let e = run("for i in range(10000): print('x' * 99)", &Limits { output_bytes: 1000, ..lim() });
    assert_eq!(e.stdout, ("x".repeat(99) + "\n").repeat(10));
    assert_eq!(e.truncated, vec!["stdout".to_string()]);
    assert_eq!((e.limit, e.exit_code), (Some(LimitKind::Output), Some(0)), "{e:?}");
    let e = run(
        "import sys\nwhile True: sys.stderr.write('e' * 4096)",
        &Limits { output_bytes: 100, fuel: 50_000_000, ..lim() },
    );
    assert_eq!(e.stderr.len(), 100);
    assert_eq!(e.truncated, vec!["stderr".to_string()]);
    assert_eq!(e.limit, Some(LimitKind::Fuel), "a flood that never ends is stopped by another limit");
}

#[test]
fn deep_recursion_is_a_recursion_error() {
    let e = run("def f(n): return f(n + 1)\nf(0)", &lim());
    assert_eq!(e.exit_code, Some(1), "{e:?}");
    assert!(e.stderr.contains("RecursionError"), "{e:?}");
}

#[test]
fn unbounded_recursion_limit_is_contained() {
    // Python-level recursion lives on the heap in CPython 3.15: fuel or memory stops it.
    let code = "import sys\nsys.setrecursionlimit(10**8)\ndef f(n): return f(n + 1)\nf(0)";
    let e = run(code, &Limits { fuel: 300_000_000, ..lim() });
    assert!(matches!(e.limit, Some(LimitKind::Fuel | LimitKind::Memory)) && e.exit_code.is_none(), "{e:?}");
    // C-level recursion (repr of a deeply nested list) meets CPython's stack check or
    // wasmtime's stack guard; either way it is named and the host is fine.
    let code = "import sys\nsys.setrecursionlimit(10**8)\nx = []\nfor _ in range(200000): x = [x]\nprint(len(repr(x)))";
    let e = run(code, &lim());
    let named = e.stderr.contains("RecursionError")
        || e.stderr.contains("MemoryError")
        || e.trap.as_deref().is_some_and(|t| t.contains("stack"));
    assert!(named && e.exit_code != Some(0), "{e:?}");
    assert_eq!(run("print(2)", &lim()).stdout, "2\n", "the host is fine afterwards");
}

#[test]
fn host_files_are_not_visible() {
    let e = run("print(open('/etc/passwd').read())", &lim());
    assert_eq!(e.exit_code, Some(1), "{e:?}");
    assert!(e.stderr.contains("FileNotFoundError") || e.stderr.contains("PermissionError"), "{e:?}");
    assert!(!e.stdout.contains("root:"));
}

#[test]
fn dotdot_escapes_stay_inside_the_preopen() {
    let code = "import os\nprint(os.listdir('/usr/local/lib/../../..'))\nprint(open('/usr/local/lib/../../../etc/passwd').read())";
    let e = run(code, &lim());
    assert_eq!(e.exit_code, Some(1), "{e:?}");
    assert!(!e.stdout.contains("root:") && !e.stdout.contains("'etc'"), "{e:?}");
    assert!(e.stderr.contains("Error"), "{e:?}");
}

#[cfg(unix)]
#[test]
fn symlinks_out_of_a_mount_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
    std::os::unix::fs::symlink("/etc", dir.path().join("etc")).unwrap();
    std::fs::write(dir.path().join("ok.txt"), "inside").unwrap();
    let mounts = [Mount { host: dir.path().into(), guest: "/data".into(), writable: false }];
    let ok = sb().run_with("print(open('/data/ok.txt').read())", &lim(), &mounts, 0).unwrap();
    assert_eq!(ok.stdout, "inside\n", "{ok:?}");
    for path in ["/data/passwd", "/data/etc/passwd"] {
        let e = sb().run_with(&format!("print(open('{path}').read())"), &lim(), &mounts, 0).unwrap();
        assert_eq!(e.exit_code, Some(1), "{path}: {e:?}");
        assert!(!e.stdout.contains("root:"), "{path}: {e:?}");
    }
}

#[test]
fn sockets_are_refused() {
    let e =
        run("import socket\ns = socket.create_connection(('127.0.0.1', 80), timeout=1)\nprint('connected')", &lim());
    assert_eq!(e.exit_code, Some(1), "{e:?}");
    assert!(!e.stdout.contains("connected"));
    assert!(e.stderr.contains("Error"), "{e:?}");
}

#[test]
fn subprocesses_are_refused() {
    let e = run("import subprocess\nsubprocess.run(['ls', '/'])\nprint('ran')", &lim());
    assert_eq!(e.exit_code, Some(1), "{e:?}");
    assert!(!e.stdout.contains("ran"));
    let e = run("import os\nprint(os.system('ls /'))", &lim());
    assert_ne!(e.stdout.trim(), "0", "{e:?}");
}

#[test]
fn os_exit_is_an_exit_code_not_a_host_exit() {
    let e = run("import os\nprint('bye', flush=True)\nos._exit(3)", &lim());
    assert_eq!((e.exit_code, e.stdout.as_str(), e.limit), (Some(3), "bye\n", None), "{e:?}");
    let e = run("import sys\nsys.exit(4)", &lim());
    assert_eq!(e.exit_code, Some(4), "{e:?}");
}

#[test]
fn writes_to_read_only_mounts_are_refused() {
    let e = run("open('/usr/local/lib/evil.py', 'w').write('x')", &lim());
    assert_eq!(e.exit_code, Some(1), "{e:?}");
    assert!(e.stderr.contains("Error"), "{e:?}");
    let dir = tempfile::tempdir().unwrap();
    let ro = [Mount { host: dir.path().into(), guest: "/data".into(), writable: false }];
    let e = sb().run_with("open('/data/x.txt', 'w').write('x')", &lim(), &ro, 0).unwrap();
    assert_eq!(e.exit_code, Some(1), "{e:?}");
    assert!(!dir.path().join("x.txt").exists());
    let rw = [Mount { host: dir.path().into(), guest: "/scratch".into(), writable: true }];
    let e = sb().run_with("open('/scratch/x.txt', 'w').write('hi')", &lim(), &rw, 0).unwrap();
    assert_eq!(e.exit_code, Some(0), "{e:?}");
    assert_eq!(std::fs::read_to_string(dir.path().join("x.txt")).unwrap(), "hi");
}

#[test]
fn too_many_open_files_is_the_files_limit() {
    let code = "fs = [open('/usr/local/lib/python315.zip', 'rb') for _ in range(100)]\nprint(len(fs))";
    let e = run(code, &Limits { open_files: 16, ..lim() });
    assert_eq!((e.limit, e.exit_code), (Some(LimitKind::Files), None), "{e:?}");
    let e = run(
        "for _ in range(100):\n    open('/usr/local/lib/python315.zip', 'rb').close()\nprint('ok')",
        &Limits { open_files: 16, ..lim() },
    );
    assert_eq!((e.stdout.as_str(), e.limit), ("ok\n", None), "closed files do not count: {e:?}");
}

#[test]
fn session_keeps_state_and_each_turn_has_its_own_budget() {
    let sandbox = sb();
    let mut s = Session::new(&sandbox, &lim(), &[], 0).unwrap();
    assert!(s.turn("x = 41", &lim()).unwrap().ok());
    let e = s.turn("print(x + 1)", &lim()).unwrap();
    assert_eq!(e.stdout, "42\n");
    let e = s.turn("print(undefined_name)", &lim()).unwrap();
    assert_eq!(e.exit_code, Some(1));
    assert!(e.stderr.contains("NameError"), "{e:?}");
    assert_eq!(s.turn("print(x)", &lim()).unwrap().stdout, "41\n", "an exception does not end the session");
    let e = s.turn("while True: pass", &Limits { fuel: 10_000_000, ..lim() }).unwrap();
    assert_eq!(e.limit, Some(LimitKind::Fuel));
    let e = s.turn("print(x)", &lim()).unwrap();
    assert!(e.trap.as_deref().unwrap().contains("session ended"), "{e:?}");
}

#[test]
fn run_json_has_the_documented_keys() {
    let req = run::RunRequest { code: Some("print('hi')".into()), fuel: Some(1_000_000_000), ..Default::default() };
    let e = run::run(&req).unwrap();
    let v = serde_json::to_value(&e).unwrap();
    for k in ["stdout", "stderr", "exit_code", "limit", "fuel_used", "elapsed_ms", "truncated"] {
        assert!(v.get(k).is_some(), "missing key {k} in {v}");
    }
    assert_eq!(v["stdout"], "hi\n");
    assert_eq!(v["limit"], serde_json::Value::Null);
    let e =
        run::run(&run::RunRequest { code: Some("while 1: pass".into()), deadline_ms: Some(100), ..Default::default() })
            .unwrap();
    assert_eq!(serde_json::to_value(&e).unwrap()["limit"], "deadline");
    assert!(run::human(&e).contains("stopped by the deadline limit"));
}

/// A warm snapshot starts every fresh execution with the preload's effects (numpy imported)
/// without sharing anything between executions.
#[test]
fn warm_snapshot_starts_with_the_preload_done_and_stays_isolated() {
    let snippet = "import numpy as np\nprint(int(np.arange(10).sum()))";
    let plain = Sandbox::open(&SandboxConfig { pool_size: 8, ..SandboxConfig::default() }).unwrap();
    let cold = plain.run(snippet, &lim()).unwrap();
    let config = SandboxConfig { preload: Some("import numpy".into()), pool_size: 8, ..SandboxConfig::default() };
    let warm_sb = Sandbox::open(&config).expect("the warm snapshot builds");
    let warm = warm_sb.run(snippet, &lim()).unwrap();
    assert_eq!((cold.stdout.as_str(), warm.stdout.as_str()), ("45\n", "45\n"), "{cold:?} {warm:?}");
    assert!(
        warm.fuel_used * 20 < cold.fuel_used,
        "numpy is imported already: warm {} vs cold {}",
        warm.fuel_used,
        cold.fuel_used
    );
    assert!(warm_sb.run("import numpy\nnumpy.leak = 1", &lim()).unwrap().ok());
    let e = warm_sb.run("import numpy\nprint(hasattr(numpy, 'leak'))", &lim()).unwrap();
    assert_eq!(e.stdout, "False\n", "fresh executions share nothing: {e:?}");
    // Randomness follows each execution's seed, not the state the snapshot was taken in.
    let draw = |seed| {
        let code = "import numpy as np, random\nprint(np.random.random(), random.random())";
        Session::new(&warm_sb, &lim(), &[], seed).unwrap().turn(code, &lim()).unwrap().stdout
    };
    assert_eq!(draw(1), draw(1));
    assert_ne!(draw(1), draw(2));
}

#[test]
fn stdin_is_what_the_caller_gave_then_end_of_file() {
    let sandbox = sb();
    let code = "import sys\na, b = map(int, input().split())\nprint(a + b)\nprint(repr(sys.stdin.read()))";
    let mut s = Session::with_stdin(&sandbox, &lim(), &[], 0, b"2 40\nrest\n").unwrap();
    let e = s.turn(code, &lim()).unwrap();
    assert_eq!((e.stdout.as_str(), e.exit_code), ("42\n'rest\\n'\n", Some(0)), "{e:?}");
    // Without input, reading stdin is an immediate end of file, never a wait.
    let e = run("import sys\nprint(repr(sys.stdin.read()))\ninput()", &lim());
    assert_eq!(e.stdout, "''\n");
    assert!(e.stderr.contains("EOFError"), "{e:?}");
}

#[test]
fn a_pool_holds_as_many_live_interpreters_as_its_size() {
    // Each instance takes two memory slots (its linear memory and its GC heap); a pool sized
    // for one held only half its instances.
    let sandbox = Sandbox::open(&SandboxConfig { pool_size: 6, ..SandboxConfig::default() }).unwrap();
    let before = live_sessions();
    let mut live: Vec<Session> = (0..6).map(|i| Session::new(&sandbox, &lim(), &[], i).unwrap()).collect();
    assert!(live_sessions() >= before + 6);
    for s in &mut live {
        assert_eq!(s.turn("print(1)", &lim()).unwrap().stdout, "1\n");
    }
    let Err(full) = Session::new(&sandbox, &lim(), &[], 9) else { panic!("a seventh interpreter fit in a pool of 6") };
    assert!(full.to_string().contains("concurrent limit"), "{full}");
    live.pop();
    assert!(Session::new(&sandbox, &lim(), &[], 9).is_ok(), "a freed slot is reused");
}
