/**
 * Hedging (src/internal/hedge.ts): `FanOut.hedge` and the `hedge` option of every combinator, under the TestClock.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Cause, Clock, Context, Deferred, Duration, Effect, Exit, Fiber, Ref, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { FanOut, Hedge } from "../src/index.js"
import { longestDelay } from "../src/internal/engine/alarms.js"
import { countingSleeps } from "./support.js"

/** An append-only log of what attempts did, read back with `get`. */
const makeLog = Effect.map(Ref.make<ReadonlyArray<string>>([]), (ref) => ({
  get: Ref.get(ref),
  add: (entry: string) => Ref.update(ref, (entries) => [...entries, entry])
}))
type Log = Effect.Success<typeof makeLog>

const count = (entries: ReadonlyArray<string>, entry: string) => entries.filter((e) => e === entry).length

const pending = <A, E>(fiber: Fiber.Fiber<A, E>) => Effect.sync(() => fiber.pollUnsafe() === undefined)

/** The typed errors of a failed exit, in order. */
const errors = <A, E>(exit: Exit.Exit<A, E>): ReadonlyArray<E> =>
  Exit.isFailure(exit) ? exit.cause.reasons.filter(Cause.isFailReason).map((reason) => reason.error) : []

/** The defects of a failed exit, in order. */
const defects = <A, E>(exit: Exit.Exit<A, E>): ReadonlyArray<unknown> =>
  Exit.isFailure(exit) ? exit.cause.reasons.filter(Cause.isDieReason).map((reason) => reason.defect) : []

/**
 * A task whose attempts log their start and hang until interrupted (logging that, and their finalizer, which must
 * run once), except those listed, which end as given after `ms`.
 */
const attemptsOf = (
  log: Log,
  ends: Record<number, { readonly ms: number; readonly result: Effect.Effect<string, string> }>
) => {
  let n = 0
  return Effect.suspend(() => {
    const k = ++n
    const end = ends[k]
    return log.add(`start ${k}`).pipe(
      Effect.andThen(end === undefined ? Effect.never : Effect.andThen(Effect.sleep(end.ms), end.result)),
      Effect.onInterrupt(() => log.add(`interrupted ${k}`)),
      Effect.ensuring(log.add(`finalized ${k}`))
    )
  })
}

describe("FanOut.hedge", () => {
  it.effect("starts a backup only after the delay; the first success wins, the loser is interrupted once", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const task = attemptsOf(log, { 2: { ms: 10, result: Effect.succeed("2 answered") } })
      const fiber = yield* Effect.forkChild(FanOut.hedge(task, { delay: "100 millis", max: 3 }))
      yield* TestClock.adjust("99 millis")
      expect(yield* log.get).toStrictEqual(["start 1"])
      yield* TestClock.adjust("1 millis")
      expect(yield* log.get).toStrictEqual(["start 1", "start 2"])
      yield* TestClock.adjust("10 millis")
      expect(yield* Fiber.join(fiber)).toBe("2 answered")
      const entries = yield* log.get
      expect(count(entries, "interrupted 1")).toBe(1)
      expect(count(entries, "finalized 1")).toBe(1)
      expect(count(entries, "finalized 2")).toBe(1)
      expect(entries).not.toContain("start 3")
      // Nothing starts later: the winner's answer cleared the delay.
      yield* TestClock.adjust("1 hour")
      expect(yield* log.get).toStrictEqual(entries)
    }))

  it.effect("each backup starts a delay after the attempt before it, a failure's backup at once", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const task = attemptsOf(log, {
        2: { ms: 30, result: Effect.fail("2 failed") },
        4: { ms: 50, result: Effect.succeed("4 answered") }
      })
      const fiber = yield* Effect.forkChild(FanOut.hedge(task, { delay: "100 millis", max: 4 }))
      yield* TestClock.adjust("100 millis")
      expect(yield* log.get).toStrictEqual(["start 1", "start 2"])
      // The second fails at 130 ms: the third starts then, not at 200 ms.
      yield* TestClock.adjust("30 millis")
      expect(yield* log.get).toStrictEqual(["start 1", "start 2", "finalized 2", "start 3"])
      yield* TestClock.adjust("99 millis")
      expect((yield* log.get).length).toBe(4)
      // 100 ms after the third started: the fourth, which answers 50 ms later; the others are interrupted.
      yield* TestClock.adjust("1 millis")
      expect((yield* log.get).at(-1)).toBe("start 4")
      yield* TestClock.adjust("50 millis")
      expect(yield* Fiber.join(fiber)).toBe("4 answered")
      const entries = yield* log.get
      expect(entries.filter((e) => e.startsWith("interrupted")).sort()).toStrictEqual([
        "interrupted 1",
        "interrupted 3"
      ])
      expect(count(entries, "finalized 1")).toBe(1)
      expect(count(entries, "finalized 3")).toBe(1)
    }))

  it.effect("a backup's delay counts from the latest attempt's start, even when an earlier attempt failed", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const task = attemptsOf(log, { 1: { ms: 150, result: Effect.fail("1 failed") } })
      const fiber = yield* Effect.forkChild(FanOut.hedge(task, { delay: "100 millis", max: 4 }))
      // 2 starts at 100 ms; 1 fails at 150 ms, so 3 starts then; 2's own delay ends at 200 ms, but 3 is the latest.
      yield* TestClock.adjust("249 millis")
      expect((yield* log.get).filter((e) => e.startsWith("start"))).toStrictEqual(["start 1", "start 2", "start 3"])
      yield* TestClock.adjust("1 millis")
      expect((yield* log.get).filter((e) => e.startsWith("start"))).toStrictEqual([
        "start 1",
        "start 2",
        "start 3",
        "start 4"
      ])
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("fails only when every attempt has failed, with every cause, the first attempt's first", () =>
    Effect.gen(function*() {
      const attempt = yield* Ref.make(0)
      const task = Ref.updateAndGet(attempt, (n) => n + 1).pipe(
        Effect.flatMap((n) => Effect.andThen(Effect.sleep(`${40 - n * 10} millis`), Effect.fail(`failed ${n}`)))
      )
      // Attempts start at 0, 10 and 20 ms and fail at 30, 30 and 30 ms.
      const fiber = yield* Effect.forkChild(Effect.exit(FanOut.hedge(task, { delay: "10 millis", max: 3 })))
      yield* TestClock.adjust("29 millis")
      expect(yield* pending(fiber)).toBe(true)
      yield* TestClock.adjust("1 millis")
      const exit = yield* Fiber.join(fiber)
      expect(yield* Ref.get(attempt)).toBe(3)
      expect(errors(exit)).toStrictEqual(["failed 1", "failed 2", "failed 3"])
    }))

  it.effect("a failure starts the next attempt at once: attempts that fail without waiting need no clock", () =>
    Effect.gen(function*() {
      const attempt = yield* Ref.make(0)
      const task = Ref.updateAndGet(attempt, (n) => n + 1).pipe(Effect.flatMap((n) => Effect.fail(`failed ${n}`)))
      const exit = yield* Effect.exit(FanOut.hedge(task, { delay: "1 hour", max: 3 }))
      expect(yield* Ref.get(attempt)).toBe(3)
      expect(errors(exit)).toStrictEqual(["failed 1", "failed 2", "failed 3"])
      // Equal failures of different attempts are all kept (`Cause.combine` would merge them into one).
      const same = yield* Effect.exit(FanOut.hedge(Effect.fail("no"), { delay: "1 hour", max: 4 }))
      expect(errors(same)).toStrictEqual(["no", "no", "no", "no"])
    }))

  it.effect("a failure then a success answers with the success", () =>
    Effect.gen(function*() {
      const attempt = yield* Ref.make(0)
      const task = Ref.updateAndGet(attempt, (n) => n + 1).pipe(
        Effect.flatMap((n) => n === 1 ? Effect.fail("first failed") : Effect.succeed(`answer ${n}`))
      )
      expect(yield* FanOut.hedge(task, { delay: "1 hour", max: 3 })).toBe("answer 2")
      expect(yield* Ref.get(attempt)).toBe(2)
    }))

  it.effect("never runs more than max attempts; max 1 is the task alone", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const fiber = yield* Effect.forkChild(FanOut.hedge(attemptsOf(log, {}), { delay: "10 millis", max: 3 }))
      yield* TestClock.adjust("1 hour")
      expect(yield* log.get).toStrictEqual(["start 1", "start 2", "start 3"])
      yield* Fiber.interrupt(fiber)

      const alone = yield* makeLog
      const one = yield* Effect.forkChild(FanOut.hedge(attemptsOf(alone, {}), { delay: "10 millis", max: 1 }))
      yield* TestClock.adjust("1 hour")
      expect(yield* alone.get).toStrictEqual(["start 1"])
      yield* Fiber.interrupt(one)

      // The default is 2.
      const two = yield* makeLog
      const byDefault = yield* Effect.forkChild(FanOut.hedge(attemptsOf(two, {}), { delay: "10 millis" }))
      yield* TestClock.adjust("1 hour")
      expect(yield* two.get).toStrictEqual(["start 1", "start 2"])
      yield* Fiber.interrupt(byDefault)
    }))

  it.effect("an infinite delay, or one past 2^31 - 1 ms, never starts a backup; a failure still does", () =>
    Effect.gen(function*() {
      for (const delay of [Duration.infinity, Duration.millis(longestDelay + 1)]) {
        const log = yield* makeLog
        const fiber = yield* Effect.forkChild(FanOut.hedge(attemptsOf(log, {}), { delay, max: 3 }))
        yield* TestClock.adjust("30 days")
        expect(yield* log.get).toStrictEqual(["start 1"])
        yield* Fiber.interrupt(fiber)
        expect(yield* log.get).toStrictEqual(["start 1", "interrupted 1", "finalized 1"])
      }
      const log = yield* makeLog
      const task = attemptsOf(log, {
        1: { ms: 10, result: Effect.fail("1 failed") },
        2: { ms: 10, result: Effect.succeed("2 answered") }
      })
      const fiber = yield* Effect.forkChild(FanOut.hedge(task, { delay: Duration.infinity, max: 3 }))
      yield* TestClock.adjust("20 millis")
      expect(yield* Fiber.join(fiber)).toBe("2 answered")
    }))

  it.effect("a zero delay starts every attempt at once", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const fiber = yield* Effect.forkChild(FanOut.hedge(attemptsOf(log, {}), { delay: 0, max: 3 }))
      yield* TestClock.adjust("0 millis")
      expect(yield* log.get).toStrictEqual(["start 1", "start 2", "start 3"])
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("interrupting the caller interrupts every attempt and waits for their finalizers", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      let n = 0
      const task = Effect.suspend(() => {
        const k = ++n
        return log.add(`start ${k}`).pipe(
          Effect.andThen(Effect.never),
          // A finalizer that takes time: the caller's interruption must wait for it.
          Effect.ensuring(Effect.andThen(Effect.sleep("10 millis"), log.add(`finalized ${k}`)))
        )
      })
      const fiber = yield* Effect.forkChild(
        FanOut.hedge(task, { delay: "100 millis", max: 3 }).pipe(Effect.onExit(() => log.add("hedge ended")))
      )
      yield* TestClock.adjust("200 millis")
      const interrupter = yield* Effect.forkChild(Fiber.interrupt(fiber))
      yield* TestClock.adjust("10 millis")
      yield* Fiber.join(interrupter)
      const entries = yield* log.get
      expect(entries.slice(0, 3)).toStrictEqual(["start 1", "start 2", "start 3"])
      expect([...entries.slice(3, 6)].sort()).toStrictEqual(["finalized 1", "finalized 2", "finalized 3"])
      expect(entries.slice(6)).toStrictEqual(["hedge ended"])
      // No backup starts after the interruption.
      yield* TestClock.adjust("1 hour")
      expect((yield* log.get).length).toBe(7)
    }))

  it.effect("returns only once the losing attempt's finalizer has finished, however slow", () =>
    Effect.gen(function*() {
      const attempt = yield* Ref.make(0)
      const release = yield* Deferred.make<void>()
      const finalized = yield* Ref.make(false)
      const slowCleanup = Effect.andThen(Deferred.await(release), Ref.set(finalized, true))
      const task = Ref.updateAndGet(attempt, (n) => n + 1).pipe(
        Effect.flatMap((n) => n === 1 ? Effect.ensuring(Effect.never, slowCleanup) : Effect.succeed(n))
      )
      const fiber = yield* Effect.forkChild(FanOut.hedge(task, { delay: "10 millis", max: 2 }))
      yield* TestClock.adjust("10 millis")
      // The second attempt has won; the first is being interrupted and its cleanup waits on the latch.
      expect(yield* Ref.get(attempt)).toBe(2)
      expect(yield* pending(fiber)).toBe(true)
      yield* Deferred.succeed(release, undefined)
      expect(yield* Fiber.join(fiber)).toBe(2)
      expect(yield* Ref.get(finalized)).toBe(true)
    }))

  it.effect("a caller that cannot be interrupted gets the first attempt's answer without sitting out the delay", () =>
    Effect.gen(function*() {
      const task = Effect.as(Effect.sleep("10 millis"), "answer")
      const alone = yield* Effect.forkChild(Effect.uninterruptible(FanOut.hedge(task, { delay: "1 hour" })))
      const inFanOut = yield* Effect.forkChild(
        Effect.uninterruptible(FanOut.settle({ search: task }, { hedge: { delay: "1 hour" } }))
      )
      yield* TestClock.adjust("10 millis")
      expect(alone.pollUnsafe()).toStrictEqual(Exit.succeed("answer"))
      const settled = inFanOut.pollUnsafe()
      assert(settled !== undefined && Exit.isSuccess(settled))
      expect(settled.value.search).toMatchObject({ _tag: "Success", value: "answer", attempts: 1 })
    }))

  it.effect("a hedged call that answers in time leaves no timer behind", () =>
    Effect.gen(function*() {
      const { clock, sleeping } = yield* countingSleeps
      let sleepingAtReturn = -1
      const fiber = yield* Effect.forkChild(
        FanOut.hedge(Effect.as(Effect.sleep("10 millis"), 1), { delay: "1 hour" }).pipe(
          Effect.tap(() => Effect.sync(() => sleepingAtReturn = sleeping())),
          Effect.provideService(Clock.Clock, clock)
        )
      )
      yield* TestClock.adjust("5 millis")
      // The attempt's sleep and the alarms' timer.
      expect(sleeping()).toBe(2)
      yield* TestClock.adjust("5 millis")
      expect(yield* Fiber.join(fiber)).toBe(1)
      // Read as the hedge returned: its timer had ended already, not just been told to.
      expect(sleepingAtReturn).toBe(0)
    }))

  it.effect("attempts see the caller's services and references; what one changes stays inside it", () =>
    Effect.gen(function*() {
      const Where = Context.Reference<string>("test/hedge/Where", { defaultValue: () => "default" })
      let n = 0
      const task = Effect.suspend(() =>
        ++n === 1
          ? Effect.andThen(Effect.sleep("10 millis"), Effect.service(Where))
          : Effect.service(Where).pipe(Effect.provideService(Where, "changed by attempt 2"), Effect.delay("1 hour"))
      )
      const fiber = yield* Effect.forkChild(
        FanOut.hedge(task, { delay: "5 millis" }).pipe(Effect.provideService(Where, "around the hedge"))
      )
      yield* TestClock.adjust("10 millis")
      expect(yield* Fiber.join(fiber)).toBe("around the hedge")
      expect(yield* Where).toBe("default")
    }))

  it.effect("a typed failure wins over a crash: attempts that only died are left out, so the error is recoverable", () =>
    Effect.gen(function*() {
      let n = 0
      const task = Effect.suspend(() =>
        ++n === 1
          ? Effect.andThen(Effect.sleep("20 millis"), Effect.fail("attempt 1 failed"))
          : Effect.andThen(Effect.sleep("5 millis"), Effect.die(new Error("attempt 2 crashed")))
      )
      const fiber = yield* Effect.forkChild(Effect.exit(FanOut.hedge(task, { delay: "10 millis", max: 2 })))
      yield* TestClock.adjust("20 millis")
      const exit = yield* Fiber.join(fiber)
      expect(errors(exit)).toStrictEqual(["attempt 1 failed"])
      expect(defects(exit)).toStrictEqual([])
      // Effect 4 reads a cause with a `Die` in it as a defect: `Effect.catch` recovers only because it holds none.
      const recovered = yield* Effect.catch(exit, (error) => Effect.succeed(`recovered from ${error}`))
      expect(recovered).toBe("recovered from attempt 1 failed")

      // When every attempt only died, every crash is kept.
      const crashes = yield* Effect.exit(FanOut.hedge(Effect.die(new Error("crashed")), { delay: "1 hour", max: 2 }))
      expect(defects(crashes).map((d) => (d as Error).message)).toStrictEqual(["crashed", "crashed"])
    }))

  it.effect("an attempt that failed and whose finalizer crashed stays a defect, as it is without hedging", () =>
    Effect.gen(function*() {
      const both = Effect.ensuring(Effect.fail("e"), Effect.die(new Error("finalizer crashed")))
      const plain = yield* Effect.exit(both)
      const hedged = yield* Effect.exit(FanOut.hedge(both, { delay: "50 millis", max: 1 }))
      expect(hedged).toStrictEqual(plain)
      const [outcome] = yield* FanOut.settle([both], { hedge: { delay: "50 millis", max: 1 } })
      expect(outcome).toMatchObject({ _tag: "Defect", attempts: 1 })
    }))

  it.effect("data-first and data-last forms hedge alike", () =>
    Effect.gen(function*() {
      const forms = [
        (task: Effect.Effect<string, string>) => FanOut.hedge(task, { delay: "100 millis", max: 3 }),
        (task: Effect.Effect<string, string>) => task.pipe(FanOut.hedge({ delay: "100 millis", max: 3 }))
      ]
      for (const form of forms) {
        const log = yield* makeLog
        const fiber = yield* Effect.forkChild(
          form(attemptsOf(log, { 2: { ms: 10, result: Effect.succeed("2 answered") } }))
        )
        yield* TestClock.adjust("99 millis")
        expect(yield* log.get).toStrictEqual(["start 1"])
        yield* TestClock.adjust("11 millis")
        expect(yield* Fiber.join(fiber)).toBe("2 answered")
        expect(count(yield* log.get, "interrupted 1")).toBe(1)
      }
    }))

  it.effect("invalid options and a task that is not an Effect die with an InvalidOptionError before anything runs", () =>
    Effect.gen(function*() {
      const attempts = yield* Ref.make(0)
      const task = Ref.update(attempts, (n) => n + 1)
      const cases: ReadonlyArray<readonly [unknown, string]> = [
        [{ delay: "1 millis", maxx: 3 }, "hedge.maxx"],
        [{ delay: "1 millis", max: 0 }, "hedge.max"],
        [{ delay: "1 millis", max: 101 }, "hedge.max"],
        [{ delay: "1 millis", max: 1.5 }, "hedge.max"],
        [{ delay: -1 }, "hedge.delay"],
        [{ delay: "soon" }, "hedge.delay"],
        [{ max: 2 }, "hedge.delay"],
        [undefined, "hedge"],
        ["50 millis", "hedge"]
      ]
      for (const [options, option] of cases) {
        const raw = options as FanOut.HedgeOptions
        for (const run of [FanOut.hedge(task, raw), task.pipe(FanOut.hedge(raw))]) {
          const exit = yield* Effect.exit(run)
          assert(Exit.isFailure(exit))
          expect(defects(exit)).toMatchObject([{ _tag: "InvalidOptionError", option }])
        }
      }
      const misspelt = { delay: "1 millis", maxx: 3 } as FanOut.HedgeOptions
      const fanOuts: ReadonlyArray<Effect.Effect<unknown>> = [
        FanOut.all([task], { hedge: misspelt }),
        FanOut.settle([task], { hedge: misspelt })
      ]
      for (const run of fanOuts) {
        const exit = yield* Effect.exit(run)
        expect(defects(exit)).toMatchObject([{ _tag: "InvalidOptionError", option: "hedge.maxx" }])
      }
      const exit = yield* Effect.exit(
        FanOut.hedge(Promise.resolve(1) as unknown as Effect.Effect<number>, { delay: "1 millis" })
      )
      expect(defects(exit)).toMatchObject([{
        _tag: "InvalidOptionError",
        option: "task",
        message: expect.stringContaining("hedge needs an Effect, got a promise")
      }])
      expect(yield* Ref.get(attempts)).toBe(0)
      // The bound, 100 attempts, is allowed.
      expect(yield* FanOut.hedge(Effect.succeed("ok"), { delay: "1 millis", max: 100 })).toBe("ok")
    }))
})

describe("the hedge option", () => {
  it.effect("a delay per task, by its key: each task's backup starts after its own delay (TestClock)", () =>
    Effect.gen(function*() {
      // Each task's first attempt never answers; its backup answers at once.
      const task = (name: string) => {
        let n = 0
        return Effect.suspend(() => ++n === 1 ? Effect.never : Effect.succeed(name))
      }
      const adaptive = Hedge.adaptive({ percentile: 0.5, window: 10, min: "30 millis", max: "30 millis" })
      const delays: Record<string, FanOut.HedgeDelay> = { search: "10 millis", ads: "100 millis", recs: adaptive }
      const seen: Array<[PropertyKey, number]> = []
      const fiber = yield* Effect.forkChild(
        FanOut.settle({ search: task("search"), ads: task("ads"), recs: task("recs") }, {
          hedge: {
            delay: (key, index) => {
              seen.push([key, index])
              return delays[key as string]!
            }
          }
        })
      )
      yield* Effect.yieldNow
      yield* TestClock.adjust("10 millis")
      expect(yield* pending(fiber)).toBe(true)
      yield* TestClock.adjust("90 millis")
      const out = yield* Fiber.join(fiber)
      expect(out.search).toMatchObject({ _tag: "Success", value: "search", attempts: 2, durationMillis: 10 })
      expect(out.recs).toMatchObject({ _tag: "Success", value: "recs", attempts: 2, durationMillis: 30 })
      expect(out.ads).toMatchObject({ _tag: "Success", value: "ads", attempts: 2, durationMillis: 100 })
      // Called once per task, before any starts.
      expect(seen).toStrictEqual([["search", 0], ["ads", 1], ["recs", 2]])
    }))

  it.effect("a delay function giving no delay fails the fan-out with an InvalidOptionError naming the task", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(
        FanOut.settle({ a: Effect.succeed(1), b: Effect.succeed(2) }, {
          hedge: { delay: (key) => (key === "b" ? "soon" : "1 millis") as FanOut.HedgeDelay }
        })
      )
      const error = Exit.isFailure(exit) ? exit.cause.reasons.find(Cause.isDieReason)?.defect : undefined
      expect(error).toBeInstanceOf(FanOut.InvalidOptionError)
      expect((error as FanOut.InvalidOptionError).option).toBe(`hedge.delay (task "b")`)
      // FanOut.hedge hedges one effect: a function of a task's key has no task to be given.
      const alone = yield* Effect.exit(FanOut.hedge(Effect.succeed(1), { delay: (() => "1 millis") as any }))
      const refused = Exit.isFailure(alone) ? alone.cause.reasons.find(Cause.isDieReason)?.defect : undefined
      expect((refused as FanOut.InvalidOptionError).option).toBe("hedge.delay")
    }))

  it.effect("the attempts field of settle outcomes counts the hedges", () =>
    Effect.gen(function*() {
      const attempt = yield* Ref.make(0)
      const task = Ref.updateAndGet(attempt, (n) => n + 1).pipe(
        Effect.flatMap((n) => n === 1 ? Effect.never : Effect.succeed(n))
      )
      const fiber = yield* Effect.forkChild(
        FanOut.settle({ search: task, quick: Effect.succeed(0) }, { hedge: { delay: "50 millis" } })
      )
      yield* TestClock.adjust("50 millis")
      const { quick, search } = yield* Fiber.join(fiber)
      expect(search).toMatchObject({ _tag: "Success", value: 2, attempts: 2 })
      expect(quick).toMatchObject({ _tag: "Success", value: 0, attempts: 1 })

      const failing = yield* FanOut.settle([Effect.fail("no")], { hedge: { delay: "1 hour", max: 3 } })
      expect(failing[0]).toMatchObject({ _tag: "Failure", error: "no", attempts: 3 })
    }))

  it.effect("fail fast: a task fails only when every attempt has, with all their failures", () =>
    Effect.gen(function*() {
      let n = 0
      const task = Effect.suspend(() => Effect.fail(`failed ${++n}`))
      const exit = yield* Effect.exit(FanOut.all([task], { hedge: { delay: "1 hour", max: 3 } }))
      expect(errors(exit)).toStrictEqual(["failed 1", "failed 2", "failed 3"])
    }))

  it.effect("under concurrency 1, each task's backup counts from that task's own start", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const task = (name: string) => {
        let n = 0
        return Effect.suspend(() => {
          const k = ++n
          return Effect.andThen(
            log.add(`${name} ${k}`),
            k === 1 ? Effect.never : Effect.as(Effect.sleep("10 millis"), `${name} answered`)
          )
        })
      }
      const fiber = yield* Effect.forkChild(
        FanOut.all([task("a"), task("b")], { concurrency: 1, hedge: { delay: "100 millis" } })
      )
      // a: backup at 100 ms, answer at 110 ms; b starts at 110 ms, its backup at 210 ms, its answer at 220 ms.
      yield* TestClock.adjust("209 millis")
      expect(yield* log.get).toStrictEqual(["a 1", "a 2", "b 1"])
      yield* TestClock.adjust("1 millis")
      expect(yield* log.get).toStrictEqual(["a 1", "a 2", "b 1", "b 2"])
      yield* TestClock.adjust("10 millis")
      expect(yield* Fiber.join(fiber)).toStrictEqual(["a answered", "b answered"])
    }))

  it.effect("interrupting the caller interrupts every attempt and waits for them", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const fiber = yield* Effect.forkChild(
        FanOut.settle([attemptsOf(log, {})], { hedge: { delay: "100 millis", max: 3 } }).pipe(
          Effect.onExit(() => log.add("fan-out ended"))
        )
      )
      yield* TestClock.adjust("200 millis")
      yield* Fiber.interrupt(fiber)
      const entries = yield* log.get
      expect(entries.slice(0, 3)).toStrictEqual(["start 1", "start 2", "start 3"])
      for (const k of [1, 2, 3]) {
        expect(count(entries, `interrupted ${k}`)).toBe(1)
        expect(count(entries, `finalized ${k}`)).toBe(1)
      }
      expect(entries.at(-1)).toBe("fan-out ended")
    }))

  it.effect("the deadline stops a hedged task: every attempt is interrupted and the task is TimedOut", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const fiber = yield* Effect.forkChild(
        FanOut.settle([attemptsOf(log, {})], { hedge: { delay: "100 millis", max: 3 }, deadline: "150 millis" })
      )
      yield* TestClock.adjust("150 millis")
      const [outcome] = yield* Fiber.join(fiber)
      expect(outcome).toMatchObject({ _tag: "TimedOut", reason: "Deadline", attempts: 2 })
      const entries = yield* log.get
      expect(entries.filter((e) => e.startsWith("finalized")).sort()).toStrictEqual(["finalized 1", "finalized 2"])
      yield* TestClock.adjust("1 hour")
      expect(yield* log.get).not.toContain("start 3")
    }))

  it.effect("with a timeout, each attempt has its own; a task whose every attempt ran out is TimedOut", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const fiber = yield* Effect.forkChild(
        FanOut.settle([attemptsOf(log, {})], { hedge: { delay: "100 millis", max: 2 }, timeout: "150 millis" })
      )
      // 1 runs 0-150 ms, 2 runs 100-250 ms: each one's own limit, not the task's.
      yield* TestClock.adjust("150 millis")
      expect(count(yield* log.get, "interrupted 1")).toBe(1)
      expect(yield* pending(fiber)).toBe(true)
      yield* TestClock.adjust("100 millis")
      const [outcome] = yield* Fiber.join(fiber)
      expect(outcome).toMatchObject({ _tag: "TimedOut", reason: "Timeout", attempts: 2, durationMillis: 250 })
    }))

  it.effect("with retry, a round where one attempt failed and another died is a typed failure, and is retried", () =>
    Effect.gen(function*() {
      let n = 0
      // Odd attempts fail after 100 ms; even ones (the backups, started at 50 ms) die after 10 ms.
      const task = Effect.suspend(() => {
        const k = ++n
        return k % 2 === 1
          ? Effect.andThen(Effect.sleep("100 millis"), Effect.fail(`attempt ${k} failed`))
          : Effect.andThen(Effect.sleep("10 millis"), Effect.die(new Error(`attempt ${k} crashed`)))
      })
      const fiber = yield* Effect.forkChild(
        FanOut.settle([task], { hedge: { delay: "50 millis", max: 2 }, retry: Schedule.recurs(1) })
      )
      yield* TestClock.adjust("200 millis")
      const [outcome] = yield* Fiber.join(fiber)
      expect(outcome).toMatchObject({ _tag: "Failure", error: "attempt 3 failed", attempts: 4 })
    }))

  it.effect("the most attempts allowed, failing as they start, run one after another and all count", () =>
    Effect.gen(function*() {
      const [outcome] = yield* FanOut.settle([Effect.fail("no")], { hedge: { delay: "1 second", max: 100 } })
      expect(outcome).toMatchObject({ _tag: "Failure", error: "no", attempts: 100 })
      const exit = yield* Effect.exit(FanOut.all([Effect.fail("no")], { hedge: { delay: "1 second", max: 100 } }))
      expect(errors(exit).length).toBe(100)
    }))
})
