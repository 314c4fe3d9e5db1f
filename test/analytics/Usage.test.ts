/**
 * The fan-out service against `Layer.succeed` doubles of the twelve clients: no network, `TestClock` for
 * deadlines, latches for ordering.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Deferred, Duration, Effect, Exit, Fiber, Layer, Ref } from "effect"
import { TestClock } from "effect/testing"
import type { CustomerId } from "../../examples/analytics/Domain.js"
import type { Reason } from "../../examples/analytics/FeatureClient.js"
import type { Feature } from "../../examples/analytics/Features.js"
import { features } from "../../examples/analytics/Features.js"
import { Usage } from "../../examples/analytics/Usage.js"
import { type Behaviour, doubles, usageOf } from "./doubles.js"
import { makeCaptureLogger } from "./support.js"

const customer = "c-42" as CustomerId
const deadline = Duration.seconds(2)

/**
 * Without retries unless the test sets `FEATURE_RETRIES` (partial; strict has `STRICT_RETRIES`, 0 by default): a retry
 * sleeps, and only the retry tests drive the clock.
 */
const withDoubles = (behaviours: Parameters<typeof doubles>[0], config: Record<string, string> = {}) =>
  Usage.layer.pipe(
    Layer.provide(doubles(behaviours)),
    Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: { FEATURE_RETRIES: "0", ...config } })))
  )

/** A client that fails with `reason` on its first `failures` calls, then answers; `calls()` counts its calls. */
const flaky = (reason: Reason, failures: number) => {
  let calls = 0
  const behaviour: Behaviour = (customerId, fail) =>
    Effect.suspend(() => ++calls <= failures ? fail(reason) : Effect.succeed(usageOf("payments", customerId)))
  return { behaviour, calls: () => calls }
}

/** Runs the request in a fiber and moves the clock past every retry delay (20 + 40 ms), well before the deadline. */
const withRetriesElapsed = <A, E, R>(request: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(request)
    yield* TestClock.adjust("100 millis")
    return yield* Fiber.join(fiber)
  })

const crash: Behaviour = () =>
  Effect.sync(() => {
    throw new Error("boom: bug in the listings normaliser")
  })

/**
 * Every client waits forever, counting its interruptions, except `failing`, which fails as `Unavailable` only once
 * all the others have started: when it fails, eleven calls are in flight. `interrupted` counts them once stopped.
 */
const oneFailsWhileOthersRun = (failing: Feature) =>
  Effect.gen(function*() {
    const others = features.length - 1
    const started = yield* Ref.make(0)
    const interrupted = yield* Ref.make(0)
    const allStarted = yield* Deferred.make<void>()
    const waitForever: Behaviour = () =>
      Ref.updateAndGet(started, (n) => n + 1).pipe(
        Effect.tap((n) => n === others ? Deferred.succeed(allStarted, undefined) : Effect.void),
        Effect.andThen(Effect.never),
        Effect.onInterrupt(() => Ref.update(interrupted, (n) => n + 1))
      )
    const behaviours: Record<string, Behaviour> = Object.fromEntries(
      features.map((feature) => [feature, waitForever])
    )
    behaviours[failing] = (_, fail) => Effect.andThen(Deferred.await(allStarted), fail("Unavailable"))
    return { behaviours, others, interrupted: Ref.get(interrupted) }
  })

describe("Usage", () => {
  describe("partial", () => {
    it.effect("answers twelve ok panels in feature order when every client succeeds", () =>
      Effect.gen(function*() {
        const usage = yield* Usage
        const response = yield* usage.forCustomer(customer, { mode: "partial", deadline })
        expect(response.complete).toBe(true)
        expect(response.panels.map((panel) => panel.feature)).toEqual([...features])
        expect(response.panels.every((panel) => panel.status === "ok")).toBe(true)
      }).pipe(Effect.provide(withDoubles({}))))

    it.effect("turns each client's typed error reason into a public reason; its own time-out is timed_out", () =>
      Effect.gen(function*() {
        const usage = yield* Usage
        const response = yield* usage.forCustomer(customer, { mode: "partial", deadline })
        const missing = response.panels.filter((panel) => panel.status !== "ok")
        expect(missing.map((panel) => [panel.feature, panel.status, "reason" in panel && panel.reason])).toEqual([
          ["offers", "failed", "unavailable"],
          ["documents", "failed", "bad_response"],
          ["payments", "timed_out", "timeout"]
        ])
        expect(response.complete).toBe(false)
      }).pipe(Effect.provide(withDoubles({
        offers: (_, fail) => fail("Unavailable"),
        documents: (_, fail) => fail("BadResponse"),
        payments: (_, fail) => fail("Timeout")
      }))))

    it.effect("keeps every other panel when a client crashes, and logs the stack instead of returning it", () => {
      const logs = makeCaptureLogger()
      return Effect.gen(function*() {
        const usage = yield* Usage
        const response = yield* usage.forCustomer(customer, { mode: "partial", deadline })
        expect(response.panels[0]).toEqual({
          status: "failed",
          feature: "listings",
          reason: "internal_error",
          durationMs: 0,
          attempts: 1
        })
        expect(response.panels.filter((panel) => panel.status === "ok")).toHaveLength(11)
        expect(JSON.stringify(response)).not.toMatch(/boom/)
        const logged = logs.entries.find((entry) => entry.level === "ERROR" && entry.annotations.feature === "listings")
        expect(String(logged?.annotations.stack)).toMatch(/boom: bug in the listings normaliser/)
        expect(logged?.cause).toMatch(/boom/)
      }).pipe(Effect.provide(withDoubles({ listings: crash })), Effect.provide(logs.layer))
    })

    it.effect("answers at the deadline with the calls that never answered timed_out", () =>
      Effect.gen(function*() {
        const usage = yield* Usage
        const fiber = yield* Effect.forkChild(usage.forCustomer(customer, { mode: "partial", deadline }))
        yield* TestClock.adjust(deadline)
        const response = yield* Fiber.join(fiber)
        expect(response.panels.filter((panel) => panel.status === "timed_out").map((panel) => panel.feature)).toEqual([
          "tours",
          "calendar"
        ])
        expect(response.panels.find((panel) => panel.feature === "calendar")).toEqual({
          status: "timed_out",
          feature: "calendar",
          reason: "deadline",
          durationMs: 2000,
          attempts: 1
        })
        expect(response.complete).toBe(false)
      }).pipe(Effect.provide(withDoubles({ tours: () => Effect.never, calendar: () => Effect.never }))))

    it.effect("fails with FeatureFailed when a required feature fails", () =>
      Effect.gen(function*() {
        const usage = yield* Usage
        const exit = yield* Effect.exit(usage.forCustomer(customer, { mode: "partial", deadline }))
        expect(Exit.isFailure(exit)).toBe(true)
        const reason = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
        const error = reason?._tag === "Fail" ? reason.error : undefined
        expect(error).toMatchObject({ _tag: "FeatureFailed", feature: "payments", reason: "unavailable" })
      }).pipe(Effect.provide(withDoubles({ payments: (_, fail) => fail("Unavailable") }, {
        REQUIRED_FEATURES: "listings,payments"
      }))))

    it.effect("cancels every other call at once when a required feature fails", () =>
      Effect.gen(function*() {
        const { behaviours, interrupted, others } = yield* oneFailsWhileOthersRun("payments")
        // No clock adjustment: were the request to wait for the deadline, this test would never end.
        const error = yield* Usage.pipe(
          Effect.flatMap((usage) => Effect.flip(usage.forCustomer(customer, { mode: "partial", deadline }))),
          Effect.provide(withDoubles(behaviours, { REQUIRED_FEATURES: "payments" }))
        )
        expect(error).toMatchObject({ _tag: "FeatureFailed", feature: "payments", reason: "unavailable" })
        expect(yield* interrupted).toBe(others)
      }))

    it.effect("names a required feature that crashed, with internal_error and no details", () =>
      Effect.gen(function*() {
        const usage = yield* Usage
        const error = yield* Effect.flip(usage.forCustomer(customer, { mode: "partial", deadline }))
        expect(error).toMatchObject({ _tag: "FeatureFailed", feature: "listings", reason: "internal_error" })
        expect(JSON.stringify(error)).not.toMatch(/boom/)
      }).pipe(
        Effect.provide(withDoubles({ listings: crash }, { REQUIRED_FEATURES: "payments,listings" })),
        Effect.provide(makeCaptureLogger().layer)
      ))

    it.effect("logs the stack of a crashed required feature under its name", () => {
      const logs = makeCaptureLogger()
      return Effect.gen(function*() {
        const usage = yield* Usage
        yield* Effect.flip(usage.forCustomer(customer, { mode: "partial", deadline }))
        const logged = logs.entries.find((entry) => entry.level === "ERROR" && entry.annotations.feature === "listings")
        expect(String(logged?.annotations.stack)).toMatch(/boom: bug in the listings normaliser/)
      }).pipe(
        Effect.provide(withDoubles({ listings: crash }, { REQUIRED_FEATURES: "payments,listings" })),
        Effect.provide(logs.layer)
      )
    })

    it.effect("names only the required features still missing at the deadline", () =>
      Effect.gen(function*() {
        const usage = yield* Usage
        const fiber = yield* Effect.forkChild(Effect.flip(usage.forCustomer(customer, { mode: "partial", deadline })))
        yield* TestClock.adjust(deadline)
        const error = yield* Fiber.join(fiber)
        expect(error).toMatchObject({ _tag: "DeadlineExceeded", pending: ["calendar"], deadlineMs: 2000 })
      }).pipe(Effect.provide(withDoubles({ tours: () => Effect.never, calendar: () => Effect.never }, {
        REQUIRED_FEATURES: "listings,calendar"
      }))))

    it.effect("fails with DeadlineExceeded when a required feature times out", () =>
      Effect.gen(function*() {
        const usage = yield* Usage
        const fiber = yield* Effect.forkChild(Effect.flip(usage.forCustomer(customer, { mode: "partial", deadline })))
        yield* TestClock.adjust(deadline)
        const error = yield* Fiber.join(fiber)
        expect(error).toMatchObject({ _tag: "DeadlineExceeded", pending: ["payments"], deadlineMs: 2000 })
      }).pipe(Effect.provide(withDoubles({ payments: () => Effect.never }, { REQUIRED_FEATURES: "payments" }))))
  })

  describe("hedging (FEATURE_HEDGE)", () => {
    /**
     * A client whose first call waits forever (counting its cancellation) and whose later calls answer after `ms`
     * (0: at once); `calls()` counts its calls.
     */
    const slowFirst = (ms = 0) => {
      let calls = 0
      let cancelled = 0
      const behaviour: Behaviour = (customerId) =>
        Effect.suspend(() =>
          ++calls === 1
            ? Effect.onInterrupt(Effect.never, () => Effect.sync(() => cancelled++))
            : Effect.as(Effect.sleep(ms), usageOf("reports", customerId))
        )
      return { behaviour, calls: () => calls, cancelled: () => cancelled }
    }

    it.effect("off by default: a slow call gets no backup", () => {
      const reports = slowFirst()
      return Effect.gen(function*() {
        const usage = yield* Usage
        const fiber = yield* Effect.forkChild(usage.forCustomer(customer, { mode: "partial", deadline }))
        yield* TestClock.adjust(deadline)
        const response = yield* Fiber.join(fiber)
        expect(response.panels.find((panel) => panel.feature === "reports")).toMatchObject({
          status: "timed_out",
          attempts: 1
        })
        expect(reports.calls()).toBe(1)
      }).pipe(Effect.provide(withDoubles({ reports: reports.behaviour })))
    })

    it.effect("p95: a call still running at the delay (250 ms before any call has answered) gets one backup, which wins", () => {
      const reports = slowFirst()
      return Effect.gen(function*() {
        const usage = yield* Usage
        const fiber = yield* Effect.forkChild(usage.forCustomer(customer, { mode: "partial", deadline }))
        yield* TestClock.adjust("249 millis")
        expect(reports.calls()).toBe(1)
        yield* TestClock.adjust("1 millis")
        const response = yield* Fiber.join(fiber)
        expect(response.complete).toBe(true)
        expect(response.panels.find((panel) => panel.feature === "reports")).toMatchObject({
          status: "ok",
          attempts: 2,
          durationMs: 250
        })
        expect(reports.calls()).toBe(2)
        expect(reports.cancelled()).toBe(1)
        // The eleven other services answered at once: no backup for them.
        expect(response.panels.filter((panel) => panel.attempts === 1)).toHaveLength(11)
      }).pipe(Effect.provide(withDoubles({ reports: reports.behaviour }, { FEATURE_HEDGE: "p95" })))
    })

    it.effect("each service learns its own delay, shared across requests", () => {
      // Each call's latency in ms, in the order of the service's calls ("never": it waits until cancelled).
      const scripted = (feature: Feature, plan: ReadonlyArray<number | "never">) => {
        let calls = 0
        const behaviour: Behaviour = (customerId) =>
          Effect.suspend(() => {
            const ms = plan[calls++] ?? 0
            return ms === "never" ? Effect.never : Effect.as(Effect.sleep(ms), usageOf(feature, customerId))
          })
        return { behaviour, calls: () => calls }
      }
      const reports = scripted("reports", ["never", 20, 15])
      const listings = scripted("listings", [0, 10, 0])
      return Effect.gen(function*() {
        const usage = yield* Usage
        // First request: reports' call gets its backup at 250 ms (nothing learned yet), which answers in 20 ms.
        const first = yield* Effect.forkChild(usage.forCustomer(customer, { mode: "partial", deadline }))
        yield* TestClock.adjust("270 millis")
        expect((yield* Fiber.join(first)).complete).toBe(true)
        // Now reports' delay is a millisecond past its own p95 (20 ms); listings', which answered at once, the 5 ms floor.
        const second = yield* Effect.forkChild(usage.forCustomer(customer, { mode: "partial", deadline }))
        yield* TestClock.adjust("15 millis")
        const response = yield* Fiber.join(second)
        // reports answered in 15 ms, within its 21 ms: no backup.
        expect(response.panels.find((panel) => panel.feature === "reports")).toMatchObject({
          status: "ok",
          attempts: 1,
          durationMs: 15
        })
        // listings' call, 10 ms this time, got its backup at 5 ms, which answered at once.
        expect(response.panels.find((panel) => panel.feature === "listings")).toMatchObject({
          status: "ok",
          attempts: 2,
          durationMs: 5
        })
        expect([reports.calls(), listings.calls()]).toStrictEqual([3, 3])
      }).pipe(Effect.provide(withDoubles({ reports: reports.behaviour, listings: listings.behaviour }, {
        FEATURE_HEDGE: "p95"
      })))
    })

    it.effect("partial mode: an Unavailable answer starts the backup at once; a bad response ends the call", () => {
      const payments = flaky("Unavailable", 1)
      const listings = flaky("BadResponse", 1)
      return Effect.gen(function*() {
        const usage = yield* Usage
        // No clock adjustment: the backup starts on the failure, not after a delay.
        const response = yield* usage.forCustomer(customer, { mode: "partial", deadline })
        expect(response.panels.find((panel) => panel.feature === "payments")).toMatchObject({
          status: "ok",
          attempts: 2
        })
        expect(response.panels.find((panel) => panel.feature === "listings")).toMatchObject({
          status: "failed",
          reason: "bad_response",
          attempts: 1
        })
      }).pipe(Effect.provide(withDoubles({ payments: payments.behaviour, listings: listings.behaviour }, {
        FEATURE_HEDGE: "p95"
      })))
    })

    it.effect("strict mode hedges only slowness: an Unavailable answer still fails the page at once", () =>
      Effect.gen(function*() {
        const usage = yield* Usage
        const error = yield* Effect.flip(usage.forCustomer(customer, { mode: "strict", deadline }))
        expect(error).toMatchObject({ _tag: "FeatureFailed", feature: "payments", reason: "unavailable", attempts: 1 })
      }).pipe(Effect.provide(withDoubles({ payments: flaky("Unavailable", 1).behaviour }, { FEATURE_HEDGE: "p95" }))))
  })

  describe("retries", () => {
    it.effect("retries an unavailable service: a call failing once is ok with attempts 2", () => {
      const payments = flaky("Unavailable", 1)
      return Effect.gen(function*() {
        const usage = yield* Usage
        const response = yield* withRetriesElapsed(usage.forCustomer(customer, { mode: "partial", deadline }))
        expect(response.complete).toBe(true)
        expect(response.panels.find((panel) => panel.feature === "payments")).toMatchObject({
          status: "ok",
          attempts: 2,
          durationMs: 20
        })
        expect(response.panels.find((panel) => panel.feature === "listings")).toMatchObject({ attempts: 1 })
        expect(payments.calls()).toBe(2)
      }).pipe(Effect.provide(withDoubles({ payments: payments.behaviour }, { FEATURE_RETRIES: "2" })))
    })

    it.effect("gives up after FEATURE_RETRIES retries: the panel is failed with every attempt counted", () => {
      const payments = flaky("Unavailable", Infinity)
      return Effect.gen(function*() {
        const usage = yield* Usage
        const response = yield* withRetriesElapsed(usage.forCustomer(customer, { mode: "partial", deadline }))
        expect(response.panels.find((panel) => panel.feature === "payments")).toMatchObject({
          status: "failed",
          reason: "unavailable",
          attempts: 3
        })
        expect(payments.calls()).toBe(3)
      }).pipe(Effect.provide(withDoubles({ payments: payments.behaviour }, { FEATURE_RETRIES: "2" })))
    })

    it.effect("does not retry a bad response", () => {
      const payments = flaky("BadResponse", 1)
      return Effect.gen(function*() {
        const usage = yield* Usage
        // No clock adjustment: a retry would wait 20 ms of test time and this request would never end.
        const response = yield* usage.forCustomer(customer, { mode: "partial", deadline })
        expect(response.panels.find((panel) => panel.feature === "payments")).toMatchObject({
          status: "failed",
          reason: "bad_response",
          attempts: 1
        })
        expect(payments.calls()).toBe(1)
      }).pipe(Effect.provide(withDoubles({ payments: payments.behaviour }, { FEATURE_RETRIES: "2" })))
    })

    it.effect("does not retry a crash", () =>
      Effect.gen(function*() {
        const usage = yield* Usage
        const response = yield* usage.forCustomer(customer, { mode: "partial", deadline })
        expect(response.panels[0]).toMatchObject({ status: "failed", reason: "internal_error", attempts: 1 })
      }).pipe(
        Effect.provide(withDoubles({ listings: crash }, { FEATURE_RETRIES: "2" })),
        Effect.provide(makeCaptureLogger().layer)
      ))

    it.effect("strict mode does not retry by default: it fails at the first failure, after one attempt", () =>
      Effect.gen(function*() {
        const usage = yield* Usage
        // No clock adjustment: a retry would wait 20 ms of test time and this request would never end.
        const error = yield* Effect.flip(usage.forCustomer(customer, { mode: "strict", deadline }))
        expect(error).toMatchObject({
          _tag: "FeatureFailed",
          feature: "payments",
          reason: "unavailable",
          attempts: 1,
          message: "payments failed (unavailable)"
        })
      }).pipe(Effect.provide(withDoubles({ payments: flaky("Unavailable", 1).behaviour }, {
        FEATURE_RETRIES: "2"
      }))))

    it.effect("strict mode retries with STRICT_RETRIES: a call failing once leaves the page complete, with attempts 2", () => {
      const payments = flaky("Unavailable", 1)
      return Effect.gen(function*() {
        const usage = yield* Usage
        const response = yield* withRetriesElapsed(usage.forCustomer(customer, { mode: "strict", deadline }))
        expect(response.complete).toBe(true)
        expect(response.panels.find((panel) => panel.feature === "payments")).toMatchObject({
          status: "ok",
          attempts: 2,
          durationMs: 20
        })
      }).pipe(Effect.provide(withDoubles({ payments: payments.behaviour }, { STRICT_RETRIES: "2" })))
    })

    it.effect("strict mode with STRICT_RETRIES fails with 502 once the retries are spent, saying how many calls were made", () =>
      Effect.gen(function*() {
        const usage = yield* Usage
        const error = yield* withRetriesElapsed(Effect.flip(usage.forCustomer(customer, { mode: "strict", deadline })))
        expect(error).toMatchObject({
          _tag: "FeatureFailed",
          feature: "payments",
          reason: "unavailable",
          attempts: 3,
          message: "payments failed (unavailable) after 3 attempts"
        })
      }).pipe(Effect.provide(withDoubles({ payments: flaky("Unavailable", Infinity).behaviour }, {
        STRICT_RETRIES: "2"
      }))))
  })

  describe("strict", () => {
    it.effect("answers every panel when every client succeeds", () =>
      Effect.gen(function*() {
        const usage = yield* Usage
        const response = yield* usage.forCustomer(customer, { mode: "strict", deadline })
        expect(response.complete).toBe(true)
        expect(response.panels).toHaveLength(12)
      }).pipe(Effect.provide(withDoubles({}))))

    it.effect("fails with the first failed feature and interrupts every other call", () =>
      Effect.gen(function*() {
        const { behaviours, interrupted, others } = yield* oneFailsWhileOthersRun("messages")
        const error = yield* Usage.pipe(
          Effect.flatMap((usage) => Effect.flip(usage.forCustomer(customer, { mode: "strict", deadline }))),
          Effect.provide(withDoubles(behaviours))
        )
        expect(error).toMatchObject({ _tag: "FeatureFailed", feature: "messages", reason: "unavailable" })
        // The failure is returned only after the siblings' interruption finished.
        expect(yield* interrupted).toBe(others)
      }))

    it.effect("fails with internal_error for a crashing client, without its message", () =>
      Effect.gen(function*() {
        const usage = yield* Usage
        const error = yield* Effect.flip(usage.forCustomer(customer, { mode: "strict", deadline }))
        expect(error).toMatchObject({ _tag: "FeatureFailed", feature: "listings", reason: "internal_error" })
        expect(JSON.stringify(error)).not.toMatch(/boom/)
        expect(error.message).not.toMatch(/boom/)
      }).pipe(Effect.provide(withDoubles({ listings: crash })), Effect.provide(makeCaptureLogger().layer)))

    it.effect("fails with DeadlineExceeded naming the pending features at the deadline, and logs them", () => {
      const logs = makeCaptureLogger()
      return Effect.gen(function*() {
        const usage = yield* Usage
        const fiber = yield* Effect.forkChild(Effect.flip(usage.forCustomer(customer, { mode: "strict", deadline })))
        yield* TestClock.adjust(deadline)
        const error = yield* Fiber.join(fiber)
        expect(error).toMatchObject({ _tag: "DeadlineExceeded", pending: ["alerts", "payments"], deadlineMs: 2000 })
        const warnings = logs.entries.filter((entry) => entry.level === "WARN")
        expect(warnings.map((entry) => [entry.message, entry.annotations.pending])).toEqual([
          ["deadline of 2000 ms passed; pending: alerts, payments", "alerts,payments"]
        ])
      }).pipe(
        Effect.provide(withDoubles({ alerts: () => Effect.never, payments: () => Effect.never })),
        Effect.provide(logs.layer)
      )
    })
  })
})
