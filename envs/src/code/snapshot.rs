//! Warm snapshots (the Wizer approach): run set-up code (`import numpy, pandas`) once in a live
//! guest, then write a new module whose initial state is that guest's state, so every fresh
//! instance starts with the modules already imported.
//!
//! Two rewrites of the guest's binary, both leaving its code untouched:
//! - [`instrument`]: export every defined global (`__rlvr_global_N`) so the host can read them,
//!   and wasi-libc's preopen reset; the sandbox compiles the instrumented guest, so any of its
//!   instances can be snapshotted.
//! - [`rewrite`]: the instrumented module with its memory's minimum raised to the live size, its
//!   data segments replaced by the live memory's non-zero pages, and each global initialised to
//!   its live value.
//!
//! Sound because the guest's only state is its linear memory and its globals: the function table
//! is never written, and the WASI state a new instance gets (empty stdio, the guest's library
//! directory as its first preopen) is the state the set-up code saw, as long as it leaves no file
//! open. Directories mounted later are found because libc's preopen table is emptied before the
//! snapshot is taken (libc fills it again at the next file access).

use wasm_encoder::{
    ConstExpr, DataCountSection, DataSection, ExportKind, ExportSection, GlobalSection, GlobalType, MemorySection,
    MemoryType, Module, RawSection, ValType,
};
use wasmtime::wasmparser::{self, Parser, Payload};

/// The prefix of the exports [`instrument`] adds.
pub const GLOBAL_EXPORT: &str = "__rlvr_global_";

const PAGE: usize = 65536;

/// A global's live value, as read from an instance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GlobalValue {
    /// An `i32` global.
    I32(i32),
    /// An `i64` global.
    I64(i64),
    /// An `f32` global (bits).
    F32(u32),
    /// An `f64` global (bits).
    F64(u64),
}

fn bad(e: impl std::fmt::Display) -> String {
    format!("rewriting the guest: {e}")
}

fn val_type(t: wasmparser::ValType) -> Result<ValType, String> {
    Ok(match t {
        wasmparser::ValType::I32 => ValType::I32,
        wasmparser::ValType::I64 => ValType::I64,
        wasmparser::ValType::F32 => ValType::F32,
        wasmparser::ValType::F64 => ValType::F64,
        other => return Err(bad(format!("global of type {other:?} cannot be snapshotted"))),
    })
}

/// Copies every section of `wasm` except those `edit` handles (it returns true for them).
fn rebuild(
    wasm: &[u8],
    mut edit: impl FnMut(&Payload<'_>, &mut Module) -> Result<bool, String>,
) -> Result<Vec<u8>, String> {
    let mut module = Module::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(bad)?;
        if edit(&payload, &mut module)? {
            continue;
        }
        if let Some((id, range)) = payload.as_section() {
            module.section(&RawSection { id, data: &wasm[range] });
        }
    }
    Ok(module.finish())
}

/// Counts the module's own (not imported) globals and imported globals.
fn globals(wasm: &[u8]) -> Result<(u32, u32), String> {
    let (mut imported, mut defined) = (0, 0);
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(bad)? {
            Payload::ImportSection(r) => {
                for imp in r.into_imports() {
                    if matches!(imp.map_err(bad)?.ty, wasmparser::TypeRef::Global(_)) {
                        imported += 1;
                    }
                }
            }
            Payload::GlobalSection(r) => defined = r.count(),
            _ => {}
        }
    }
    Ok((imported, defined))
}

/// The export [`instrument`] gives wasi-libc's `__wasilibc_reset_preopens`, when the guest's
/// name section names it.
pub const RESET_PREOPENS_EXPORT: &str = "__rlvr_reset_preopens";

/// The index of the function the name section calls `name`, if any.
fn function_named(wasm: &[u8], name: &str) -> Result<Option<u32>, String> {
    for payload in Parser::new(0).parse_all(wasm) {
        let Payload::CustomSection(c) = payload.map_err(bad)? else { continue };
        let wasmparser::KnownCustom::Name(reader) = c.as_known() else { continue };
        for sub in reader {
            let wasmparser::Name::Function(map) = sub.map_err(bad)? else { continue };
            for naming in map {
                let naming = naming.map_err(bad)?;
                if naming.name == name {
                    return Ok(Some(naming.index));
                }
            }
        }
    }
    Ok(None)
}

/// The guest with every defined global exported as `__rlvr_global_N` (N its index among the
/// defined globals), and wasi-libc's `__wasilibc_reset_preopens` as [`RESET_PREOPENS_EXPORT`]:
/// set-up code that touched the file system leaves libc's table of preopened directories
/// filled in, and a snapshot taken with it would never see the directories a later instance
/// mounts.
pub fn instrument(wasm: &[u8]) -> Result<Vec<u8>, String> {
    let (imported, defined) = globals(wasm)?;
    let reset_preopens = function_named(wasm, "__wasilibc_reset_preopens")?;
    rebuild(wasm, |payload, module| {
        let Payload::ExportSection(r) = payload else { return Ok(false) };
        let mut exports = ExportSection::new();
        for e in r.clone() {
            let e = e.map_err(bad)?;
            let kind = match e.kind {
                wasmparser::ExternalKind::Func | wasmparser::ExternalKind::FuncExact => ExportKind::Func,
                wasmparser::ExternalKind::Table => ExportKind::Table,
                wasmparser::ExternalKind::Memory => ExportKind::Memory,
                wasmparser::ExternalKind::Global => ExportKind::Global,
                wasmparser::ExternalKind::Tag => ExportKind::Tag,
            };
            exports.export(e.name, kind, e.index);
        }
        for i in 0..defined {
            exports.export(&format!("{GLOBAL_EXPORT}{i}"), ExportKind::Global, imported + i);
        }
        if let Some(f) = reset_preopens {
            exports.export(RESET_PREOPENS_EXPORT, ExportKind::Func, f);
        }
        module.section(&exports);
        Ok(true)
    })
}

/// The non-zero pages of `memory` as `(offset, bytes)` runs of whole pages.
fn runs(memory: &[u8]) -> Vec<(usize, &[u8])> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, page) in memory.chunks(PAGE).enumerate() {
        let nonzero = page.iter().any(|&b| b != 0);
        match (nonzero, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s * PAGE, &memory[s * PAGE..i * PAGE]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s * PAGE, &memory[s * PAGE..]));
    }
    out
}

/// The instrumented module `wasm` with `memory` as its initial memory and `values` (one per
/// defined global, in order) as its globals' initial values.
pub fn rewrite(wasm: &[u8], memory: &[u8], values: &[GlobalValue]) -> Result<Vec<u8>, String> {
    let segments = runs(memory);
    rebuild(wasm, |payload, module| {
        match payload {
            Payload::MemorySection(r) => {
                let mut s = MemorySection::new();
                for m in r.clone() {
                    let m = m.map_err(bad)?;
                    let pages = (memory.len() / PAGE) as u64;
                    s.memory(MemoryType {
                        minimum: pages.max(m.initial),
                        maximum: m.maximum,
                        memory64: m.memory64,
                        shared: m.shared,
                        page_size_log2: m.page_size_log2,
                    });
                }
                module.section(&s);
            }
            Payload::GlobalSection(r) => {
                let mut s = GlobalSection::new();
                for (g, v) in r.clone().into_iter().zip(values.iter().chain(std::iter::repeat(&GlobalValue::I32(0)))) {
                    let g = g.map_err(bad)?;
                    let ty = GlobalType {
                        val_type: val_type(g.ty.content_type)?,
                        mutable: g.ty.mutable,
                        shared: g.ty.shared,
                    };
                    let init = match (ty.val_type, v) {
                        (ValType::I32, GlobalValue::I32(x)) => ConstExpr::i32_const(*x),
                        (ValType::I64, GlobalValue::I64(x)) => ConstExpr::i64_const(*x),
                        (ValType::F32, GlobalValue::F32(x)) => ConstExpr::f32_const(f32::from_bits(*x).into()),
                        (ValType::F64, GlobalValue::F64(x)) => ConstExpr::f64_const(f64::from_bits(*x).into()),
                        _ => return Err(bad("a global's live value has another type")),
                    };
                    s.global(ty, &init);
                }
                module.section(&s);
            }
            Payload::DataCountSection { .. } => {
                module.section(&DataCountSection { count: segments.len() as u32 });
            }
            Payload::DataSection(_) => {
                let mut s = DataSection::new();
                for (offset, bytes) in &segments {
                    s.active(0, &ConstExpr::i32_const(*offset as i32), bytes.iter().copied());
                }
                module.section(&s);
            }
            _ => return Ok(false),
        }
        Ok(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_whole_nonzero_pages() {
        let mut m = vec![0u8; 4 * PAGE];
        m[10] = 1;
        m[2 * PAGE + 5] = 2;
        m[3 * PAGE] = 3;
        let r = runs(&m);
        assert_eq!(r.iter().map(|(o, b)| (*o, b.len())).collect::<Vec<_>>(), vec![(0, PAGE), (2 * PAGE, 2 * PAGE)]);
    }

    #[test]
    fn a_rewritten_module_starts_in_the_captured_state() {
        // A module with a mutable global and a memory, instrumented, mutated, rewritten.
        let wat = r#"(module
            (memory (export "memory") 1)
            (global $g (mut i32) (i32.const 7))
            (data (i32.const 0) "ab")
            (func (export "bump") (global.set $g (i32.add (global.get $g) (i32.const 1)))
                (i32.store8 (i32.const 70000) (i32.const 9)) (drop (memory.grow (i32.const 1))))
            (func (export "get") (result i32) (global.get $g)))"#;
        let wasm = wat::parse_str(wat).unwrap();
        let inst = instrument(&wasm).unwrap();
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, &inst).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let i = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        // Grows to 2 pages first, so the store at 70000 lands in the second page.
        let mem = i.get_memory(&mut store, "memory").unwrap();
        mem.grow(&mut store, 1).unwrap();
        i.get_typed_func::<(), ()>(&mut store, "bump").unwrap().call(&mut store, ()).unwrap();
        let g = i.get_global(&mut store, &format!("{GLOBAL_EXPORT}0")).unwrap().get(&mut store).unwrap_i32();
        assert_eq!(g, 8);
        let bytes = mem.data(&store).to_vec();
        assert_eq!(bytes.len(), 3 * PAGE);
        let warm = rewrite(&inst, &bytes, &[GlobalValue::I32(g)]).unwrap();
        let module = wasmtime::Module::new(&engine, &warm).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let i = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        assert_eq!(i.get_typed_func::<(), i32>(&mut store, "get").unwrap().call(&mut store, ()).unwrap(), 8);
        let mem = i.get_memory(&mut store, "memory").unwrap();
        assert_eq!(mem.data(&store).len(), 3 * PAGE);
        assert_eq!(&mem.data(&store)[0..2], b"ab");
        assert_eq!(mem.data(&store)[70000], 9);
    }
}
