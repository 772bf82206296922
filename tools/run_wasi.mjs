// Runs a wasm32-wasip1 command module under Node.js's V8 (the engine Envoy embeds),
// passing the remaining arguments: node tools/run_wasi.mjs MODULE.wasm [ARGS...]
// Used to time the filter's pure-Rust signature paths as wasm (examples/verify_timing.rs).
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';

const [file, ...args] = process.argv.slice(2);
if (!file) {
  console.error('usage: node tools/run_wasi.mjs MODULE.wasm [ARGS...]');
  process.exit(2);
}
// The current directory is visible to the module under its own path (for input files).
const wasi = new WASI({
  version: 'preview1', args: [file, ...args], env: {}, preopens: { [process.cwd()]: process.cwd() },
});
const module = await WebAssembly.compile(await readFile(file));
// A module built from this crate also imports the proxy-wasm host functions
// (module "env"); a command like verify_timing never calls them.
const env = {};
for (const imp of WebAssembly.Module.imports(module)) {
  if (imp.module === 'env' && imp.kind === 'function') {
    env[imp.name] = () => { throw new Error(`${imp.name}: no proxy-wasm host here`); };
  }
}
const instance = await WebAssembly.instantiate(module, { ...wasi.getImportObject(), env });
// The proxy-wasm SDK also exports `_initialize` (for Envoy); Node's WASI runs a
// command only when `_start` is the sole entry point.
const { _start, memory } = instance.exports;
process.exitCode = wasi.start({ exports: { _start, memory } });
