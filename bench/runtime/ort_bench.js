#!/usr/bin/env node
// ONNX Runtime (CPU, onnxruntime-node) side of bench/runtime: times one model at one
// batch size and prints ONE JSON line on stdout (diagnostics go to stderr):
//
//   {"engine":"onnxruntime","model":"...","batch":B,"threads":T,"runs":R,
//    "min_ms":..,"median_ms":..,"p90_ms":..,"items_per_s":..}
//
// items_per_s = batch * 1000 / median_ms. median and p90 use linear interpolation between
// the closest ranks of the sorted per-run latencies (numpy's default percentile), so an
// even number of runs gives the mean of the two middle values.
'use strict';

const fs = require('fs');
const path = require('path');

const USAGE = `usage: node ort_bench.js --model M.onnx --batch B --threads T --runs R [options]

Times R runs of an ONNX model with ONNX Runtime (CPU) and prints one JSON line.

required:
  --model PATH      ONNX model file
  --batch B         batch size: replaces dim 0 (symbolic or fixed) of every input
  --threads T       intra-op threads (inter-op threads are always 1, execution sequential)
  --runs R          number of timed runs

options:
  --warmup W        untimed runs before timing (default 2)
  --shape D1,D2,..  input dims after the batch dim, e.g. 3,224,224 (single-input models;
                    default: read from the model's input metadata)
  --seed S          seed of the uniform [-1,1) random input (default 1)
  --verbose         print input shapes and session-creation time to stderr
  -h, --help        this text`;

function die(msg, code = 2) {
  process.stderr.write(`ort_bench.js: error: ${msg}\n\n${USAGE}\n`);
  process.exit(code);
}

function parsePositiveInt(flag, s, allowZero = false) {
  if (!/^\d+$/.test(String(s))) die(`${flag} needs a ${allowZero ? 'non-negative' : 'positive'} integer, got '${s}'`);
  const v = Number(s);
  if (!allowZero && v <= 0) die(`${flag} must be > 0, got ${v}`);
  return v;
}

function parseArgs(argv) {
  const a = { warmup: 2, seed: 1, verbose: false, shape: null };
  const needValue = new Set(['--model', '--batch', '--threads', '--runs', '--warmup', '--shape', '--seed']);
  for (let i = 0; i < argv.length; i++) {
    let flag = argv[i];
    let value;
    const eq = flag.indexOf('=');
    if (flag.startsWith('--') && eq > 0) {
      value = flag.slice(eq + 1);
      flag = flag.slice(0, eq);
    }
    if (flag === '-h' || flag === '--help') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    }
    if (flag === '--verbose') { a.verbose = true; continue; }
    if (!needValue.has(flag)) die(`unknown argument '${argv[i]}'`);
    if (value === undefined) {
      if (i + 1 >= argv.length) die(`${flag} needs a value`);
      value = argv[++i];
    }
    switch (flag) {
      case '--model': a.model = value; break;
      case '--batch': a.batch = parsePositiveInt(flag, value); break;
      case '--threads': a.threads = parsePositiveInt(flag, value); break;
      case '--runs': a.runs = parsePositiveInt(flag, value); break;
      case '--warmup': a.warmup = parsePositiveInt(flag, value, true); break;
      case '--seed': a.seed = parsePositiveInt(flag, value, true); break;
      case '--shape': {
        const dims = value.split(',').map((d) => d.trim()).filter((d) => d.length);
        if (!dims.length || !dims.every((d) => /^\d+$/.test(d) && Number(d) > 0)) {
          die(`--shape needs comma-separated positive integers (dims after the batch dim), got '${value}'`);
        }
        a.shape = dims.map(Number);
        break;
      }
    }
  }
  const missing = ['model', 'batch', 'threads', 'runs'].filter((k) => a[k] === undefined);
  if (missing.length) die(`missing required ${missing.map((k) => '--' + k).join(', ')}`);
  if (!fs.existsSync(a.model)) die(`model file not found: ${a.model}`);
  return a;
}

let ort;
try {
  ort = require('onnxruntime-node');
} catch (e) {
  process.stderr.write(
    `ort_bench.js: error: cannot load onnxruntime-node (${e.message.split('\n')[0]}).\n` +
    `Install it in ${__dirname} with:\n  ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node@1.30.0\n`);
  process.exit(2);
}

// Small deterministic PRNG (mulberry32) for the input data.
function mulberry32(seed) {
  let s = seed >>> 0;
  return function next() {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Percentile with linear interpolation between closest ranks (numpy default).
function percentile(sorted, q) {
  if (sorted.length === 1) return sorted[0];
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function round(x, digits) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function inputShapes(session, args) {
  const meta = session.inputMetadata;
  const names = session.inputNames;
  if (args.shape) {
    if (names.length !== 1) die(`--shape works only for single-input models; this one has inputs ${names.join(', ')}`);
    const type = meta && meta[0] && meta[0].isTensor ? meta[0].type : 'float32';
    return [{ name: names[0], type, shape: [args.batch, ...args.shape] }];
  }
  if (!meta || meta.length !== names.length) {
    die('this onnxruntime-node does not expose input shapes; pass --shape (dims after the batch dim)');
  }
  return meta.map((m) => {
    if (!m.isTensor) die(`input '${m.name}' is not a tensor`);
    if (!m.shape || m.shape.length === 0) {
      die(`input '${m.name}' has no declared shape; pass --shape (dims after the batch dim)`);
    }
    const shape = m.shape.map((d, i) => {
      if (i === 0) return args.batch;
      if (typeof d === 'number' && d > 0) return d;
      die(`input '${m.name}' dim ${i} is symbolic or unknown ('${d}'); pass --shape`);
      return 0;
    });
    return { name: m.name, type: m.type, shape };
  });
}

function makeFeeds(specs, seed) {
  const rand = mulberry32(seed);
  const feeds = {};
  for (const s of specs) {
    if (s.type !== 'float32') die(`input '${s.name}' has type ${s.type}; only float32 inputs are supported`);
    const n = s.shape.reduce((p, d) => p * d, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = rand() * 2 - 1;
    feeds[s.name] = new ort.Tensor('float32', data, s.shape);
  }
  return feeds;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const opts = {
    executionProviders: ['cpu'],
    intraOpNumThreads: args.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    logSeverityLevel: 3,
  };
  const t0 = process.hrtime.bigint();
  let session;
  try {
    session = await ort.InferenceSession.create(path.resolve(args.model), opts);
  } catch (e) {
    process.stderr.write(`ort_bench.js: error: cannot create session for ${args.model}: ${e.message}\n`);
    process.exit(1);
  }
  const createMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const specs = inputShapes(session, args);
  const feeds = makeFeeds(specs, args.seed);
  if (args.verbose) {
    for (const s of specs) process.stderr.write(`input ${s.name}: ${s.type} [${s.shape.join(',')}]\n`);
    process.stderr.write(`session created in ${createMs.toFixed(1)} ms\n`);
  }

  try {
    for (let i = 0; i < args.warmup; i++) await session.run(feeds);
    const times = [];
    for (let i = 0; i < args.runs; i++) {
      const s = process.hrtime.bigint();
      await session.run(feeds);
      times.push(Number(process.hrtime.bigint() - s) / 1e6);
    }
    times.sort((x, y) => x - y);
    const median = percentile(times, 0.5);
    const result = {
      engine: 'onnxruntime',
      model: args.model,
      batch: args.batch,
      threads: args.threads,
      runs: args.runs,
      min_ms: round(times[0], 3),
      median_ms: round(median, 3),
      p90_ms: round(percentile(times, 0.9), 3),
      items_per_s: round((args.batch * 1000) / median, 3),
    };
    process.stdout.write(JSON.stringify(result) + '\n');
  } catch (e) {
    process.stderr.write(`ort_bench.js: error: inference failed: ${e.message}\n`);
    process.exit(1);
  }
  await session.release();
}

main().catch((e) => {
  process.stderr.write(`ort_bench.js: error: ${e.stack || e}\n`);
  process.exit(1);
});
