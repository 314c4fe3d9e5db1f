/**
 * The Promise facade's benchmark (run by `npm run bench:core` after `core.ts`, or alone with
 * `tsx --expose-gc scripts/bench/promise.ts [--quick]`): `effect-fanout/promise` against `Promise.all`,
 * `Promise.allSettled` and p-map, in one process run, as markdown tables.
 *
 * - throughput: ns per function for N = 10, 1000, 100,000, functions that resolve at once (`async () => i`) and
 *   functions that await once (`await null`), unbounded;
 * - fail fast: at N = 1000, time from the failure to the return, every other function aborted and settled.
 *
 * The facade runs each function as a callback task of the core's engine (no fiber), so its cost is the engine's
 * bookkeeping per task plus one promise callback and the outcome objects; the peers call the functions directly.
 */
import { setMaxListeners } from "node:events"
import { performance } from "node:perf_hooks"
import pMap from "p-map"
import {
  compileLibrary,
  fmt,
  fmtStats,
  gcAvailable,
  heading,
  heapAfterGc,
  importLibrary,
  machine,
  nsPerTask,
  ratio,
  type Stats,
  stats,
  table,
  time
} from "./harness.js"

const quick = process.argv.includes("--quick")

// The compiled library, as users get it (see `compileLibrary`); `BENCH_SOURCE=1` runs `src/` through tsx instead.
if (process.env.BENCH_SOURCE !== "1") compileLibrary()
const P = await importLibrary<typeof import("../../src/promise.js")>("promise.js")

// ---------------------------------------------------------------------------------------------------------------
// throughput

type Kind = "resolved" | "await"

const functions = (n: number, kind: Kind): Array<(signal: AbortSignal) => Promise<number>> => {
  const fns = new Array<(signal: AbortSignal) => Promise<number>>(n)
  if (kind === "resolved") {
    for (let i = 0; i < n; i++) fns[i] = async () => i
  } else {
    for (let i = 0; i < n; i++) {
      fns[i] = async () => {
        await null
        return i
      }
    }
  }
  return fns
}

interface Runner {
  readonly name: string
  readonly run: (fns: Array<(signal: AbortSignal) => Promise<number>>) => Promise<unknown>
}

// The peers get a signal too (one for the run, never aborted), so that every runner makes the same calls.
const unused = new AbortController().signal
const call = (f: (signal: AbortSignal) => Promise<number>) => f(unused)

const runners: ReadonlyArray<Runner> = [
  { name: "Promise.all", run: (fns) => Promise.all(fns.map(call)) },
  { name: "Promise.allSettled", run: (fns) => Promise.allSettled(fns.map(call)) },
  { name: "p-map", run: (fns) => pMap(fns, call) },
  { name: "runAsync", run: (fns) => P.runAsync(fns) },
  { name: "all", run: (fns) => P.all(fns) },
  { name: "runAsyncAllowErrors", run: (fns) => P.runAsyncAllowErrors(fns) },
  { name: "settle", run: (fns) => P.settle(fns) }
]

const sizes = [10, 1000, 100_000] as const
const kinds: ReadonlyArray<Kind> = ["resolved", "await"]

/**
 * No full GC before each sample (`gcBetween: false`), one before each runner instead: a full GC shrinks the young
 * generation, and the next sample then pays for growing it again, which in a run of this script penalised the
 * runners that allocate most per function (the facade, when it made a fiber each) by 2–3× and widened their spread.
 */
const plan = (n: number) => {
  if (n <= 10) return { warmup: 5, runs: quick ? 5 : 15, minSampleMs: 20, gcBetween: false }
  if (n <= 1000) return { warmup: 5, runs: quick ? 5 : 11, minSampleMs: 20, gcBetween: false }
  return { warmup: 2, runs: quick ? 3 : 7, gcBetween: false }
}

type Results = Map<string, Stats>
const key = (runner: string, n: number, kind: Kind) => `${runner}|${n}|${kind}`

const throughput = async (): Promise<Results> => {
  const results: Results = new Map()
  for (const n of sizes) {
    for (const kind of kinds) {
      const fns = functions(n, kind)
      for (const runner of runners) {
        heapAfterGc()
        const ms = await time(() => runner.run(fns), plan(n))
        results.set(key(runner.name, n, kind), nsPerTask(ms, n))
      }
    }
  }
  return results
}

const printThroughput = (results: Results) => {
  for (const n of sizes) {
    heading(`Promise facade throughput, N = ${n.toLocaleString("en-US")}: ns per function, median (min–max)`)
    const rows = runners.map((runner) => {
      const cells = [runner.name]
      for (const kind of kinds) {
        const self = results.get(key(runner.name, n, kind))!
        cells.push(
          fmtStats(self),
          ratio(results.get(key("Promise.all", n, kind)), self),
          ratio(results.get(key("Promise.allSettled", n, kind)), self),
          ratio(results.get(key("p-map", n, kind)), self)
        )
      }
      return cells
    })
    console.log(table(
      [
        "runner",
        "resolved ns/fn",
        "× vs all",
        "× vs allSettled",
        "× vs p-map",
        "await ns/fn",
        "× vs all",
        "× vs allSettled",
        "× vs p-map"
      ],
      rows
    ))
  }
  const p = (n: number) => plan(n).runs
  console.log(
    `\nFunctions: \`async () => i\` (resolved) and \`async () => { await null; return i }\` (await), built once per N ` +
      `and reused; a full GC before each runner. Runs per figure (after warm-up): N = 10: ${p(10)}, N = 1000: ${
        p(1000)
      } (each sample repeats the ` +
      `run for ≥ 20 ms), N = 100,000: ${p(100_000)}. "× vs X" = X's median / this runner's median ` +
      `(< 1: slower than X, 0.33× = three times X's time).`
  )
}

// ---------------------------------------------------------------------------------------------------------------
// fail fast

const failN = 1000
const failAfterMs = 20

class Boom extends Error {}

/** 999 functions that wait for their signal (then count and reject with its reason), one that fails after 20 ms. */
const failingFunctions = (counter: { aborted: number; failedAt: number }) => {
  const fns = new Array<(signal: AbortSignal) => Promise<void>>(failN)
  for (let i = 0; i < failN - 1; i++) {
    fns[i] = (signal) =>
      new Promise<void>((_, reject) => {
        signal.addEventListener("abort", () => {
          counter.aborted++
          reject(signal.reason)
        }, { once: true })
      })
  }
  fns[failN - 1] = async () => {
    await new Promise((resolve) => setTimeout(resolve, failAfterMs))
    counter.failedAt = performance.now()
    throw new Boom("failed")
  }
  return fns
}

interface FailFast {
  readonly name: string
  /** Runs the fan-out until it rejects; the functions have counted their aborts in `counter`. */
  readonly run: (
    fns: Array<(signal: AbortSignal) => Promise<void>>,
    counter: { aborted: number; failedAt: number }
  ) => Promise<unknown>
}

const failFasts: ReadonlyArray<FailFast> = [
  { name: "runAsync", run: (fns) => P.runAsync(fns) },
  { name: "runAsync, detach", run: (fns) => P.runAsync(fns, { detach: true }) },
  {
    name: "Promise.all + AbortController",
    run: async (fns) => {
      const controller = new AbortController()
      setMaxListeners(0, controller.signal)
      const promises = fns.map((f) => f(controller.signal))
      try {
        await Promise.all(promises)
      } catch {
        controller.abort()
        // Wait for every sibling to settle, as runAsync does by default.
        await Promise.allSettled(promises)
        throw new Error("failed")
      }
    }
  }
]

const failFast = async (): Promise<Map<string, { readonly latency: Stats; readonly aborted: number }>> => {
  const out = new Map<string, { readonly latency: Stats; readonly aborted: number }>()
  const runs = quick ? 3 : 11
  for (const f of failFasts) {
    const once = async () => {
      const counter = { aborted: 0, failedAt: 0 }
      await f.run(failingFunctions(counter), counter).then(
        () => {
          throw new Error(`${f.name} did not fail`)
        },
        () => undefined
      )
      return [performance.now() - counter.failedAt, counter.aborted] as const
    }
    for (let w = 0; w < 3; w++) await once()
    const latencies: Array<number> = []
    let aborted = Infinity
    for (let r = 0; r < runs; r++) {
      heapAfterGc()
      const [latency, n] = await once()
      latencies.push(latency)
      aborted = Math.min(aborted, n)
    }
    out.set(f.name, { latency: stats(latencies), aborted })
  }
  return out
}

const printFailFast = (results: Map<string, { readonly latency: Stats; readonly aborted: number }>) => {
  heading(`Promise facade fail fast, N = ${failN}: ms from the failure to the rejection`)
  const peer = results.get("Promise.all + AbortController")
  console.log(table(
    ["runner", "ms after the failure", "× vs Promise.all + AbortController", "aborted at rejection"],
    failFasts.map((f) => {
      const r = results.get(f.name)!
      return [f.name, fmtStats(r.latency), ratio(peer?.latency, r.latency), `${r.aborted} / ${failN - 1}`]
    })
  ))
  console.log(
    `\n${failN - 1} functions wait for their signal, then count and reject with its reason; the last function ` +
      `throws after ${failAfterMs} ms. Latency: from just before the throw to just after the rejection. ` +
      `Promise.all + AbortController: \`Promise.all\` rejects, \`abort()\`, then \`Promise.allSettled\` of all ` +
      `functions (what runAsync does by default: nothing left running). Median (min–max) of the runs after 3 ` +
      `warm-up runs.`
  )
}

// ---------------------------------------------------------------------------------------------------------------
// targets

const printTargets = (t: Results) => {
  heading("Targets (issue 5)")
  const lines: Array<[string, boolean, string]> = []
  for (const name of ["runAsyncAllowErrors", "settle", "runAsync"]) {
    for (const kind of kinds) {
      const r = t.get(key(name, 1000, kind))!.median / t.get(key("Promise.allSettled", 1000, kind))!.median
      lines.push([`${name} within 3× of Promise.allSettled, N = 1000, ${kind}`, r <= 3, `${fmt(r, 2)}× its time`])
    }
  }
  console.log(table(["target", "met", "measured"], lines.map(([what, ok, got]) => [what, ok ? "yes" : "NO", got])))
}

// ---------------------------------------------------------------------------------------------------------------

const main = async () => {
  const t0 = performance.now()
  console.log(
    `## Promise facade benchmark\n\n${await machine()}${quick ? "; --quick" : ""}; library ${
      process.env.BENCH_SOURCE === "1" ? "from src/ through tsx" : "compiled by tsc"
    }`
  )
  if (!gcAvailable()) console.log("\n(no --expose-gc: runners are not preceded by a GC)")
  const t = await throughput()
  printThroughput(t)
  printFailFast(await failFast())
  printTargets(t)
  console.log(`\n(${fmt((performance.now() - t0) / 1000, 1)} s)`)
}

await main()
