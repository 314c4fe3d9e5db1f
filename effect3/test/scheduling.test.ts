import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber } from "effect"
import { AsyncLocalStorage, AsyncResource } from "node:async_hooks"
import { FanOut } from "../src/index.js"

describe("scheduling", () => {
  it.effect("tasks resumed from different async resources keep their own AsyncLocalStorage store", () =>
    Effect.gen(function*() {
      const als = new AsyncLocalStorage<number>()
      const n = 4
      // Each task is resumed from its own async resource, all of them within one synchronous callback: a scheduler
      // batch shared across resources would run every continuation in the first one's store.
      const resources = Array.from({ length: n }, (_, i) => als.run(i, () => new AsyncResource("task")))
      const resumes: Array<() => void> = []
      const registered = yield* Deferred.make<void>()
      const tasks = resources.map((resource, i) =>
        Effect.async<number | undefined>((resume) => {
          resumes[i] = () => resource.runInAsyncScope(() => resume(Effect.sync(() => als.getStore())))
          if (resumes.filter(Boolean).length === n) Deferred.unsafeDone(registered, Exit.void)
        })
      )
      const fiber = yield* Effect.fork(FanOut.all(tasks))
      yield* Deferred.await(registered)
      yield* Effect.sync(() => resumes.forEach((resume) => resume()))
      expect(yield* Fiber.join(fiber)).toEqual([0, 1, 2, 3])
    }))
})
