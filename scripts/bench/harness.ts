/**
 * Measurement helpers of the core benchmark (`core.ts`): timed samples after warm-up, interleaved across the runners
 * being compared so that a change of the machine's load hits them all alike; medians with min–max; ns per task;
 * heap after GC; the library compiled as users get it; and Markdown tables that paste into `docs/BENCHMARKS.md`.
 *
 * Run with `--expose-gc` (`npm run bench` does); without it, heap figures are not measured.
 */
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import { performance } from "node:perf_hooks"
import { fileURLToPath, pathToFileURL } from "node:url"

/** Median, minimum and maximum of a set of samples, with the samples in the order they were taken. */
export interface Stats {
  readonly median: number
  readonly min: number
  readonly max: number
  readonly samples: ReadonlyArray<number>
}

const median = (sorted: ReadonlyArray<number>): number => {
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export const stats = (samples: ReadonlyArray<number>): Stats => {
  if (samples.length === 0) return { median: NaN, min: NaN, max: NaN, samples }
  const sorted = [...samples].sort((a, b) => a - b)
  return { median: median(sorted), min: sorted[0]!, max: sorted[sorted.length - 1]!, samples }
}

/** Scales every figure of `s` (milliseconds per call to nanoseconds per task, for instance). */
export const scale = (s: Stats, factor: number): Stats => stats(s.samples.map((x) => x * factor))

/** Nanoseconds per task, from milliseconds per fan-out of `n` tasks. */
export const nsPerTask = (msPerCall: Stats, n: number): Stats => scale(msPerCall, 1e6 / n)

/**
 * The cost of `self` in units of `peer`'s: the ratio of the medians, and the min–max of the ratios of samples taken
 * in the same round (interleaved runs pair them). Below 1: cheaper than the peer.
 */
export interface Cost {
  readonly ratio: number
  readonly min: number
  readonly max: number
}

export const cost = (self: Stats | undefined, peer: Stats | undefined): Cost | undefined => {
  if (self === undefined || peer === undefined || self.samples.length === 0 || peer.samples.length === 0) {
    return undefined
  }
  const paired = self.samples.length === peer.samples.length
    ? self.samples.map((x, i) => x / peer.samples[i]!).sort((a, b) => a - b)
    : [self.median / peer.median]
  return { ratio: self.median / peer.median, min: paired[0]!, max: paired[paired.length - 1]! }
}

export const gcAvailable = (): boolean => typeof globalThis.gc === "function"

/** Full collection, twice, so that what weak references and finalization callbacks held goes too. */
export const collect = (): void => {
  if (gcAvailable()) {
    globalThis.gc!()
    globalThis.gc!()
  }
}

/** Heap used, in bytes, after a full collection. */
export const heapAfterGc = (): number => {
  collect()
  return process.memoryUsage().heapUsed
}

/** Lets queued microtasks, immediates and zero-delay timers run. */
export const settleEventLoop = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0))

/** Resolves once `ready()` is true, checking after each turn of the event loop. */
export const until = async (ready: () => boolean, timeoutMs = 60_000): Promise<void> => {
  const t0 = performance.now()
  while (!ready()) {
    if (performance.now() - t0 > timeoutMs) throw new Error("benchmark: condition not reached in time")
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/**
 * What a sample measures: elapsed time (`"wall"`, the default), or the process's CPU time, user and system, all
 * threads (`"cpu"`, `--clock=cpu`): on a machine shared with other jobs, time spent waiting for a core is left out;
 * the GC's helper threads count in.
 */
export type Clock = "wall" | "cpu"

const clockOf = (clock: Clock | undefined): () => number => {
  if (clock !== "cpu") return () => performance.now()
  return () => {
    const usage = process.cpuUsage()
    return (usage.user + usage.system) / 1000
  }
}

export interface Plan {
  /** Timed samples of each body. */
  readonly runs: number
  /** Untimed calls of each body first, for the JIT (and to calibrate `minSampleMs`). */
  readonly warmup: number
  /**
   * Each sample repeats its body until it has taken at least this long (calibrated on the warm-up), so that small
   * fan-outs are not measured at the timer's resolution. 0 or absent: one call per sample.
   */
  readonly minSampleMs?: number
  readonly clock?: Clock
}

/**
 * Times several bodies against each other: warms each up, then takes `runs` rounds of one sample of every body, the
 * order rotating from round to round, so that no body is always the one after the same neighbour's garbage. Returns
 * milliseconds per call (of `plan.clock`), one figure per round. No GC is forced between samples: a forced full GC leaves V8 with small
 * heap limits, and the next sample pays for extra collections.
 */
export const timeTogether = async (
  bodies: ReadonlyArray<() => Promise<unknown>>,
  plan: Plan
): Promise<Array<Stats>> => {
  const now = clockOf(plan.clock)
  const reps = bodies.map(() => 1)
  for (let b = 0; b < bodies.length; b++) {
    for (let i = 0; i < plan.warmup; i++) {
      const t0 = now()
      await bodies[b]!()
      const elapsed = now() - t0
      if (plan.minSampleMs !== undefined && plan.minSampleMs > 0) {
        reps[b] = Math.max(reps[b]!, Math.min(100_000, Math.ceil(plan.minSampleMs / Math.max(elapsed, 1e-3))))
      }
    }
  }
  const samples = bodies.map(() => new Array<number>())
  for (let r = 0; r < plan.runs; r++) {
    for (let k = 0; k < bodies.length; k++) {
      const b = (k + r) % bodies.length
      const body = bodies[b]!
      await settleEventLoop()
      const t0 = now()
      for (let i = 0; i < reps[b]!; i++) await body()
      samples[b]!.push((now() - t0) / reps[b]!)
    }
  }
  return samples.map(stats)
}

/** `1234` → `"1,234"`, with fewer decimals as numbers grow. */
export const fmt = (x: number, digits?: number): string => {
  if (!Number.isFinite(x)) return "—"
  const d = digits ?? (Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2)
  return x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d })
}

/** `median (min–max)` */
export const fmtStats = (s: Stats | undefined, digits?: number): string =>
  s === undefined || s.samples.length === 0
    ? "—"
    : `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`

/** `0.84×`: a cost ratio, two decimals. */
export const fmtCost = (c: Cost | undefined): string => (c === undefined ? "—" : `${fmt(c.ratio, 2)}×`)

/** `0.84× (0.80–0.91)`: a cost ratio with the range of the paired per-round ratios. */
export const fmtCostRange = (c: Cost | undefined): string =>
  c === undefined ? "—" : `${fmt(c.ratio, 2)}× (${fmt(c.min, 2)}–${fmt(c.max, 2)})`

/**
 * A Markdown table, columns padded so that it also reads well in a terminal: the first `textColumns` columns
 * left-aligned, the figures right-aligned.
 */
export const table = (
  header: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>,
  textColumns = 1
): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    `| ${cells.map((c, i) => (i < textColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`
  const rule = `|${
    widths.map((w, i) => (i < textColumns ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")
  }|`
  return [line(header), rule, ...rows.map(line)].join("\n")
}

export const heading = (text: string): void => {
  console.log(`\n#### ${text}\n`)
}

/** The machine and its load, for the header of a report. */
export const machine = (): string => {
  const cpus = os.cpus()
  const load = os.loadavg().map((x) => x.toFixed(2)).join(", ")
  return `Node ${process.version}, ${os.platform()} ${os.arch()}, ${cpus.length} cores (${
    cpus[0]?.model.trim() ?? "unknown CPU"
  }), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, load average ${load}`
}

export const effectVersion = (): string => {
  const path = createRequire(import.meta.url).resolve("effect/package.json")
  return (JSON.parse(readFileSync(path, "utf8")) as { version: string }).version
}

/** Where `compileLibrary` puts the library's JavaScript. */
export const compiledDir = fileURLToPath(new URL("../../node_modules/.cache/effect-fanout-bench/", import.meta.url))

/**
 * Compiles `src/` with `tsc` (as `npm run build` does, into a cache directory) so that the benchmark measures the
 * JavaScript users get: through tsx, esbuild's `keepNames` adds a `__name(...)` call (an `Object.defineProperty`) to
 * closures the library makes per task. The compiled code imports `effect` from this package's `node_modules`, the
 * copy the peers use. With `BENCH_SOURCE=1` the benchmark imports `src/` through tsx instead. Type errors do not stop
 * the benchmark (tsc still emits); they are printed.
 */
export const compileLibrary = (): void => {
  const root = fileURLToPath(new URL("../../", import.meta.url))
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
  const result = spawnSync(process.execPath, [
    tsc,
    "-p",
    "tsconfig.build.json",
    "--outDir",
    compiledDir,
    "--declaration",
    "false",
    "--declarationMap",
    "false",
    "--sourceMap",
    "false",
    "--inlineSources",
    "false"
  ], { cwd: root, encoding: "utf8" })
  if (result.status !== 0) {
    console.error(`tsc reported errors (the benchmark runs the emitted code):\n${result.stdout}${result.stderr}`)
  }
}

/** Imports a module of the library (`"FanOut.js"`): compiled (see `compileLibrary`) or, with `BENCH_SOURCE=1`, `src/`. */
export const importLibrary = async <M>(module: string): Promise<M> => {
  if (process.env.BENCH_SOURCE === "1") return import(`../../src/${module}`) as Promise<M>
  return import(pathToFileURL(`${compiledDir}${module}`).href) as Promise<M>
}
