/**
 * One scenario in a loop, for `--cpu-prof` / `--heap-prof` (`npm run bench:profile -- <scenario> <n> <reps>`):
 * `all`, `settle`, `all16`, `settle16`, `allYield`, `settleYield`, `all16Yield`, `effectAll`, `failFast`, `batched`,
 * `effectBatched`.
 */
import * as Effect from "effect/Effect"
import { performance } from "node:perf_hooks"
import { compileLibrary, importLibrary, request } from "./harness.js"

if (process.env.BENCH_SOURCE !== "1" && process.env.BENCH_NO_BUILD !== "1") compileLibrary()
const FanOut = await importLibrary<typeof import("../../src/FanOut.js")>("FanOut.js")

const [scenario = "all", nArg = "1000", repsArg = "200"] = process.argv.slice(2)
const n = Number(nArg)
const reps = Number(repsArg)

const trivial = () => Array.from({ length: n }, (_, i) => Effect.sync(() => i))
const yielding = () => Array.from({ length: n }, (_, i) => Effect.as(Effect.yieldNow(), i))

const items = () => Array.from({ length: n }, (_, i) => i)

const scenarios: Record<string, () => Effect.Effect<unknown, unknown>> = {
  all: () => FanOut.all(trivial()),
  settle: () => FanOut.settle(trivial()),
  all16: () => FanOut.all(trivial(), { concurrency: 16 }),
  settle16: () => FanOut.settle(trivial(), { concurrency: 16 }),
  settle16Yield: () => FanOut.settle(yielding(), { concurrency: 16 }),
  allYield: () => FanOut.all(yielding()),
  settleYield: () => FanOut.settle(yielding()),
  all16Yield: () => FanOut.all(yielding(), { concurrency: 16 }),
  effectAll: () => Effect.all(trivial(), { concurrency: "unbounded" }),
  batched: () => FanOut.forEach(items(), request, { batching: true }),
  effectBatched: () => Effect.forEach(items(), request, { concurrency: "unbounded", batching: true }),
  failFast: () =>
    Effect.exit(FanOut.all([
      ...Array.from({ length: n - 1 }, () => Effect.ensuring(Effect.never, Effect.void)),
      Effect.zipRight(Effect.sleep(5), Effect.fail("boom"))
    ]))
}

const make = scenarios[scenario]
if (make === undefined) throw new Error(`unknown scenario ${scenario}: ${Object.keys(scenarios).join(", ")}`)
const t0 = performance.now()
for (let i = 0; i < reps; i++) await Effect.runPromise(make())
const ms = performance.now() - t0
console.log(
  `${scenario} n=${n} reps=${reps}: ${((ms * 1e6) / (n * reps)).toFixed(0)} ns/task, ${(ms / reps).toFixed(2)} ms/call`
)
