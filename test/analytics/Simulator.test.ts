/**
 * The feature-service simulators: their settings, their determinism and their counters.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "@effect/vitest"
import { Result } from "effect"
import * as Http from "node:http"
import * as Simulator from "../../examples/analytics/harness/Simulator.js"

describe("Simulator.applyFlags", () => {
  const base = Simulator.loadConfig()
  const apply = (argv: ReadonlyArray<string>) => Result.getOrThrow(Simulator.applyFlags(base, argv))
  const problem = (argv: ReadonlyArray<string>) =>
    Result.match(Simulator.applyFlags(base, argv), { onFailure: (error) => error.message, onSuccess: () => "no error" })

  it("overrides one feature's setting and the seed", () => {
    const config = apply(["--payments.errorRate=1", "--seed=7", "--calendar.crash=true"])
    expect(config.seed).toBe(7)
    expect(config.features.payments).toEqual({ ...base.features.payments, errorRate: 1 })
    expect(config.features.calendar?.crash).toBe(true)
    expect(apply(["--calendar.crash=false"]).features.calendar?.crash).toBe(false)
  })

  it("applies --all to every feature, over what the file says about that setting", () => {
    const config = apply(["--all.errorRate=0"])
    expect(config.defaults.errorRate).toBe(0)
    for (const settings of Object.values(config.features)) expect(settings.errorRate).toBeUndefined()
    expect(config.features.reports?.latencyMs).toBe(base.features.reports?.latencyMs)
  })

  it("names an unknown feature, setting or flag", () => {
    expect(problem(["--billing.errorRate=1"])).toBe("unrecognised flag --billing.errorRate=1")
    expect(problem(["--payments.colour=red"])).toBe("unrecognised flag --payments.colour=red")
    expect(problem(["--payments.toString=1"])).toBe("unrecognised flag --payments.toString=1")
    expect(problem(["--foo"])).toBe("unrecognised flag --foo")
    expect(problem(["payments"])).toBe("unrecognised flag payments")
  })

  it("names a value its setting does not take, instead of reading it as something else", () => {
    expect(problem(["--payments.errorRate=2"])).toBe(
      "--payments.errorRate=2: errorRate must be a decimal number between 0 and 1"
    )
    expect(problem(["--all.hangRate=-0.5"])).toBe(
      "--all.hangRate=-0.5: hangRate must be a decimal number between 0 and 1"
    )
    expect(problem(["--tours.latencyMs=fast"])).toBe(
      "--tours.latencyMs=fast: latencyMs must be a whole number of milliseconds from 0 to 2147483647"
    )
    // `Number("")` is 0: an empty value must not pass for one.
    expect(problem(["--tours.jitterMs="])).toBe(
      "--tours.jitterMs=: jitterMs must be a whole number of milliseconds from 0 to 2147483647"
    )
    expect(problem(["--calendar.crash=yes"])).toBe("--calendar.crash=yes: crash must be true or false")
    expect(problem(["--calendar.crash=1"])).toBe("--calendar.crash=1: crash must be true or false")
    expect(problem(["--seed=abc"])).toBe("--seed=abc: seed must be an integer")
    expect(problem(["--seed=1.5"])).toBe("--seed=1.5: seed must be an integer")
  })

  it("takes milliseconds in decimal digits up to setTimeout's limit, not what Number would make of them", () => {
    // 1e12 and Infinity passed to setTimeout fire after 1 ms: a service meant to be slow answered at once.
    for (const raw of ["1e12", "Infinity", "0x10", "2147483648", "1.5", "-1", " 5", "+5"]) {
      for (const name of ["latencyMs", "jitterMs"]) {
        expect(problem([`--all.${name}=${raw}`]), `${name}=${raw}`).toBe(
          `--all.${name}=${raw}: ${name} must be a whole number of milliseconds from 0 to 2147483647`
        )
      }
    }
    expect(apply(["--all.latencyMs=2147483647", "--tours.jitterMs=0"])).toMatchObject({
      defaults: { latencyMs: Simulator.maxDelayMs },
      features: { tours: { jitterMs: 0 } }
    })
  })

  it("takes rates in decimal notation only", () => {
    for (const raw of ["0x1", "1e-1", "Infinity", "NaN", " 0.5"]) {
      expect(problem([`--payments.errorRate=${raw}`]), raw).toBe(
        `--payments.errorRate=${raw}: errorRate must be a decimal number between 0 and 1`
      )
    }
    expect(apply(["--payments.errorRate=.5", "--documents.malformedRate=0.25", "--calendar.hangRate=1"]).features)
      .toMatchObject({ payments: { errorRate: 0.5 }, documents: { malformedRate: 0.25 }, calendar: { hangRate: 1 } })
  })
})

describe("Simulator.SimulatorConfig", () => {
  /** The issues a config file has, as `path: message`; none when it decodes. */
  const issues = (config: unknown) =>
    Result.match(Simulator.decodeConfig(config), { onFailure: Simulator.configIssues, onSuccess: () => [] })
  const defaults = { latencyMs: 25, jitterMs: 50, errorRate: 0, malformedRate: 0, hangRate: 0, crash: false }

  it("refuses every feature and setting it does not know, instead of leaving those services at their defaults", () => {
    expect(issues({ seed: 1, defaults, features: { paymnets: { errorRate: 1 }, calendar: { hangrate: 1 } } })).toEqual([
      expect.stringMatching(/^features\.paymnets: is unexpected, expected: "listings" \| "savedSearches" \| /),
      expect.stringMatching(/^features\.calendar\.hangrate: is unexpected, expected: "latencyMs" \| "jitterMs" \| /)
    ])
    expect(issues({ seed: 1, defaults: { ...defaults, colour: "red" }, features: {} })).toEqual([
      expect.stringMatching(/^defaults\.colour: is unexpected/)
    ])
    expect(issues({ seed: 1, defaults, features: {}, verbose: true })).toEqual([
      `verbose: is unexpected, expected: "seed" | "defaults" | "features"`
    ])
  })

  it("refuses milliseconds past setTimeout's limit or not whole, saying what a setting takes", () => {
    for (const latencyMs of [1e12, 2147483648, 1.5, -1]) {
      expect(issues({ seed: 1, defaults: { ...defaults, latencyMs }, features: {} })).toEqual([
        `defaults.latencyMs: must be a whole number of milliseconds from 0 to 2147483647, got ${latencyMs}`
      ])
    }
    expect(issues({ seed: 1, defaults, features: { tours: { jitterMs: 1e12 } } })).toEqual([
      "features.tours.jitterMs: must be a whole number of milliseconds from 0 to 2147483647, got 1000000000000"
    ])
    expect(issues({ seed: 1, defaults: { ...defaults, latencyMs: 2147483647 }, features: {} })).toEqual([])
  })
})

describe("Simulator delays", () => {
  it("waits latency plus jitter in full when the sum passes setTimeout's limit (each is within it)", async () => {
    // The fake clock, like Node, fires a timer set past the limit after 1 ms.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] })
    const slowest = { latencyMs: Simulator.maxDelayMs, jitterMs: Simulator.maxDelayMs }
    const simulators = await Simulator.start({
      seed: 1,
      defaults: { ...slowest, errorRate: 0, malformedRate: 0, hangRate: 0, crash: false },
      features: {}
    })
    try {
      const status = new Promise<number | undefined>((resolve, reject) => {
        Http.get(`${simulators.urls.tours}/customers/c-1/usage`, (response) => {
          response.resume()
          resolve(response.statusCode)
        }).on("error", reject)
      })
      await simulators.awaitCounts((counts) => counts.tours.started === 1)
      vi.advanceTimersByTime(Simulator.maxDelayMs)
      // The latency alone has passed: the answer is still to come, after the jitter drawn.
      expect(vi.getTimerCount()).toBe(1)
      expect(simulators.counts().tours).toEqual({ started: 1, completed: 0, aborted: 0 })
      vi.advanceTimersByTime(Simulator.maxDelayMs)
      expect(await status).toBe(200)
    } finally {
      vi.useRealTimers()
      await simulators.close()
    }
  })
})

describe("Simulator servers", () => {
  let simulators: Simulator.Simulators

  /**
   * Sends alerts a request that the simulator does not answer, leaves once it has started, and waits until the
   * simulator has counted it aborted: the counts then.
   */
  const requestThenLeave = async () => {
    const controller = new AbortController()
    const left = fetch(`${simulators.urls.alerts}/customers/c-1/usage`, { signal: controller.signal }).catch(() =>
      "aborted"
    )
    await simulators.awaitCounts((counts) => counts.alerts.started === 1)
    controller.abort()
    expect(await left).toBe("aborted")
    return simulators.awaitCounts((counts) => counts.alerts.aborted === 1)
  }
  beforeAll(async () => {
    simulators = await Simulator.start(Simulator.loadConfig())
  })
  afterAll(() => simulators.close())

  const statuses = async (n: number) => {
    const result: Array<number> = []
    for (let i = 0; i < n; i++) {
      const response = await fetch(`${simulators.urls.offers}/customers/c-${i}/usage`)
      await response.arrayBuffer()
      result.push(response.status)
    }
    return result
  }

  it("answers the same sequence again after a reset with the same seed", async () => {
    simulators.scenario({ all: { latencyMs: 0, jitterMs: 0 }, offers: { errorRate: 0.5 } })
    const first = await statuses(16)
    simulators.scenario({ all: { latencyMs: 0, jitterMs: 0 }, offers: { errorRate: 0.5 } })
    const second = await statuses(16)
    expect(second).toEqual(first)
    expect(new Set(first)).toEqual(new Set([200, 503]))
  })

  it("answers usage JSON, malformed JSON and a crash's stack trace as configured", async () => {
    simulators.scenario({
      all: { latencyMs: 0, jitterMs: 0 },
      documents: { malformedRate: 1 },
      reports: { crash: true }
    })
    const ok = await fetch(`${simulators.urls.tours}/customers/c-1/usage`).then((r) => r.json())
    expect(ok).toMatchObject({ customerId: "c-1", feature: "tours", count: expect.any(Number) })
    const malformed = await fetch(`${simulators.urls.documents}/customers/c-1/usage`).then((r) => r.text())
    expect(() => JSON.parse(malformed)).toThrow()
    const crashed = await fetch(`${simulators.urls.reports}/customers/c-1/usage`)
    expect(crashed.status).toBe(500)
    expect(await crashed.text()).toMatch(/simulated crash in the reports service.*\n\s+at /)
    expect((await fetch(`${simulators.urls.tours}/other`)).status).toBe(404)
  })

  it("holds a feature's answers until released, counting its requests as they arrive", async () => {
    simulators.scenario({ all: { latencyMs: 0, jitterMs: 0 } })
    const release = simulators.hold("tours")
    let answered = false
    const statusOf = (url: string) =>
      fetch(url).then(async (response) => {
        await response.arrayBuffer()
        return response.status
      })
    const tours = statusOf(`${simulators.urls.tours}/customers/c-1/usage`).then((status) => {
      answered = true
      return status
    })
    // A feature that is not held answers as usual meanwhile.
    expect(await statusOf(`${simulators.urls.offers}/customers/c-1/usage`)).toBe(200)
    await simulators.awaitCounts((counts) => counts.tours.started === 1)
    expect([answered, simulators.counts().tours]).toEqual([false, { started: 1, completed: 0, aborted: 0 }])
    release()
    expect(await tours).toBe(200)
    expect((await simulators.awaitCounts((counts) => counts.tours.completed === 1)).tours.aborted).toBe(0)
  })

  it("scenario releases every hold; a held request whose client left is not answered", async () => {
    simulators.scenario({ all: { latencyMs: 0, jitterMs: 0 } })
    simulators.hold("alerts")
    await requestThenLeave()
    simulators.scenario({ all: { latencyMs: 0, jitterMs: 0 } })
    // Not held any more: the next request is answered at once.
    const response = await fetch(`${simulators.urls.alerts}/customers/c-2/usage`)
    expect([response.status, await response.json()]).toMatchObject([200, { customerId: "c-2" }])
  })

  it("counts a request whose client goes away as aborted", async () => {
    simulators.scenario({ alerts: { hangRate: 1 } })
    const counts = await requestThenLeave()
    expect(counts.alerts).toEqual({ started: 1, completed: 0, aborted: 1 })
  })
})

describe("Simulator budgets (x-fanout-timeout)", () => {
  it("answers 504 at once, saying why, to work it cannot finish within the budget; 400 to a malformed header", async () => {
    const simulators = await Simulator.start({
      seed: 1,
      defaults: { latencyMs: 300, jitterMs: 0, errorRate: 0, malformedRate: 0, hangRate: 0, crash: false },
      features: { tours: { latencyMs: 0 } }
    })
    try {
      const late = await fetch(`${simulators.urls.alerts}/customers/c-1/usage`, {
        headers: { "x-fanout-timeout": "100m" }
      })
      expect(late.status).toBe(504)
      expect(await late.json()).toEqual({ error: "alerts cannot answer within the 100 ms budget (it needs 300 ms)" })
      // Work that fits the budget is done as usual.
      const inTime = await fetch(`${simulators.urls.tours}/customers/c-1/usage`, {
        headers: { "x-fanout-timeout": "100m" }
      })
      expect(inTime.status).toBe(200)
      for (const malformed of ["100", "1.5m", "100ms", "-1m"]) {
        const response = await fetch(`${simulators.urls.tours}/customers/c-1/usage`, {
          headers: { "x-fanout-timeout": malformed }
        })
        expect([malformed, response.status]).toEqual([malformed, 400])
        expect(((await response.json()) as { error: string }).error).toMatch(
          /x-fanout-timeout must be whole milliseconds/
        )
      }
      await simulators.awaitCounts((counts) => counts.alerts.completed === 1 && counts.tours.completed === 5)
    } finally {
      await simulators.close()
    }
  })
})
