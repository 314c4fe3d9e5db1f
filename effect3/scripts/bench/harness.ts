/**
 * Measurement helpers shared by the benchmark scripts (`core.ts`, `promise.ts`): repeated timed runs with warm-up,
 * medians with min–max, ns per task, heap deltas after GC, and markdown tables that can be pasted into
 * `docs/BENCHMARKS.md` as printed; and the batching benchmarks' task (`request`), shared with `profile.ts`.
 *
 * Run the scripts with `--expose-gc` (the `bench:*` npm scripts do); without it, heap figures are skipped.
 */
import * as Effect from "effect/Effect"
import * as Request from "effect/Request"
import * as RequestResolver from "effect/RequestResolver"
import { spawnSync } from "node:child_process"
import { createRequire } from "node:module"
import { performance } from "node:perf_hooks"
import { fileURLToPath, pathToFileURL } from "node:url"

/** Median, minimum and maximum of a set of samples. */
export interface Stats {
  readonly median: number
  readonly min: number
  readonly max: number
  readonly runs: number
}

export const stats = (samples: ReadonlyArray<number>): Stats => {
  if (samples.length === 0) return { median: NaN, min: NaN, max: NaN, runs: 0 }
  const sorted = [...samples].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, runs: samples.length }
}

/** Scales every figure of `s` (e.g. ms per sample to ns per task). */
export const scale = (s: Stats, factor: number): Stats => ({
  median: s.median * factor,
  min: s.min * factor,
  max: s.max * factor,
  runs: s.runs
})

export const gcAvailable = (): boolean => typeof globalThis.gc === "function"

/** Full collection, twice, so that weak references and finalization callbacks are cleared too. */
export const collect = (): void => {
  if (gcAvailable()) {
    globalThis.gc!()
    globalThis.gc!()
  }
}

/** Lets queued microtasks, immediates and zero-delay timers run. */
export const settleEventLoop = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0))

export interface TimeOptions {
  /** Timed samples. */
  readonly runs: number
  /** Untimed runs first, for the JIT. */
  readonly warmup: number
  /**
   * Each sample repeats the body until it has taken at least this long (calibrated on the warm-up), so that tiny
   * fan-outs are not measured at the timer's resolution. 0: one call per sample.
   */
  readonly minSampleMs?: number
  /**
   * A full GC before each sample. Off by default: a forced GC leaves V8 with small heap limits, and the next sample
   * then pays for extra collections (fail-fast latency at N = 1000 triples); warm-up runs absorb the previous
   * runner's garbage instead.
   */
  readonly gcBetween?: boolean
}

/**
 * Times `body` and returns milliseconds per call, one figure per sample: each sample calls `body` `reps` times in a
 * row, `reps` chosen on the warm-up runs so that a sample lasts at least `minSampleMs`.
 */
export const time = async (body: () => Promise<unknown>, options: TimeOptions): Promise<Stats> => {
  let reps = 1
  for (let i = 0; i < options.warmup; i++) {
    const t0 = performance.now()
    await body()
    const elapsed = performance.now() - t0
    if (options.minSampleMs !== undefined && options.minSampleMs > 0) {
      reps = Math.max(reps, Math.min(100_000, Math.ceil(options.minSampleMs / Math.max(elapsed, 1e-3))))
    }
  }
  const samples: Array<number> = []
  for (let r = 0; r < options.runs; r++) {
    if (options.gcBetween === true) collect()
    await settleEventLoop()
    const t0 = performance.now()
    for (let i = 0; i < reps; i++) await body()
    samples.push((performance.now() - t0) / reps)
  }
  return stats(samples)
}

/** Nanoseconds per task, from milliseconds per fan-out of `n` tasks. */
export const nsPerTask = (msPerCall: Stats, n: number): Stats => scale(msPerCall, 1e6 / n)

/** `1234` → `"1,234"`, with fewer digits shown as numbers grow. */
export const fmt = (x: number, digits?: number): string => {
  if (!Number.isFinite(x)) return "—"
  const d = digits ?? (Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2)
  return x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d })
}

/** `median (min–max)` */
export const fmtStats = (s: Stats, digits?: number): string =>
  s.runs === 0 ? "—" : `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`

/** How many times faster `self` is than `baseline` (medians): `"12.3×"`, or `"0.8×"` when slower. */
export const ratio = (baseline: Stats | undefined, self: Stats | undefined): string => {
  if (baseline === undefined || self === undefined || baseline.runs === 0 || self.runs === 0) return "—"
  const r = baseline.median / self.median
  return `${fmt(r, r >= 10 ? 0 : r >= 1 ? 1 : 2)}×`
}

/** A markdown table, columns padded so that it also reads well in a terminal. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`
  const rule = `|${widths.map((w, i) => (i === 0 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`
  return [line(header), rule, ...rows.map(line)].join("\n")
}

export const heading = (text: string): void => {
  console.log(`\n### ${text}\n`)
}

/** Heap used, in bytes, after a full collection. */
export const heapAfterGc = (): number => {
  collect()
  return process.memoryUsage().heapUsed
}

/** Resolves once `ready()` is true, polling on the event loop (for "all N tasks have started"). */
export const until = async (ready: () => boolean, timeoutMs = 60_000): Promise<void> => {
  const t0 = performance.now()
  while (!ready()) {
    if (performance.now() - t0 > timeoutMs) throw new Error("benchmark: condition not reached in time")
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/** The machine, for the header of a report. */
export const machine = async (): Promise<string> => {
  const os = await import("node:os")
  const cpus = os.cpus()
  return `Node ${process.version}, ${os.platform()} ${os.arch()}, ${cpus.length} cores (${
    cpus[0]?.model.trim() ?? "unknown CPU"
  }), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM`
}

/** Where `compileLibrary` puts the library's JavaScript. */
export const compiledDir = fileURLToPath(new URL("../../node_modules/.cache/effect-fanout-bench/", import.meta.url))

/**
 * Compiles `src/` with `tsc` (as `npm run build` does, into a cache directory) so that the benchmarks measure the
 * JavaScript users get. Running `src/*.ts` through tsx instead adds esbuild's `keepNames` helper (`__name`, an
 * `Object.defineProperty`) to every closure the library makes per task: ~10% of the CPU time in profiles. With
 * `BENCH_SOURCE=1` the benchmarks import `src/` through tsx instead. Type errors do not stop the benchmark (tsc still
 * emits), they are printed.
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
    "false"
  ], { cwd: root, encoding: "utf8" })
  if (result.status !== 0) console.error(`tsc reported errors (the benchmark runs the emitted code):\n${result.stdout}`)
}

/** Imports a module of the library, `"FanOut.js"` or `"promise.js"`: compiled (see `compileLibrary`) or from source. */
export const importLibrary = async <M>(module: string): Promise<M> => {
  if (process.env.BENCH_SOURCE === "1") return import(`../../src/${module}`) as Promise<M>
  return import(pathToFileURL(`${compiledDir}${module}`).href) as Promise<M>
}

interface Get extends Request.Request<number> {
  readonly _tag: "Get"
  readonly i: number
}
const Get = Request.tagged<Get>("Get")
const resolver = RequestResolver.makeBatched((requests: ReadonlyArray<Get>) =>
  Effect.forEach(requests, (request) => Request.succeed(request, request.i), { discard: true })
)

/** The batching benchmarks' task: one request to a batched resolver that answers the whole batch at once. */
export const request = (i: number): Effect.Effect<number> => Effect.request(Get({ i }), resolver)
