/**
 * The core benchmark of the Effect 4 line (`npm run bench`): FanOut against Effect 4's own `Effect.all` and
 * `Effect.forEach`, `Promise.all`/`Promise.allSettled` and p-map, in one process, as Markdown tables for
 * `docs/BENCHMARKS.md`. Every figure that a target reads is a ratio to a peer measured in the same run, interleaved
 * with it sample by sample.
 *
 * - throughput: ns per task at N = 10, 1,000 and 100,000, unbounded and with `concurrency: 16`, for tasks that are
 *   `Effect.succeed(i)`, `Effect.sync(() => i)` or `Effect.yieldNow` then `i`;
 * - memory: bytes of heap per pending task at N = 100,000 (every task waiting on one `Deferred`), and the time until
 *   all 100,000 have started;
 * - failfast: at N = 1,000, the time from the failure to the fan-out's return with 999 finalizers done, the siblings
 *   waiting on a `Deferred`, a sleep, or a call in flight (an `Effect.callback`, as a socket read is);
 * - options: the cost per task of the `timeout` and `hedge` options (limits that never fire) against no option.
 *
 * `--only=throughput,memory,failfast,options` runs some sections; `--quick` takes fewer samples; `--clock=cpu` times
 * throughput and options in the process's CPU time (for a machine shared with other jobs). `BENCH_SOURCE=1` runs
 * `src/` through tsx instead of the library compiled by tsc.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import { EventEmitter, setMaxListeners } from "node:events"
import { performance } from "node:perf_hooks"
import pMap from "p-map"
import { Boom, effectFailFast, effectWait, failAfterMs, type FailFast, failN, type Wait, waits } from "./failFast.js"
import {
  type Clock,
  compileLibrary,
  type Cost,
  cost,
  effectVersion,
  fmt,
  fmtCost,
  fmtCostRange,
  fmtStats,
  gcAvailable,
  heading,
  heapAfterGc,
  importLibrary,
  machine,
  nsPerTask,
  type Plan,
  settleEventLoop,
  type Stats,
  stats,
  table,
  timeTogether,
  until
} from "./harness.js"

const quick = process.argv.includes("--quick")
const only = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",")
const sections = ["throughput", "memory", "failfast", "options"]
const unknown = only?.filter((name) => !sections.includes(name)) ?? []
if (unknown.length > 0) throw new Error(`--only: unknown section ${unknown.join(", ")} (${sections.join(", ")})`)
const section = (name: string) => only === undefined || only.includes(name)
/** `--clock=cpu`: throughput and options in CPU time of the process instead of elapsed time (see `Clock`). */
const clock: Clock = process.argv.includes("--clock=cpu") ? "cpu" : "wall"

if (process.env.BENCH_SOURCE !== "1") compileLibrary()
const FanOut = await importLibrary<typeof import("../../src/FanOut.js")>("FanOut.js")

const count = (n: number) => n.toLocaleString("en-US")

// ---------------------------------------------------------------------------------------------------------------
// tasks

type Kind = "succeed" | "sync" | "yield"
const kinds: ReadonlyArray<Kind> = ["succeed", "sync", "yield"]

const effectOf = (kind: Kind): (i: number) => Effect.Effect<number> =>
  kind === "succeed"
    ? (i) => Effect.succeed(i)
    : kind === "sync"
    ? (i) => Effect.sync(() => i)
    : (i) => Effect.as(Effect.yieldNow, i)

const effectTasks = (n: number, kind: Kind): Array<Effect.Effect<number>> => {
  const f = effectOf(kind)
  const tasks = new Array<Effect.Effect<number>>(n)
  for (let i = 0; i < n; i++) tasks[i] = f(i)
  return tasks
}

const indices = (n: number): Array<number> => {
  const items = new Array<number>(n)
  for (let i = 0; i < n; i++) items[i] = i
  return items
}

let turn: Promise<void> | undefined = undefined
/**
 * The next turn of the event loop, one `setImmediate` shared by everything that waits for it in the same turn: Effect
 * 4's default scheduler resumes the fibers that yielded in one `setImmediate` batch, and this is its Promise twin.
 */
const nextTurn = (): Promise<void> =>
  turn ??= new Promise<void>((resolve) =>
    setImmediate(() => {
      turn = undefined
      resolve()
    })
  )

const promiseOf = (kind: Kind): (i: number) => Promise<number> =>
  kind === "succeed"
    ? (i) => Promise.resolve(i)
    : kind === "sync"
    ? async (i) => i
    : async (i) => {
      await nextTurn()
      return i
    }

const promiseTasks = (n: number, kind: Kind): Array<Promise<number>> => {
  const f = promiseOf(kind)
  const out = new Array<Promise<number>>(n)
  for (let i = 0; i < n; i++) out[i] = f(i)
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// throughput

type Concurrency = "unbounded" | 16
const concurrencies: ReadonlyArray<Concurrency> = ["unbounded", 16]
const sizes = [10, 1000, 100_000] as const

interface Runner {
  readonly name: string
  /** The Effect 4 runner that does the same job, for the "cost × peer" column. */
  readonly peer: string
  /** Undefined: the runner has no concurrency bound (Promise.all). */
  readonly run: (n: number, kind: Kind, concurrency: Concurrency) => (() => Promise<unknown>) | undefined
}

const effect =
  (body: (n: number, kind: Kind, concurrency: Concurrency) => Effect.Effect<unknown, unknown>) =>
  (n: number, kind: Kind, concurrency: Concurrency) =>
  () => Effect.runPromise(body(n, kind, concurrency))

/** Span options of the peers that run in a span: FanOut's span captures no stack trace either. */
const untraced = { captureStackTrace: false } as const

const runners: ReadonlyArray<Runner> = [
  {
    name: "Effect.all",
    peer: "Effect.all",
    run: effect((n, k, concurrency) => Effect.all(effectTasks(n, k), { concurrency }))
  },
  {
    name: "Effect.all mode result",
    peer: "Effect.all",
    run: effect((n, k, concurrency) => Effect.all(effectTasks(n, k), { concurrency, mode: "result" }))
  },
  {
    // What one span per call costs Effect.all: FanOut opens one around every fan-out (capturing no stack trace).
    name: "Effect.all in a span",
    peer: "Effect.all",
    run: effect((n, k, concurrency) =>
      Effect.withSpan(Effect.all(effectTasks(n, k), { concurrency }), "bench", untraced)
    )
  },
  {
    name: "Effect.forEach",
    peer: "Effect.all",
    run: effect((n, k, concurrency) => Effect.forEach(indices(n), effectOf(k), { concurrency }))
  },
  {
    name: "Effect.forEach + Effect.exit",
    peer: "Effect.all mode result",
    run: effect((n, k, concurrency) => {
      const f = effectOf(k)
      return Effect.forEach(indices(n), (i) => Effect.exit(f(i)), { concurrency })
    })
  },
  {
    name: "FanOut.all",
    peer: "Effect.all",
    run: effect((n, k, concurrency) => FanOut.all(effectTasks(n, k), { concurrency }))
  },
  {
    name: "FanOut.forEach",
    peer: "Effect.forEach",
    run: effect((n, k, concurrency) => FanOut.forEach(indices(n), effectOf(k), { concurrency }))
  },
  {
    name: "FanOut.settle",
    peer: "Effect.all mode result",
    run: effect((n, k, concurrency) => FanOut.settle(effectTasks(n, k), { concurrency }))
  },
  {
    name: "FanOut.settleForEach",
    peer: "Effect.forEach + Effect.exit",
    run: effect((n, k, concurrency) => FanOut.settleForEach(indices(n), effectOf(k), { concurrency }))
  },
  {
    name: "Promise.all",
    peer: "Effect.all",
    run: (n, k, concurrency) => concurrency === "unbounded" ? () => Promise.all(promiseTasks(n, k)) : undefined
  },
  {
    name: "Promise.allSettled",
    peer: "Effect.all mode result",
    run: (n, k, concurrency) => concurrency === "unbounded" ? () => Promise.allSettled(promiseTasks(n, k)) : undefined
  },
  {
    name: "p-map",
    peer: "Effect.forEach",
    run: (n, k, concurrency) => () =>
      pMap(indices(n), promiseOf(k), { concurrency: concurrency === "unbounded" ? Infinity : concurrency })
  }
]

const plan = (n: number): Plan => {
  if (n <= 10) return { warmup: 5, runs: quick ? 5 : 11, minSampleMs: 10, clock }
  if (n <= 1000) return { warmup: 5, runs: quick ? 5 : 9, minSampleMs: 10, clock }
  return { warmup: 1, runs: quick ? 3 : 5, clock }
}

type Results = Map<string, Stats>
const key = (...parts: ReadonlyArray<string | number>) => parts.join("|")

const throughput = async (): Promise<Results> => {
  const results: Results = new Map()
  for (const n of sizes) {
    for (const concurrency of concurrencies) {
      for (const kind of kinds) {
        const present = runners.flatMap((r) => {
          const body = r.run(n, kind, concurrency)
          return body === undefined ? [] : [{ runner: r, body }]
        })
        const ms = await timeTogether(present.map((p) => p.body), plan(n))
        present.forEach((p, i) => results.set(key(p.runner.name, n, concurrency, kind), nsPerTask(ms[i]!, n)))
      }
    }
  }
  return results
}

const printThroughput = (results: Results) => {
  for (const n of sizes) {
    for (const concurrency of concurrencies) {
      heading(
        `Throughput, N = ${count(n)}, ${
          concurrency === "unbounded" ? "unbounded" : `concurrency ${concurrency}`
        }: ns per task, median (min–max)`
      )
      const rows = runners.filter((r) => results.has(key(r.name, n, concurrency, "sync"))).map((runner) => [
        runner.name,
        runner.peer === runner.name ? "—" : runner.peer,
        ...kinds.flatMap((kind) => {
          const self = results.get(key(runner.name, n, concurrency, kind))
          const peer = runner.peer === runner.name ? undefined : results.get(key(runner.peer, n, concurrency, kind))
          return [fmtStats(self), fmtCost(cost(self, peer))]
        })
      ])
      console.log(table(
        ["runner", "peer", ...kinds.flatMap((kind) => [`${kind} ns/task`, "× peer"])],
        rows,
        2
      ))
    }
  }
  console.log(
    `\nSamples per figure, interleaved with the other runners of the table: N = 10: ${plan(10).runs}, N = 1,000: ${
      plan(1000).runs
    } (each sample repeats the fan-out for ≥ ${plan(1000).minSampleMs} ms), N = 100,000: ${
      plan(100_000).runs
    }, after ` +
      `${plan(10).warmup} / ${plan(1000).warmup} / ${plan(100_000).warmup} warm-up calls. "× peer" = this runner's ` +
      `median / the peer's median (below 1: cheaper than the peer). Building the tasks is inside the timed region. ` +
      (clock === "cpu" ? "Figures are CPU time of the process (--clock=cpu)." : "Figures are elapsed time.")
  )
}

// ---------------------------------------------------------------------------------------------------------------
// memory per pending task, and the time to start them all

const pendingN = 100_000
const pendingRuns = quick ? 2 : 3

interface Pending {
  readonly name: string
  /** Builds the tasks (not measured) and returns the launcher: start them all; then `release` lets them end. */
  readonly prepare: (onStart: () => void) => () => { readonly release: () => Promise<unknown> }
}

const gatedTasks = (onStart: () => void) => {
  const gate = Deferred.makeUnsafe<void>()
  const tasks = new Array<Effect.Effect<void>>(pendingN)
  for (let i = 0; i < pendingN; i++) tasks[i] = Effect.andThen(Effect.sync(onStart), Deferred.await(gate))
  return { tasks, open: () => Deferred.doneUnsafe(gate, Exit.void) }
}

const effectPending =
  (fanOut: (tasks: Array<Effect.Effect<void>>) => Effect.Effect<unknown, unknown>) => (onStart: () => void) => {
    const { open, tasks } = gatedTasks(onStart)
    return () => {
      const done = Effect.runPromise(fanOut(tasks))
      return {
        release: () => {
          open()
          return done
        }
      }
    }
  }

const pendings: ReadonlyArray<Pending> = [
  { name: "Effect.all", prepare: effectPending((tasks) => Effect.all(tasks, { concurrency: "unbounded" })) },
  {
    name: "Effect.all mode result",
    prepare: effectPending((tasks) => Effect.all(tasks, { concurrency: "unbounded", mode: "result" }))
  },
  { name: "FanOut.all", prepare: effectPending((tasks) => FanOut.all(tasks)) },
  { name: "FanOut.settle", prepare: effectPending((tasks) => FanOut.settle(tasks)) },
  // Each pending task also holds its time limit's alarm.
  { name: "FanOut.settle, timeout", prepare: effectPending((tasks) => FanOut.settle(tasks, { timeout: "1 hour" })) },
  {
    // Not a fan-out: one fiber per task started with `Effect.runForkWith`, nothing observed or collected. What N
    // suspended Effect 4 fibers cost at all.
    name: "bare fibers (floor)",
    prepare: (onStart) => {
      const { open, tasks } = gatedTasks(onStart)
      const fork = Effect.runForkWith(Effect.runSync(Effect.context<never>()))
      return () => {
        const fibers = new Array<Fiber.Fiber<void>>(pendingN)
        for (let i = 0; i < pendingN; i++) fibers[i] = fork(tasks[i]!)
        return {
          release: async () => {
            open()
            await until(() => fibers.every((fiber) => fiber.pollUnsafe() !== undefined))
          }
        }
      }
    }
  },
  {
    name: "Promise.all",
    prepare: (onStart) => {
      let open!: () => void
      const gate = new Promise<void>((resolve) => {
        open = resolve
      })
      const fns = new Array<() => Promise<void>>(pendingN)
      for (let i = 0; i < pendingN; i++) {
        fns[i] = async () => {
          onStart()
          await gate
        }
      }
      return () => {
        const done = Promise.all(fns.map((f) => f()))
        return {
          release: () => {
            open()
            return done
          }
        }
      }
    }
  }
]

interface PendingResult {
  readonly bytes: Stats
  readonly startMs: Stats
}

const measurePending = async (p: Pending): Promise<readonly [bytes: number, startMs: number]> => {
  let started = 0
  let allStartedAt = 0
  const launch = p.prepare(() => {
    if (++started === pendingN) allStartedAt = performance.now()
  })
  await settleEventLoop()
  const before = heapAfterGc()
  const t0 = performance.now()
  const running = launch()
  await until(() => started === pendingN)
  const after = heapAfterGc()
  await running.release()
  return [(after - before) / pendingN, allStartedAt - t0]
}

/** One warm-up round, then `pendingRuns` rounds of every runner, the order rotating. */
const memory = async (): Promise<Map<string, PendingResult>> => {
  const bytes = pendings.map(() => new Array<number>())
  const startMs = pendings.map(() => new Array<number>())
  for (let r = 0; r <= pendingRuns; r++) {
    for (let k = 0; k < pendings.length; k++) {
      const i = (k + r) % pendings.length
      const [b, ms] = await measurePending(pendings[i]!)
      if (r === 0) continue
      bytes[i]!.push(b)
      startMs[i]!.push(ms)
    }
  }
  return new Map(pendings.map((p, i) => [p.name, { bytes: stats(bytes[i]!), startMs: stats(startMs[i]!) }]))
}

const pendingPeer = (name: string) => name.startsWith("FanOut.settle") ? "Effect.all mode result" : "Effect.all"

const printMemory = (results: Map<string, PendingResult>) => {
  heading(`Pending tasks, N = ${count(pendingN)}: heap per pending task, time until all have started`)
  console.log(table(
    ["runner", "bytes per pending task", "× Effect.all", "ms until all started", "× Effect.all", "× peer"],
    pendings.map((p) => {
      const r = results.get(p.name)!
      const all = results.get("Effect.all")!
      const peer = results.get(pendingPeer(p.name))!
      return [
        p.name,
        fmtStats(r.bytes, 0),
        fmtCost(cost(r.bytes, all.bytes)),
        fmtStats(r.startMs),
        fmtCost(cost(r.startMs, all.startMs)),
        p.name.startsWith("FanOut") ? `${fmtCost(cost(r.startMs, peer.startMs))} ${pendingPeer(p.name)}` : "—"
      ]
    })
  ))
  console.log(
    `\nEach task bumps a counter, then waits on one shared gate (\`Deferred.await\` / \`await gate\`). Bytes: heap ` +
      `used after a full GC with all ${count(pendingN)} tasks waiting, minus the same with the tasks built but not ` +
      `started, divided by N. Start: from the call to the last task's counter bump. One warm-up round, then ` +
      `${pendingRuns} rounds of every runner (the order rotating), medians (min–max). "× X" = this runner's median / ` +
      `X's (below 1: less or faster); "× peer" for the start time: \`settle\` against \`Effect.all\` mode "result".`
  )
}

// ---------------------------------------------------------------------------------------------------------------
// fail fast

const failRuns = quick ? 5 : 15

/** The Promise twin: each function waits on its resource until a shared `AbortController` aborts it. */
const promiseFailFast = async (wait: Wait): Promise<readonly [number, number]> => {
  let finalized = 0
  let failedAt = 0
  const controller = new AbortController()
  const signal = controller.signal
  setMaxListeners(0, signal)
  const sibling = () =>
    new Promise<void>((resolve, reject) => {
      let cleanup = () => {}
      if (wait === "sleep") {
        const timer = setTimeout(resolve, 3_600_000)
        cleanup = () => clearTimeout(timer)
      } else if (wait === "callback") {
        const socket = new EventEmitter()
        socket.once("data", resolve)
        cleanup = () => socket.removeListener("data", resolve)
      }
      signal.addEventListener("abort", () => {
        cleanup()
        finalized++
        reject(signal.reason)
      }, { once: true })
    })
  const promises = new Array<Promise<void>>(failN)
  for (let i = 0; i < failN - 1; i++) promises[i] = sibling()
  promises[failN - 1] = (async () => {
    await new Promise((resolve) => setTimeout(resolve, failAfterMs))
    failedAt = performance.now()
    throw new Boom()
  })()
  try {
    await Promise.all(promises)
  } catch {
    controller.abort()
    // Wait for every sibling's cleanup, as the Effect runners do.
    await Promise.allSettled(promises)
  }
  return [performance.now() - failedAt, finalized] as const
}

const rootFork = Effect.runForkWith(Effect.runSync(Effect.context<never>()))

/**
 * The floor: the same tasks on bare fibers (`Effect.runForkWith`), the failing one's observer interrupting the others
 * with `interruptUnsafe`; done when the last one has ended. What interrupting 999 suspended Effect 4 fibers costs.
 */
const bareFailFast = (wait: Wait): Promise<readonly [number, number]> =>
  new Promise((resolve) => {
    let finalized = 0
    let failedAt = 0
    let running = failN - 1
    const gate = Deferred.makeUnsafe<void>()
    const finalizer = Effect.sync(() => {
      finalized++
    })
    const fibers = new Array<Fiber.Fiber<void>>(failN - 1)
    for (let i = 0; i < failN - 1; i++) {
      fibers[i] = rootFork(Effect.ensuring(effectWait(wait, gate), finalizer))
      fibers[i]!.addObserver(() => {
        if (--running === 0) resolve([performance.now() - failedAt, finalized])
      })
    }
    rootFork(Effect.andThen(
      Effect.sleep(failAfterMs),
      Effect.suspend(() => {
        failedAt = performance.now()
        return Effect.fail(new Boom())
      })
    )).addObserver(() => {
      for (const fiber of fibers) fiber.interruptUnsafe()
    })
  })

const failFasts: ReadonlyArray<FailFast> = [
  { name: "FanOut.all", run: effectFailFast((tasks) => FanOut.all(tasks)) },
  { name: "FanOut.forEach", run: effectFailFast((tasks) => FanOut.forEach(tasks, (task) => task)) },
  { name: "Effect.all", run: effectFailFast((tasks) => Effect.all(tasks, { concurrency: "unbounded" })) },
  {
    // FanOut runs its tasks under its span; a span's stack frame makes every failure and interruption that crosses a
    // frame of a task's fiber annotate its cause.
    name: "Effect.all in a span",
    run: effectFailFast((tasks) => Effect.withSpan(Effect.all(tasks, { concurrency: "unbounded" }), "bench", untraced))
  },
  { name: "bare fibers (floor)", run: bareFailFast },
  { name: "Promise.all + AbortController", run: promiseFailFast }
]

interface FailFastResult {
  readonly latency: Stats
  readonly finalized: number
}

const failFast = async (): Promise<Map<string, FailFastResult>> => {
  const out = new Map<string, FailFastResult>()
  for (const wait of waits) {
    for (const f of failFasts) for (let w = 0; w < 3; w++) await f.run(wait)
    const latencies = failFasts.map(() => new Array<number>())
    const finalized = failFasts.map(() => Infinity)
    for (let r = 0; r < failRuns; r++) {
      for (let k = 0; k < failFasts.length; k++) {
        const i = (k + r) % failFasts.length
        const [latency, done] = await failFasts[i]!.run(wait)
        latencies[i]!.push(latency)
        finalized[i] = Math.min(finalized[i]!, done)
      }
    }
    failFasts.forEach((f, i) => out.set(key(f.name, wait), { latency: stats(latencies[i]!), finalized: finalized[i]! }))
  }
  return out
}

const printFailFast = (results: Map<string, FailFastResult>) => {
  heading(`Fail fast, N = ${count(failN)}: ms from the failure to the return, siblings' finalizers done`)
  console.log(table(
    ["siblings wait on", "runner", "ms after the failure", "× Effect.all", "finalizers done at return (fewest)"],
    waits.flatMap((wait) =>
      failFasts.map((f) => {
        const r = results.get(key(f.name, wait))!
        return [
          wait,
          f.name,
          fmtStats(r.latency),
          fmtCost(cost(r.latency, results.get(key("Effect.all", wait))!.latency)),
          `${r.finalized} / ${failN - 1}`
        ]
      })
    ),
    2
  ))
  console.log(
    `\n${failN - 1} tasks wait with a counting finalizer (\`Effect.ensuring\`; for Promise an abort listener): on ` +
      `one \`Deferred\` never done, on \`Effect.sleep("1 hour")\`, or on an \`Effect.callback\` whose cleanup removes ` +
      `its listener from its own \`EventEmitter\` (a read in flight on a socket). The last task fails after ` +
      `${failAfterMs} ms. Latency: from just before the failing task fails to just after the fan-out returns (Promise: ` +
      `after \`Promise.all\` rejects, \`abort()\` and \`Promise.allSettled\` of every task; bare fibers: until the last ` +
      `interrupted fiber has ended). 3 warm-up runs, then ` +
      `${failRuns} rounds of every runner, interleaved; "× Effect.all" = this runner's median / Effect.all's.`
  )
}

// ---------------------------------------------------------------------------------------------------------------
// options: `timeout` and `hedge` with limits that never fire, against no option

const limit = "1 hour"
const optionGroups: ReadonlyArray<
  { readonly n: number; readonly concurrency: Concurrency; readonly kinds: ReadonlyArray<Kind> }
> = [
  { n: 1000, concurrency: "unbounded", kinds },
  { n: 1000, concurrency: 16, kinds },
  { n: 100_000, concurrency: "unbounded", kinds: ["sync"] }
]

/** How an Effect user hedges a call by hand: a second try after the delay, the first to succeed wins. */
const hedgedByRace = <A>(task: Effect.Effect<A>) => Effect.race(task, Effect.andThen(Effect.sleep(limit), task))

interface OptionRunner {
  readonly name: string
  /** The runner this one is compared with: the same fan-out without the option. */
  readonly base: string
  readonly run: (n: number, kind: Kind, concurrency: Concurrency) => Effect.Effect<unknown, unknown>
}

const optionRunners: ReadonlyArray<OptionRunner> = [
  ...(["all", "settle"] as const).flatMap((kind): Array<OptionRunner> => {
    const fanOut = (tasks: Array<Effect.Effect<number>>, options: Record<string, unknown>) =>
      kind === "all" ? FanOut.all(tasks, options) : FanOut.settle(tasks, options)
    const base = `FanOut.${kind}, no option`
    return [
      { name: base, base, run: (n, k, concurrency) => fanOut(effectTasks(n, k), { concurrency }) },
      {
        name: `FanOut.${kind}, timeout`,
        base,
        run: (n, k, concurrency) => fanOut(effectTasks(n, k), { concurrency, timeout: limit })
      },
      {
        name: `FanOut.${kind}, hedge`,
        base,
        run: (n, k, concurrency) => fanOut(effectTasks(n, k), { concurrency, hedge: { delay: limit } })
      }
    ]
  }),
  {
    name: "Effect.all, no option",
    base: "Effect.all, no option",
    run: (n, k, concurrency) => Effect.all(effectTasks(n, k), { concurrency })
  },
  {
    name: "Effect.all, Effect.timeout per task",
    base: "Effect.all, no option",
    run: (n, k, concurrency) => Effect.all(effectTasks(n, k).map((t) => Effect.timeout(t, limit)), { concurrency })
  },
  {
    name: "Effect.all, Effect.race hedge per task",
    base: "Effect.all, no option",
    run: (n, k, concurrency) => Effect.all(effectTasks(n, k).map(hedgedByRace), { concurrency })
  }
]

const options = async (): Promise<Results> => {
  const results: Results = new Map()
  for (const { concurrency, kinds, n } of optionGroups) {
    for (const kind of kinds) {
      const ms = await timeTogether(
        optionRunners.map((r) => () => Effect.runPromise(r.run(n, kind, concurrency))),
        plan(n)
      )
      optionRunners.forEach((r, i) => results.set(key(r.name, n, concurrency, kind), nsPerTask(ms[i]!, n)))
    }
  }
  return results
}

const printOptions = (results: Results) => {
  for (const { concurrency, kinds, n } of optionGroups) {
    heading(
      `Options, N = ${count(n)}, ${
        concurrency === "unbounded" ? "unbounded" : `concurrency ${concurrency}`
      }: ns per task, median (min–max)`
    )
    console.log(table(
      ["runner", ...kinds.flatMap((kind) => [`${kind} ns/task`, "× no option"])],
      optionRunners.map((r) => [
        r.name,
        ...kinds.flatMap((kind) => {
          const self = results.get(key(r.name, n, concurrency, kind))
          return [
            fmtStats(self),
            r.base === r.name ? "—" : fmtCost(cost(self, results.get(key(r.base, n, concurrency, kind))))
          ]
        })
      ])
    ))
  }
  console.log(
    `\nEvery task ends long before its \`timeout\` (${limit}) and its hedging delay (${limit}): no backup starts, ` +
      `no limit fires. "× no option" = this runner's median / the same fan-out's without the option, interleaved ` +
      `with it in the same run (below 1: cheaper). The Effect rows are for reference: \`Effect.timeout\` on every ` +
      `task, and a hand-written hedge per task, \`Effect.race(task, Effect.andThen(Effect.sleep(delay), task))\`. ` +
      `Same samples per figure as the throughput tables; N = 100,000 with \`Effect.sync\` tasks only.`
  )
}

// ---------------------------------------------------------------------------------------------------------------
// targets

interface Target {
  readonly target: string
  readonly met: boolean
  readonly measured: string
}

const throughputTargets = (t: Results): Array<Target> => {
  const out: Array<Target> = []
  for (const [name, peer] of [["FanOut.all", "Effect.all"], ["FanOut.settle", "Effect.all mode result"]] as const) {
    for (const n of sizes) {
      for (const concurrency of concurrencies) {
        for (const kind of kinds) {
          const c = cost(t.get(key(name, n, concurrency, kind)), t.get(key(peer, n, concurrency, kind)))
          if (c === undefined) continue
          out.push({
            target: `${name} ≤ 1.0× ${peer}, N = ${count(n)}, ${
              concurrency === "unbounded" ? "unbounded" : "c16"
            }, ${kind}`,
            met: c.ratio <= 1,
            measured: fmtCostRange(c)
          })
        }
      }
    }
  }
  return out
}

const memoryTargets = (m: Map<string, PendingResult>): Array<Target> =>
  ["FanOut.all", "FanOut.settle"].flatMap((name) => {
    const r = m.get(name)!
    const c: Cost | undefined = cost(r.startMs, m.get("Effect.all")!.startMs)
    return [
      {
        target: `${name} ≤ 1.1 KB per pending task, N = 100,000`,
        met: r.bytes.median <= 1100,
        measured: `${fmtStats(r.bytes, 0)} B`
      },
      {
        target: `${name}: 100,000 tasks started no slower than Effect.all`,
        met: c !== undefined && c.ratio <= 1,
        measured: `${fmt(r.startMs.median)} ms, ${fmtCostRange(c)} Effect.all's time`
      }
    ]
  })

const failFastTargets = (f: Map<string, FailFastResult>): Array<Target> =>
  waits.map((wait) => {
    const r = f.get(key("FanOut.all", wait))!
    return {
      target: `FanOut.all fail fast ≤ 1 ms, N = 1,000, siblings on a ${wait}, finalizers done`,
      met: r.latency.median <= 1 && r.finalized === failN - 1,
      measured: `${fmtStats(r.latency)} ms, ${r.finalized} / ${failN - 1}; Effect.all ${
        fmt(f.get(key("Effect.all", wait))!.latency.median)
      } ms, in a span ${fmt(f.get(key("Effect.all in a span", wait))!.latency.median)} ms`
    }
  })

const optionTargets = (o: Results): Array<Target> => {
  const out: Array<Target> = []
  for (const r of optionRunners.filter((r) => r.base !== r.name && r.name.startsWith("FanOut"))) {
    for (const { concurrency, kinds, n } of optionGroups) {
      for (const kind of kinds) {
        const c = cost(o.get(key(r.name, n, concurrency, kind)), o.get(key(r.base, n, concurrency, kind)))
        if (c === undefined) continue
        out.push({
          target: `${r.name} ≤ 1.5× no option, N = ${count(n)}, ${
            concurrency === "unbounded" ? "unbounded" : "c16"
          }, ${kind}`,
          met: c.ratio <= 1.5,
          measured: fmtCostRange(c)
        })
      }
    }
  }
  return out
}

const printTargets = (targets: ReadonlyArray<Target>) => {
  heading("Targets")
  console.log(table(
    ["target", "met", "measured: median (paired per-round min–max)"],
    targets.map((t) => [t.target, t.met ? "yes" : "**no**", t.measured])
  ))
  const missed = targets.filter((t) => !t.met).length
  console.log(`\n${targets.length - missed} of ${targets.length} targets met${missed > 0 ? `, ${missed} missed` : ""}.`)
}

// ---------------------------------------------------------------------------------------------------------------

const main = async () => {
  const t0 = performance.now()
  console.log(
    `### Core benchmark\n\n${machine()}; effect ${effectVersion()}${quick ? "; --quick" : ""}; library ${
      process.env.BENCH_SOURCE === "1" ? "from src/ through tsx" : "compiled by tsc"
    }${only === undefined ? "" : `; --only=${only.join(",")}`}${
      clock === "cpu" ? "; throughput and options in CPU time (--clock=cpu)" : ""
    }`
  )
  if (!gcAvailable()) console.log("\n(no --expose-gc: heap figures are unreliable; run through `npm run bench`)")
  const targets: Array<Target> = []
  if (section("throughput")) {
    const t = await throughput()
    printThroughput(t)
    targets.push(...throughputTargets(t))
  }
  if (section("memory")) {
    const m = await memory()
    printMemory(m)
    targets.push(...memoryTargets(m))
  }
  if (section("failfast")) {
    const f = await failFast()
    printFailFast(f)
    targets.push(...failFastTargets(f))
  }
  if (section("options")) {
    const o = await options()
    printOptions(o)
    targets.push(...optionTargets(o))
  }
  printTargets(targets)
  console.log(
    `\nTotal ${fmt((performance.now() - t0) / 1000, 0)} s; load average at the end ${
      machine().split("load average ")[1]
    }.`
  )
}

await main()
