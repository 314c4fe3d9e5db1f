import { assert, describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Chunk,
  Data,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Metric,
  MetricLabel,
  Option,
  Ref,
  Request,
  RequestResolver,
  Schedule,
  Stream,
  TestClock,
  Tracer
} from "effect"
import { FanOut, FanOutError, Outcome } from "../src/index.js"
import { type Log, makeLog } from "./support.js"

class Down extends Data.TaggedError("Down")<{ readonly service: string }> {}

interface Get extends Request.Request<number, string> {
  readonly _tag: "Get"
  readonly i: number
}
const Get = Request.tagged<Get>("Get")

/** Runs until interrupted; records its interruption and its finalizer (which must run exactly once). */
const hang = (log: Log, name: string) =>
  Effect.never.pipe(
    Effect.onInterrupt(() => log.add(`${name} interrupted`)),
    Effect.ensuring(log.add(`${name} finalized`))
  )

const count = (entries: ReadonlyArray<string>, entry: string) => entries.filter((e) => e === entry).length

describe("required", () => {
  it.effect("a required task's failure fails the fan-out with its own error and interrupts the optional tasks", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const gate = yield* Deferred.make<void>()
      const fiber = yield* FanOut.settle({
        account: Deferred.await(gate).pipe(Effect.zipRight(Effect.fail(new Down({ service: "account" })))),
        usage: hang(log, "usage"),
        billing: Effect.succeed(3)
      }, { required: ["account"] }).pipe(Effect.fork)
      yield* Effect.yieldNow()
      expect(yield* log.get).toEqual([])
      yield* Deferred.succeed(gate, undefined)
      const exit = yield* Fiber.await(fiber)
      expect(exit).toStrictEqual(Exit.fail(new Down({ service: "account" })))
      // The optional task was interrupted, and its finalizer ran once, before the fan-out returned.
      const entries = yield* log.get
      expect(count(entries, "usage interrupted")).toBe(1)
      expect(count(entries, "usage finalized")).toBe(1)
      // catchTag works on the required task's error.
      const handled = yield* FanOut.settle({ account: Effect.fail(new Down({ service: "account" })) }, {
        required: ["account"]
      }).pipe(Effect.catchTag("Down", (e) => Effect.succeed(e.service)))
      expect(handled).toBe("account")
    }))

  it.effect("optional tasks settle to outcomes while the required ones succeed", () =>
    Effect.gen(function*() {
      const result = yield* FanOut.settle([Effect.succeed("account"), Effect.fail("x"), Effect.die("bug")], {
        required: [0]
      })
      expect(result.map((o) => o._tag)).toEqual(["Success", "Failure", "Defect"])
    }))

  it.effect("a required task cut off by the deadline fails the fan-out with a FanOutTimeoutError", () =>
    Effect.gen(function*() {
      const fiber = yield* FanOut.settle({
        account: Effect.never,
        usage: Effect.succeed(1)
      }, { required: ["account"], deadline: "1 second" }).pipe(Effect.fork)
      yield* TestClock.adjust("1 second")
      const exit = yield* Fiber.await(fiber)
      const error = Cause.failureOption(Exit.isFailure(exit) ? exit.cause : Cause.empty)
      expect(Option.getOrThrow(error)).toBeInstanceOf(FanOutError.FanOutTimeoutError)
      expect((Option.getOrThrow(error) as FanOutError.FanOutTimeoutError).reason).toBe("Deadline")
    }))

  it.effect("report: true names the required task that failed, crashed or was cut off by the deadline (optional tasks cut off there are TimedOut)", () =>
    Effect.gen(function*() {
      const crashed = yield* FanOut.settle({ account: Effect.die(new Error("bug")), usage: Effect.never }, {
        required: ["account"],
        report: true
      }).pipe(Effect.flip)
      expect(crashed).toBeInstanceOf(FanOutError.FanOutFailure)
      expect([crashed.reason, crashed.key, crashed.label]).toEqual(["Defect", "account", "account"])
      expect(crashed.outcomes.map((o) => o._tag)).toEqual(["Defect", "Interrupted"])

      const fiber = yield* FanOut.settle({ usage: Effect.succeed(1), account: Effect.never, panel: Effect.never }, {
        required: ["account"],
        deadline: "1 second",
        report: true
      }).pipe(Effect.flip, Effect.fork)
      yield* TestClock.adjust("1 second")
      const late = yield* Fiber.join(fiber)
      expect([late.reason, late.key]).toEqual(["Deadline", "account"])
      // The optional panel did not come either: TimedOut, as its outcome says, listed after the required task.
      expect(late.outcomes.map((o) => [o.key, o._tag, "reason" in o ? o.reason : undefined])).toEqual([
        ["usage", "Success", undefined],
        ["account", "TimedOut", "Deadline"],
        ["panel", "TimedOut", "Deadline"]
      ])
      expect(late.failures.map((o) => o.key)).toEqual(["account", "panel"])
    }))

  it.effect("without report, a required task cut off by the deadline is named in the FanOutTimeoutError", () =>
    Effect.gen(function*() {
      const fiber = yield* FanOut.settle([Effect.never, Effect.succeed(1)], { required: [0], deadline: 50 }).pipe(
        Effect.flip,
        Effect.fork
      )
      yield* TestClock.adjust(50)
      const error = yield* Fiber.join(fiber)
      expect(error).toMatchObject({ _tag: "FanOutTimeoutError", reason: "Deadline", key: 0 })
      expect(error.message).toContain("did not finish by the deadline")
    }))

  it.effect("settleForEach takes required item indices; a Set of tasks takes indices too", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const started = yield* Deferred.make<void>()
      const each = yield* Effect.exit(FanOut.settleForEach(
        ["account", "usage"],
        (name) =>
          name === "account"
            ? Deferred.await(started).pipe(Effect.zipRight(Effect.fail(new Down({ service: name }))))
            : Deferred.succeed(started, undefined).pipe(Effect.zipRight(hang(log, name))),
        { required: [0] }
      ))
      expect(each).toStrictEqual(Exit.fail(new Down({ service: "account" })))
      expect(count(yield* log.get, "usage finalized")).toBe(1)
      const fromSet = yield* Effect.exit(
        FanOut.settle(new Set([Effect.succeed(1), Effect.fail(new Down({ service: "set" }))]), { required: [1] })
      )
      expect(fromSet).toStrictEqual(Exit.fail(new Down({ service: "set" })))
      const optional = yield* FanOut.settleForEach([1, 2], (n) => n === 1 ? Effect.fail("x") : Effect.succeed(n), {
        required: [1]
      })
      expect(optional.map((o) => o._tag)).toEqual(["Failure", "Success"])
    }))

  it.effect("a key that is not a task's key is an InvalidOptionError", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(FanOut.settle({ a: Effect.succeed(1) }, { required: ["b" as "a"] }))
      const defect = Exit.isFailure(exit) ? Chunk.unsafeHead(Cause.defects(exit.cause)) : undefined
      expect(defect).toBeInstanceOf(FanOutError.InvalidOptionError)
      expect((defect as FanOutError.InvalidOptionError).option).toBe("required")
    }))
})

describe("retry", () => {
  it.effect("retries typed failures by the schedule and counts the attempts", () =>
    Effect.gen(function*() {
      const tries = yield* Ref.make(0)
      const flaky = Ref.updateAndGet(tries, (n) => n + 1).pipe(
        Effect.flatMap((n) => n < 3 ? Effect.fail(`try ${n}`) : Effect.succeed(n))
      )
      const [outcome, failing] = yield* FanOut.settle([flaky, Effect.fail("always")], { retry: Schedule.recurs(4) })
      expect(outcome).toMatchObject({ _tag: "Success", value: 3, attempts: 3 })
      expect(failing).toMatchObject({ _tag: "Failure", error: "always", attempts: 5 })
    }))

  it.effect("never retries a defect or an interruption", () =>
    Effect.gen(function*() {
      const runs = yield* Ref.make(0)
      const crash = Ref.update(runs, (n) => n + 1).pipe(Effect.zipRight(Effect.die(new Error("bug"))))
      const [outcome] = yield* FanOut.settle([crash], { retry: Schedule.recurs(5) })
      expect(outcome._tag).toBe("Defect")
      expect(outcome.attempts).toBe(1)
      expect(yield* Ref.get(runs)).toBe(1)
      const [interrupted] = yield* FanOut.settle([Effect.interrupt], { retry: Schedule.recurs(5) })
      expect(interrupted).toMatchObject({ _tag: "Interrupted", attempts: 1 })
    }))

  it.effect("an attempt past its timeout is given to the schedule as a FanOutTimeoutError naming the task", () =>
    Effect.gen(function*() {
      for (const mode of ["settle", "all"] as const) {
        const seen = yield* Ref.make<ReadonlyArray<unknown>>([])
        const retry = Schedule.recurs(1).pipe(Schedule.tapInput((input) => Ref.update(seen, (all) => [...all, input])))
        const tasks = { slow: Effect.never }
        const run: Effect.Effect<unknown> = mode === "settle"
          ? FanOut.settle(tasks, { timeout: "1 second", retry })
          : FanOut.all(tasks, { timeout: "1 second", retry }).pipe(Effect.exit)
        const fiber = yield* Effect.fork(run)
        yield* TestClock.adjust("2 seconds")
        yield* Fiber.join(fiber)
        const inputs = yield* Ref.get(seen)
        expect(inputs).toHaveLength(2)
        for (const input of inputs) {
          expect(input).toBeInstanceOf(FanOutError.FanOutTimeoutError)
          expect(input).toMatchObject({ reason: "Timeout", key: "slow", label: "slow" })
        }
      }
    }))

  it.effect("retries stop at the deadline", () =>
    Effect.gen(function*() {
      const fiber = yield* FanOut.settle([Effect.fail("down")], {
        retry: Schedule.spaced("100 millis"),
        deadline: "350 millis"
      }).pipe(Effect.fork)
      yield* TestClock.adjust("1 second")
      const [outcome] = yield* Fiber.join(fiber)
      expect(outcome).toMatchObject({ _tag: "TimedOut", reason: "Deadline", attempts: 4 })
    }))
})

describe("quorum", () => {
  it.effect("succeeds as soon as n tasks succeed, in completion order, and interrupts the rest", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const slow = Effect.sleep("2 seconds").pipe(Effect.as("slow"))
      const fiber = yield* FanOut.quorum({
        eu: slow,
        us: Effect.sleep("1 second").pipe(Effect.as("us")),
        asia: Effect.succeed("asia"),
        stuck: hang(log, "stuck")
      }, 2).pipe(Effect.fork)
      yield* TestClock.adjust("1 second")
      const winners = yield* Fiber.join(fiber)
      expect(winners.map((w) => [w.key, w.value])).toEqual([["asia", "asia"], ["us", "us"]])
      const entries = yield* log.get
      expect(count(entries, "stuck interrupted")).toBe(1)
      expect(count(entries, "stuck finalized")).toBe(1)
    }))

  it.effect("fails as soon as n can no longer be reached, with every outcome", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const error = yield* FanOut.quorum([
        hang(log, "c"),
        Effect.fail(new Down({ service: "a" })),
        Effect.fail(new Down({ service: "b" })),
        Effect.succeed(1)
      ], 3).pipe(Effect.flip)
      expect(error).toBeInstanceOf(FanOutError.QuorumError)
      expect(error.needed).toBe(3)
      // After two failures, 3 of 4 is out of reach: the hanging task is interrupted and the last one never starts.
      expect(error.outcomes.map((o) => [o._tag, o.attempts])).toEqual([
        ["Interrupted", 1],
        ["Failure", 1],
        ["Failure", 1],
        ["Interrupted", 0]
      ])
      expect(count(yield* log.get, "c finalized")).toBe(1)
    }))

  it.effect("takes any iterable of tasks, as the other fan-outs do", () =>
    Effect.gen(function*() {
      const winners = yield* FanOut.quorum(new Set([Effect.fail("x"), Effect.succeed("a"), Effect.never]), 1)
      expect(winners.map((w) => [w.key, w.value])).toEqual([[1, "a"]])
      function* tasks() {
        yield Effect.succeed(1)
        yield Effect.fail("down")
      }
      const streamed = yield* Stream.runCollect(FanOut.stream(tasks()))
      expect(Chunk.toReadonlyArray(streamed).map((o) => [o.key, o._tag])).toEqual([[0, "Success"], [1, "Failure"]])
    }))

  it.effect("n out of range is an InvalidOptionError", () =>
    Effect.gen(function*() {
      for (const n of [0, 3, 1.5, Number.NaN]) {
        const exit = yield* Effect.exit(FanOut.quorum([Effect.succeed(1), Effect.succeed(2)], n))
        const defect = Exit.isFailure(exit) ? Chunk.unsafeHead(Cause.defects(exit.cause)) : undefined
        expect(defect).toBeInstanceOf(FanOutError.InvalidOptionError)
      }
    }))

  it.effect("firstSuccess returns the first value and fails only when every task failed", () =>
    Effect.gen(function*() {
      const value = yield* FanOut.firstSuccess([Effect.fail("a"), Effect.succeed("b"), Effect.never])
      expect(value).toBe("b")
      const error = yield* FanOut.firstSuccess([Effect.fail("a"), Effect.fail("b")]).pipe(Effect.flip)
      expect(error.outcomes.map((o) => Outcome.isFailure(o) && o.error)).toEqual(["a", "b"])
    }))
})

describe("hedge", () => {
  it.effect("starts a backup attempt only after the delay; the first success wins and the loser is interrupted", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const attempt = yield* Ref.make(0)
      const task = Ref.updateAndGet(attempt, (n) => n + 1).pipe(
        Effect.tap((n) => log.add(`start ${n}`)),
        Effect.flatMap((n) => n === 1 ? hang(log, "first") : Effect.sleep("10 millis").pipe(Effect.as(n)))
      )
      const fiber = yield* FanOut.hedge(task, { delay: "100 millis", max: 3 }).pipe(Effect.fork)
      yield* TestClock.adjust("99 millis")
      expect(yield* log.get).toEqual(["start 1"])
      yield* TestClock.adjust("1 millis")
      expect(yield* log.get).toEqual(["start 1", "start 2"])
      yield* TestClock.adjust("10 millis")
      expect(yield* Fiber.join(fiber)).toBe(2)
      const entries = yield* log.get
      expect(count(entries, "first interrupted")).toBe(1)
      expect(count(entries, "first finalized")).toBe(1)
      expect(entries).not.toContain("start 3")
    }))

  it.effect("a caller that cannot be interrupted gets the first attempt's answer without sitting out the delay", () =>
    Effect.gen(function*() {
      const task = Effect.as(Effect.sleep("10 millis"), "answer")
      const alone = yield* Effect.fork(Effect.uninterruptible(FanOut.hedge(task, { delay: "1 hour" })))
      const inFanOut = yield* Effect.fork(
        Effect.uninterruptible(FanOut.settle({ search: task }, { hedge: { delay: "1 hour" } }))
      )
      yield* TestClock.adjust("10 millis")
      expect(yield* Fiber.poll(alone)).toStrictEqual(Option.some(Exit.succeed("answer")))
      const settled = yield* Fiber.poll(inFanOut)
      assert(Option.isSome(settled) && Exit.isSuccess(settled.value))
      expect(settled.value.value.search).toMatchObject({ _tag: "Success", value: "answer", attempts: 1 })
    }))

  it.effect("returns only once the losing attempt's finalizer has finished, however slow", () =>
    Effect.gen(function*() {
      const attempt = yield* Ref.make(0)
      const release = yield* Deferred.make<void>()
      const finalized = yield* Ref.make(false)
      const slowCleanup = Effect.zipRight(Deferred.await(release), Ref.set(finalized, true))
      const task = Ref.updateAndGet(attempt, (n) => n + 1).pipe(
        Effect.flatMap((n) => n === 1 ? Effect.ensuring(Effect.never, slowCleanup) : Effect.succeed(n))
      )
      const fiber = yield* FanOut.hedge(task, { delay: "10 millis", max: 2 }).pipe(Effect.fork)
      yield* TestClock.adjust("10 millis")
      // The second attempt has won; the first is being interrupted and its cleanup waits on the latch.
      expect(yield* Ref.get(attempt)).toBe(2)
      expect(yield* Fiber.poll(fiber)).toStrictEqual(Option.none())
      yield* Deferred.succeed(release, undefined)
      expect(yield* Fiber.join(fiber)).toBe(2)
      expect(yield* Ref.get(finalized)).toBe(true)
    }))

  it.effect("fails only when every attempt has failed, starting the next one at once after a failure", () =>
    Effect.gen(function*() {
      const attempt = yield* Ref.make(0)
      const task = Ref.updateAndGet(attempt, (n) => n + 1).pipe(Effect.flatMap((n) => Effect.fail(`failed ${n}`)))
      const exit = yield* Effect.exit(FanOut.hedge(task, { delay: "1 hour", max: 3 }))
      expect(yield* Ref.get(attempt)).toBe(3)
      expect(Exit.isFailure(exit) && Chunk.toReadonlyArray(Cause.failures(exit.cause))).toEqual([
        "failed 1",
        "failed 2",
        "failed 3"
      ])
    }))

  it.effect("a hedging option it does not know, or a task that is not an Effect, is an InvalidOptionError", () =>
    Effect.gen(function*() {
      const attempts = yield* Ref.make(0)
      const task = Ref.update(attempts, (n) => n + 1)
      const misspelt = { delay: "1 millis", maxx: 3 } as FanOut.HedgeOptions
      for (
        const run of [
          FanOut.hedge(task, misspelt),
          FanOut.all([task], { hedge: misspelt }),
          FanOut.settle([task], { hedge: misspelt })
        ]
      ) {
        const exit = yield* Effect.exit(run)
        const defect = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
        expect(defect).toMatchObject({ _tag: "InvalidOptionError", option: "hedge.maxx" })
      }
      const exit = yield* Effect.exit(
        FanOut.hedge(Promise.resolve(1) as unknown as Effect.Effect<number>, { delay: "1 millis" })
      )
      expect(Exit.isFailure(exit) && Cause.squash(exit.cause)).toMatchObject({
        _tag: "InvalidOptionError",
        option: "task",
        message: expect.stringContaining("hedge needs an Effect, got a promise")
      })
      expect(yield* Ref.get(attempts)).toBe(0)
    }))

  it.effect("the hedge option counts the attempts in the outcome", () =>
    Effect.gen(function*() {
      const attempt = yield* Ref.make(0)
      const task = Ref.updateAndGet(attempt, (n) => n + 1).pipe(
        Effect.flatMap((n) => n === 1 ? Effect.never : Effect.succeed(n))
      )
      const fiber = yield* FanOut.settle({ search: task }, { hedge: { delay: "50 millis" } }).pipe(Effect.fork)
      yield* TestClock.adjust("50 millis")
      const { search } = yield* Fiber.join(fiber)
      expect(search).toMatchObject({ _tag: "Success", value: 2, attempts: 2 })
    }))
})

describe("stream", () => {
  it.effect("emits outcomes in the order the tasks finish", () =>
    Effect.gen(function*() {
      const fiber = yield* FanOut.stream({
        slow: Effect.sleep("3 seconds").pipe(Effect.as(3)),
        fast: Effect.sleep("1 second").pipe(Effect.as(1)),
        broken: Effect.sleep("2 seconds").pipe(Effect.zipRight(Effect.fail("down")))
      }).pipe(Stream.runCollect, Effect.fork)
      yield* TestClock.adjust("3 seconds")
      const outcomes = Chunk.toReadonlyArray(yield* Fiber.join(fiber))
      expect(outcomes.map((o) => [o.key, o._tag, o.durationMillis])).toEqual([
        ["fast", "Success", 1000],
        ["broken", "Failure", 2000],
        ["slow", "Success", 3000]
      ])
    }))

  it.effect("ending the stream early interrupts the tasks still running and waits for their finalizers", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const first = yield* FanOut.stream([hang(log, "a"), Effect.succeed("b"), hang(log, "c")]).pipe(
        Stream.take(1),
        Stream.runCollect
      )
      expect(Chunk.toReadonlyArray(first).map((o) => o.key)).toEqual([1])
      const entries = yield* log.get
      expect(count(entries, "a finalized")).toBe(1)
      expect(count(entries, "c finalized")).toBe(1)
    }))

  it.effect("bad options are the stream's defect when it runs, not a throw when it is made", () =>
    Effect.gen(function*() {
      const stream = FanOut.stream([Effect.succeed(1)], { concurrency: 0 })
      const exit = yield* Effect.exit(Stream.runCollect(stream))
      const defect = Exit.isFailure(exit) ? Chunk.unsafeHead(Cause.defects(exit.cause)) : undefined
      expect(defect).toMatchObject({ _tag: "InvalidOptionError", option: "concurrency" })
    }))

  it.effect("tasks cut off by the deadline come last, timed out", () =>
    Effect.gen(function*() {
      const fiber = yield* FanOut.stream([Effect.never, Effect.succeed("ok")], { deadline: "1 second" }).pipe(
        Stream.runCollect,
        Effect.fork
      )
      yield* TestClock.adjust("1 second")
      const outcomes = Chunk.toReadonlyArray(yield* Fiber.join(fiber))
      expect(outcomes.map((o) => [o.key, o._tag])).toEqual([[1, "Success"], [0, "TimedOut"]])
    }))
})

describe("detach", () => {
  it.effect("returns at the first failure while a sibling's slow finalizer finishes in the background", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const finalized = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      // Signals it is running, then hangs; its finalizer cannot finish until the test releases it.
      const slowCleanup = Deferred.succeed(started, undefined).pipe(
        Effect.zipRight(Effect.never),
        Effect.ensuring(Deferred.await(release).pipe(Effect.zipRight(Deferred.succeed(finalized, undefined))))
      )
      const exit = yield* Effect.exit(
        FanOut.all([slowCleanup, Deferred.await(started).pipe(Effect.zipRight(Effect.fail("boom")))], { detach: true })
      )
      expect(exit).toStrictEqual(Exit.fail("boom"))
      expect(yield* Deferred.isDone(finalized)).toBe(false)
      yield* Deferred.succeed(release, undefined)
      yield* Deferred.await(finalized)
    }))
})

describe("tracing", () => {
  interface Recorded {
    readonly name: string
    readonly parent: string | undefined
    readonly attributes: Map<string, unknown>
  }
  const capturing = () => {
    const ended: Array<Recorded> = []
    const tracer = Tracer.make({
      span(name, parent, context, links, startTime, kind) {
        const attributes = new Map<string, unknown>()
        const span: Tracer.Span = {
          _tag: "Span",
          name,
          spanId: `${name}-${ended.length}-${Math.random()}`,
          traceId: "trace",
          parent,
          context,
          status: { _tag: "Started", startTime },
          attributes,
          links,
          sampled: true,
          kind,
          end: () => {
            ended.push({
              name,
              parent: Option.getOrUndefined(Option.map(parent, (p) => p._tag === "Span" ? p.name : p.spanId)),
              attributes
            })
          },
          attribute: (key, value) => {
            attributes.set(key, value)
          },
          event: () => {},
          addLinks: () => {}
        }
        return span
      },
      context: (f) => f()
    })
    return { ended, tracer }
  }

  it.effect("a fan-out span with counts by outcome, and one child span per task marked with its outcome", () =>
    Effect.gen(function*() {
      const { ended, tracer } = capturing()
      yield* FanOut.settle({
        profile: Effect.succeed(1).pipe(Effect.withSpan("profile.query")),
        orders: Effect.fail("down"),
        crash: Effect.die("bug")
      }, { name: "page" }).pipe(Effect.withSpan("request"), Effect.withTracer(tracer))
      const byName = new Map(ended.map((s) => [s.name, s]))
      expect(byName.get("page")?.parent).toBe("request")
      expect(byName.get("profile")?.parent).toBe("page")
      expect(byName.get("profile.query")?.parent).toBe("profile")
      expect(byName.get("orders")?.attributes.get("fanout.task.outcome")).toBe("Failure")
      expect(byName.get("crash")?.attributes.get("fanout.task.outcome")).toBe("Defect")
      expect(byName.get("profile")?.attributes.get("fanout.task.attempts")).toBe(1)
      const page = byName.get("page")!.attributes
      expect([
        page.get("fanout.outcome.Success"),
        page.get("fanout.outcome.Failure"),
        page.get("fanout.outcome.Defect")
      ])
        .toEqual([1, 1, 1])
      expect(page.get("fanout.tasks")).toBe(3)
      expect(page.get("fanout.mode")).toBe("settle")
      expect(page.has("fanout.batching")).toBe(false)
    }))

  it.effect("with batching, a task's span lasts across its rounds and still parents the spans inside the task", () =>
    Effect.gen(function*() {
      const { ended, tracer } = capturing()
      const batches: Array<ReadonlyArray<number>> = []
      const resolver = RequestResolver.makeBatched((requests: ReadonlyArray<Get>) => {
        batches.push(requests.map((request) => request.i))
        return Effect.forEach(
          requests,
          (request) =>
            Request.completeEffect(request, request.i < 0 ? Effect.fail("missing") : Effect.succeed(request.i)),
          {
            discard: true
          }
        )
      })
      const get = (i: number) => Effect.request(Get({ i }), resolver).pipe(Effect.withSpan(`get ${i}`))
      yield* FanOut.settle({ a: Effect.zip(get(1), get(2)), b: get(-1) }, { name: "batched", batching: true }).pipe(
        Effect.withTracer(tracer)
      )
      expect(batches).toEqual([[1, -1], [2]])
      const byName = new Map(ended.map((s) => [s.name, s]))
      expect(byName.get("a")?.parent).toBe("batched")
      expect(byName.get("get 1")?.parent).toBe("a")
      expect(byName.get("get 2")?.parent).toBe("a")
      expect(byName.get("a")?.attributes.get("fanout.task.outcome")).toBe("Success")
      expect(byName.get("b")?.attributes.get("fanout.task.outcome")).toBe("Failure")
      // The task span ends after the spans inside it, in its second round.
      expect(ended.map((s) => s.name).indexOf("a")).toBeGreaterThan(ended.map((s) => s.name).indexOf("get 2"))
      const fanOut = byName.get("batched")!.attributes
      expect([fanOut.get("fanout.outcome.Success"), fanOut.get("fanout.outcome.Failure")]).toEqual([1, 1])
      expect(fanOut.get("fanout.batching")).toBe(true)
    }))

  it.effect("a task span says TimedOut for the task's own timeout, Failure for a nested fan-out's timeout", () =>
    Effect.gen(function*() {
      const { ended, tracer } = capturing()
      const fiber = yield* FanOut.settle({
        slow: Effect.never,
        nested: FanOut.all([Effect.never], { timeout: "1 second" })
      }, { timeout: "5 seconds" }).pipe(Effect.withTracer(tracer), Effect.fork)
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("4 seconds")
      const outcomes = yield* Fiber.join(fiber)
      expect([outcomes.slow._tag, outcomes.nested._tag]).toEqual(["TimedOut", "Failure"])
      const byName = new Map(ended.map((s) => [s.name, s]))
      // The nested fan-out names its own task 0: that span is the nested task's, and it timed out.
      expect(byName.get("0")?.attributes.get("fanout.task.outcome")).toBe("TimedOut")
      expect(byName.get("nested")?.attributes.get("fanout.task.outcome")).toBe("Failure")
      expect(byName.get("slow")?.attributes.get("fanout.task.outcome")).toBe("TimedOut")
    }))

  it.effect("a nested fan-out's timeout at the same key as the task stays that task's Failure", () =>
    Effect.gen(function*() {
      const { ended, tracer } = capturing()
      const fiber = yield* FanOut.settle([FanOut.all([Effect.never], { timeout: "1 second" })], {
        timeout: "5 seconds",
        name: "outer"
      }).pipe(Effect.withTracer(tracer), Effect.fork)
      yield* TestClock.adjust("1 second")
      const [outcome] = yield* Fiber.join(fiber)
      assert(outcome._tag === "Failure")
      expect(outcome.error).toMatchObject({ _tag: "FanOutTimeoutError", reason: "Timeout", key: 0 })
      const outer = ended.find((s) => s.name === "0" && s.parent === "outer")
      expect(outer?.attributes.get("fanout.task.outcome")).toBe("Failure")
      // Fail fast with report: the outer task 0 failed with the inner fan-out's time-out of its task 0, a Failure.
      const fast = yield* FanOut.all([FanOut.all([Effect.never], { timeout: "1 second" })], {
        timeout: "5 seconds",
        report: true
      }).pipe(Effect.flip, Effect.fork)
      yield* TestClock.adjust("1 second")
      const reported = yield* Fiber.join(fast)
      expect(reported).toMatchObject({ reason: "Failure", key: 0 })
      expect(reported.error).toMatchObject({ _tag: "FanOutTimeoutError", reason: "Timeout", key: 0 })
    }))

  it.effect("a task cut off by the deadline says TimedOut on its span, as its outcome and the counts do", () =>
    Effect.gen(function*() {
      const { ended, tracer } = capturing()
      const fiber = yield* FanOut.settle({ slow: Effect.never, fast: Effect.succeed(1) }, {
        deadline: "1 second",
        name: "page"
      }).pipe(Effect.withTracer(tracer), Effect.fork)
      yield* TestClock.adjust("1 second")
      const outcomes = yield* Fiber.join(fiber)
      expect(outcomes.slow).toMatchObject({ _tag: "TimedOut", reason: "Deadline" })
      const byName = new Map(ended.map((s) => [s.name, s]))
      expect(byName.get("slow")?.attributes.get("fanout.task.outcome")).toBe("TimedOut")
      expect(byName.get("page")?.attributes.get("fanout.outcome.TimedOut")).toBe(1)
    }))

  it.effect("a task span counts the attempts of a retried task", () =>
    Effect.gen(function*() {
      const { ended, tracer } = capturing()
      const tries = yield* Ref.make(0)
      const flaky = Ref.updateAndGet(tries, (n) => n + 1).pipe(
        Effect.flatMap((n) => n < 3 ? Effect.fail("down") : Effect.succeed(n))
      )
      yield* FanOut.settle({ flaky }, { retry: Schedule.recurs(5) }).pipe(Effect.withTracer(tracer))
      const span = ended.find((s) => s.name === "flaky")
      expect(span?.attributes.get("fanout.task.attempts")).toBe(3)
      expect(span?.attributes.get("fanout.task.outcome")).toBe("Success")
    }))

  it.effect("a fan-out interrupted from outside still ends its span with the counts by outcome", () =>
    Effect.gen(function*() {
      const { ended, tracer } = capturing()
      const log = yield* makeLog
      yield* FanOut.stream([hang(log, "a"), Effect.succeed("b"), hang(log, "c")], { name: "progressive" }).pipe(
        Stream.take(1),
        Stream.runCollect,
        Effect.withTracer(tracer)
      )
      const streamed = ended.find((s) => s.name === "progressive")!.attributes
      expect([streamed.get("fanout.outcome.Success"), streamed.get("fanout.outcome.Interrupted")]).toEqual([1, 2])

      const started = yield* Deferred.make<void>()
      const fiber = yield* FanOut.settle([
        Effect.succeed(1),
        Deferred.succeed(started, undefined).pipe(Effect.zipRight(Effect.never))
      ], { name: "cancelled" }).pipe(Effect.withTracer(tracer), Effect.fork)
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      const cancelled = ended.find((s) => s.name === "cancelled")!.attributes
      expect([cancelled.get("fanout.outcome.Success"), cancelled.get("fanout.outcome.Interrupted")]).toEqual([1, 1])
    }))

  it.effect("an empty stream still opens its fan-out's span", () =>
    Effect.gen(function*() {
      const { ended, tracer } = capturing()
      const out = yield* Stream.runCollect(FanOut.stream([], { name: "nothing" })).pipe(Effect.withTracer(tracer))
      expect(Chunk.size(out)).toBe(0)
      expect(ended.find((s) => s.name === "nothing")?.attributes.get("fanout.tasks")).toBe(0)
    }))

  it.effect("without an exporting tracer, tasks still see the span around the fan-out as their parent", () =>
    Effect.gen(function*() {
      const parent = yield* FanOut.all([Effect.currentSpan.pipe(Effect.map((span) => span.name))]).pipe(
        Effect.withSpan("outer")
      )
      expect(parent).toEqual(["fanout.all"])
    }))
})

describe("metrics", () => {
  it.effect("counts outcomes by tag and records task durations, tagged with the fan-out's name", () =>
    Effect.gen(function*() {
      const name = `metrics-test-${Math.random()}`
      const fiber = yield* FanOut.settle([
        Effect.sleep("20 millis"),
        Effect.fail("x"),
        Effect.succeed(1)
      ], { name }).pipe(Effect.fork)
      yield* TestClock.adjust("20 millis")
      yield* Fiber.join(fiber)
      const tag = MetricLabel.make("fanout", name)
      const outcomes = FanOut.metrics.outcomes
      const success = yield* Metric.value(
        Metric.taggedWithLabels(outcomes, [tag, MetricLabel.make("outcome", "Success")])
      )
      const failure = yield* Metric.value(
        Metric.taggedWithLabels(outcomes, [tag, MetricLabel.make("outcome", "Failure")])
      )
      expect([success.count, failure.count]).toEqual([2, 1])
      const durations = yield* Metric.value(Metric.taggedWithLabels(FanOut.metrics.durations, [tag]))
      expect([durations.count, durations.max]).toEqual([3, 20])
    }))

  it.effect("tasks a stopped fan-out never started count as Interrupted and record no duration", () =>
    Effect.gen(function*() {
      const name = `metrics-unstarted-${Math.random()}`
      yield* Effect.exit(FanOut.all([Effect.fail("x"), Effect.succeed(1), Effect.succeed(2)], { concurrency: 1, name }))
      const tag = MetricLabel.make("fanout", name)
      const count = (outcome: string) =>
        Effect.map(
          Metric.value(Metric.taggedWithLabels(FanOut.metrics.outcomes, [tag, MetricLabel.make("outcome", outcome)])),
          (state) => state.count
        )
      expect([yield* count("Failure"), yield* count("Interrupted"), yield* count("Success")]).toEqual([1, 2, 0])
      const durations = yield* Metric.value(Metric.taggedWithLabels(FanOut.metrics.durations, [tag]))
      expect(durations.count).toBe(1)
    }))

  it.effect("quorum and a stream ended early record their outcomes too", () =>
    Effect.gen(function*() {
      const count = (name: string, outcome: string) =>
        Effect.map(
          Metric.value(Metric.taggedWithLabels(FanOut.metrics.outcomes, [
            MetricLabel.make("fanout", name),
            MetricLabel.make("outcome", outcome)
          ])),
          (state) => state.count
        )
      const quorum = `metrics-quorum-${Math.random()}`
      yield* FanOut.quorum([Effect.succeed(1), Effect.never], 1, { name: quorum })
      expect([yield* count(quorum, "Success"), yield* count(quorum, "Interrupted")]).toEqual([1, 1])
      const stream = `metrics-stream-${Math.random()}`
      yield* FanOut.stream([Effect.succeed(1), Effect.never], { name: stream }).pipe(Stream.take(1), Stream.runDrain)
      expect([yield* count(stream, "Success"), yield* count(stream, "Interrupted")]).toEqual([1, 1])
    }))

  it.effect("adds the caller's Effect.tagMetrics tags", () =>
    Effect.gen(function*() {
      const name = `metrics-tags-${Math.random()}`
      yield* FanOut.all([Effect.succeed(1)], { name }).pipe(Effect.tagMetrics("tenant", "acme"))
      const counted = yield* Metric.value(Metric.taggedWithLabels(FanOut.metrics.outcomes, [
        MetricLabel.make("tenant", "acme"),
        MetricLabel.make("fanout", name),
        MetricLabel.make("outcome", "Success")
      ]))
      expect(counted.count).toBe(1)
    }))

  it.effect("a fail-fast deadline counts the cut-off tasks as TimedOut, with report: true as without", () =>
    Effect.gen(function*() {
      for (const report of [false, true]) {
        const name = `metrics-deadline-${report}-${Math.random()}`
        const fiber = yield* FanOut.all([Effect.never, Effect.succeed(1)], { deadline: "1 second", report, name }).pipe(
          Effect.exit,
          Effect.fork
        )
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(fiber)
        const count = (outcome: string) =>
          Effect.map(
            Metric.value(Metric.taggedWithLabels(FanOut.metrics.outcomes, [
              MetricLabel.make("fanout", name),
              MetricLabel.make("outcome", outcome)
            ])),
            (state) => state.count
          )
        expect([yield* count("TimedOut"), yield* count("Interrupted"), yield* count("Success")]).toEqual([1, 0, 1])
      }
    }))
})
