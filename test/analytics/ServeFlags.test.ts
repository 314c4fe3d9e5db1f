/**
 * The command line of `npm run serve`, parsed without starting anything: what each flag gives, and the one line a
 * bad flag gets instead of a stack trace.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import { execFile } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { configPrefix, features } from "../../examples/analytics/Features.js"
import * as ServeFlags from "../../examples/analytics/harness/ServeFlags.js"
import * as Simulator from "../../examples/analytics/harness/Simulator.js"

const parse = (argv: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Result.getOrThrow(ServeFlags.parse(argv, env))

const problem = (argv: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Result.match(ServeFlags.parse(argv, env), { onFailure: (error) => error.message, onSuccess: () => "no error" })

/** Config files written for a test, in a directory of their own under the system's temporary directory. */
const scratch = Fs.mkdtempSync(Path.join(Os.tmpdir(), "serve-flags-"))
afterAll(() => Fs.rmSync(scratch, { recursive: true, force: true }))
const configFile = (name: string, config: unknown) => {
  const path = Path.join(scratch, name)
  Fs.writeFileSync(path, JSON.stringify(config))
  return path
}
const defaults = { latencyMs: 25, jitterMs: 50, errorRate: 0, malformedRate: 0, hangRate: 0, crash: false }

/** What `--external` needs besides `PORT` and `HOST`: every feature service's URL. */
const featureUrls = Object.fromEntries(
  features.map((feature) => [`${configPrefix(feature)}_URL`, "http://10.0.0.7:8080"])
)

describe("ServeFlags.parse", () => {
  it("starts the simulators from the config file, the API on port 3000, without tracing, when given nothing", () => {
    expect(parse([])).toEqual({
      _tag: "Embedded",
      port: 3000,
      simulators: Result.getOrThrow(Simulator.applyFlags(Simulator.loadConfig(), [])),
      trace: "off",
      metrics: "off",
      otlpEndpoint: "http://127.0.0.1:4318",
      workers: Os.availableParallelism()
    })
  })

  it("takes the number of worker processes from --workers, as --workers=N or --workers N, else one per core", () => {
    expect(parse(["--workers=1"])).toMatchObject({ workers: 1 })
    expect(parse(["--workers", "2", "--port=0"])).toMatchObject({ workers: 2, port: 0 })
    expect(parse(["--workers=1024"])).toMatchObject({ workers: 1024 })
    expect(parse(["--external", "--workers=3"], featureUrls)).toMatchObject({ _tag: "External", workers: 3 })
    expect(parse(["--external"], featureUrls)).toMatchObject({ workers: Os.availableParallelism() })
  })

  it("names a bad --workers", () => {
    for (const workers of ["0", "-1", "1025", "2.5", "two", "", "0x2", "1e2", " 2"]) {
      expect(problem([`--workers=${workers}`]), workers).toBe(
        `--workers=${workers}: workers must be an integer from 1 to 1024`
      )
    }
    expect(problem(["--workers"])).toBe("--workers needs a value, as in --workers=...")
    expect(problem(["--workers", "--port=0"])).toBe("--workers needs a value, as in --workers=...")
    expect(problem(["--workers", "abc"])).toBe("--workers=abc: workers must be an integer from 1 to 1024")
    expect(problem(["--workers=2", "--workers", "3"])).toBe("--workers=3: --workers is given twice")
  })

  it("takes the port from --port, else PORT", () => {
    expect(parse(["--port=0"])).toMatchObject({ port: 0 })
    expect(parse([], { PORT: "8080" })).toMatchObject({ port: 8080 })
    expect(parse(["--port=9000"], { PORT: "8080" })).toMatchObject({ port: 9000 })
  })

  it("passes every other flag to the simulators", () => {
    const options = parse(["--payments.errorRate=0.5", "--port=0", "--seed=7", "--calendar.crash=true"])
    expect(options._tag === "Embedded" && options.simulators.seed).toBe(7)
    expect(options._tag === "Embedded" && options.simulators.features.payments?.errorRate).toBe(0.5)
    expect(options._tag === "Embedded" && options.simulators.features.calendar?.crash).toBe(true)
  })

  it("turns tracing on with --trace, or OTLP with OTEL_EXPORTER_OTLP_ENDPOINT alone", () => {
    expect(parse(["--trace=console"])).toMatchObject({ trace: "console" })
    expect(parse([], { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toMatchObject({
      trace: "otlp",
      otlpEndpoint: "http://collector:4318"
    })
    expect(parse(["--trace=off"], { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toMatchObject({
      trace: "off"
    })
  })

  it("exports metrics with --metrics=otlp, or with OTEL_EXPORTER_OTLP_ENDPOINT alone; names a bad --metrics", () => {
    expect(parse(["--metrics=otlp"])).toMatchObject({ metrics: "otlp", trace: "off" })
    expect(parse([], { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toMatchObject({
      metrics: "otlp",
      trace: "otlp"
    })
    expect(parse(["--metrics=off"], { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toMatchObject({
      metrics: "off",
      trace: "otlp"
    })
    expect(problem(["--metrics=prometheus"])).toBe("--metrics=prometheus: metrics must be otlp or off")
    expect(problem(["--metrics=otlp", "--trace=off"], { OTEL_EXPORTER_OTLP_ENDPOINT: "nope" })).toBe(
      "OTEL_EXPORTER_OTLP_ENDPOINT=nope: must be an absolute http:// or https:// URL, such as http://127.0.0.1:4318"
    )
    for (const value of ["99", "ten", ""]) {
      expect(problem([], { OTEL_METRIC_EXPORT_INTERVAL: value }), value).toBe(
        `OTEL_METRIC_EXPORT_INTERVAL=${value}: must be a whole number of milliseconds from 100 to 3600000`
      )
    }
  })

  it("starts no simulators with --external", () => {
    expect(parse(["--external", "--trace=console"], featureUrls)).toEqual({
      _tag: "External",
      trace: "console",
      metrics: "off",
      otlpEndpoint: "http://127.0.0.1:4318",
      workers: Os.availableParallelism()
    })
  })

  it("names a bad port, from the flag or from PORT", () => {
    for (const port of ["abc", "", "-1", "3.5", "65536", "1e3"]) {
      expect(problem([`--port=${port}`]), port).toBe(`--port=${port}: port must be an integer from 0 to 65535`)
    }
    expect(problem([], { PORT: "http" })).toBe("PORT=http: port must be an integer from 0 to 65535")
    expect(problem(["--port"])).toBe("--port needs a value, as in --port=...")
  })

  it("names a bad simulator flag", () => {
    expect(problem(["--payments.errorRate=2"])).toBe(
      "--payments.errorRate=2: errorRate must be a decimal number between 0 and 1"
    )
    expect(problem(["--calendar.crash=yes"])).toBe("--calendar.crash=yes: crash must be true or false")
    for (const flag of ["--all.latencyMs=1e12", "--all.latencyMs=0x10"]) {
      expect(problem([flag])).toBe(`${flag}: latencyMs must be a whole number of milliseconds from 0 to 2147483647`)
    }
    expect(problem(["--all.jitterMs=Infinity"])).toBe(
      "--all.jitterMs=Infinity: jitterMs must be a whole number of milliseconds from 0 to 2147483647"
    )
    expect(problem(["--foo"])).toBe("unrecognised flag --foo")
    expect(problem(["--port=0", "--verbose=1"])).toBe("unrecognised flag --verbose=1")
  })

  it("names a bad --trace", () => {
    expect(problem(["--trace=jaeger"])).toBe("--trace=jaeger: trace must be console, otlp or off")
  })

  it("names a config file that cannot be read or is not a simulator config", () => {
    expect(problem(["--config=/nonexistent/simulators.json"])).toMatch(
      /^--config=\/nonexistent\/simulators\.json: ENOENT: no such file or directory/
    )
    const packageJson = fileURLToPath(new URL("../../package.json", import.meta.url))
    expect(problem([`--config=${packageJson}`])).toMatch(
      new RegExp(`^--config=${packageJson}: name: is unexpected, expected: "seed" \\| "defaults" \\| "features"; `)
    )
    expect(problem([`--config=${packageJson}`])).toMatch(
      /; seed: is missing; defaults: is missing; features: is missing$/
    )
  })

  it("names every misspelt feature and setting in a config file", () => {
    const file = configFile("typos.json", {
      seed: 1,
      defaults,
      features: { paymnets: { errorRate: 1 }, calendar: { hangrate: 1 } }
    })
    expect(problem([`--config=${file}`])).toBe(
      `--config=${file}: ` +
        `features.paymnets: is unexpected, expected: ${features.map((feature) => `"${feature}"`).join(" | ")}; ` +
        `features.calendar.hangrate: is unexpected, expected: ` +
        `"latencyMs" | "jitterMs" | "errorRate" | "malformedRate" | "hangRate" | "crash"`
    )
  })

  it("names a config file's milliseconds past setTimeout's limit", () => {
    const file = configFile("slow.json", { seed: 1, defaults: { ...defaults, latencyMs: 1e12 }, features: {} })
    expect(problem([`--config=${file}`])).toBe(
      `--config=${file}: defaults.latencyMs: must be a whole number of milliseconds from 0 to 2147483647, ` +
        `got 1000000000000`
    )
  })

  it("names an environment variable the API cannot use, with its value and what it takes, before anything starts", () => {
    expect(problem(["--port=0"], { REQUIRED_FEATURES: "bogus" })).toBe(
      `REQUIRED_FEATURES=bogus: "bogus" is not a feature (the features are ${features.join(", ")})`
    )
    expect(problem([], { REQUIRED_FEATURES: "payments,bogus,,listings" })).toBe(
      `REQUIRED_FEATURES=payments,bogus,,listings: "bogus", "" are not features (the features are ${
        features.join(", ")
      })`
    )
    for (const value of ["6", "-1", "0x2", "1e0", "", "two"]) {
      expect(problem([], { FEATURE_RETRIES: value }), value).toBe(
        `FEATURE_RETRIES=${value}: retries must be an integer from 0 to 5`
      )
    }
    expect(problem([], { STRICT_RETRIES: "9" })).toBe("STRICT_RETRIES=9: retries must be an integer from 0 to 5")
    for (const value of ["95", "p49", "p100", "p9", "p95.55", "on", ""]) {
      expect(problem([], { FEATURE_HEDGE: value }), value).toBe(
        `FEATURE_HEDGE=${value}: "off", or p<percentile> from p50 to p99.9 such as "p95"`
      )
    }
    for (const value of ["off", "p50", "p95", "p99.9"]) {
      expect(problem([], { FEATURE_HEDGE: value }), value).toBe("no error")
    }
    expect(problem([], { RETRY_BUDGET: "lots" })).toBe(
      `RETRY_BUDGET=lots: "off", or <maxTokens>:<tokenRatio> such as "10:0.1"`
    )
    for (const value of ["soon", "5", "0 seconds", "-1 seconds"]) {
      expect(problem([], { FEATURE_TIMEOUT: value }), value).toBe(
        `FEATURE_TIMEOUT=${value}: the timeout must be a duration greater than zero, such as "2 seconds" or "500 millis"`
      )
    }
    // The bounds of overload and attack.
    expect(problem([], { MAX_FANOUTS: "0" })).toBe("MAX_FANOUTS=0: must be an integer from 1 to 10000")
    expect(problem([], { MAX_FANOUTS_PER_CONNECTION: "x" })).toBe(
      "MAX_FANOUTS_PER_CONNECTION=x: must be an integer from 1 to 10000"
    )
    expect(problem([], { MAX_QUEUED_FANOUTS: "-1" })).toBe("MAX_QUEUED_FANOUTS=-1: must be an integer from 0 to 100000")
    expect(problem([], { MAX_EVENT_LOOP_DELAY: "0" })).toBe(
      "MAX_EVENT_LOOP_DELAY=0: must be an integer from 1 to 60000"
    )
    expect(problem([], { MAX_CONNECTIONS: "1e3" })).toBe("MAX_CONNECTIONS=1e3: must be an integer from 1 to 100000")
    expect(problem([], { HEADERS_TIMEOUT: "2 minutes" })).toBe(
      "HEADERS_TIMEOUT=2 minutes: must be a duration from 1s to 1m"
    )
    expect(problem([], { FEATURE_CONNECTIONS: "0" })).toBe("FEATURE_CONNECTIONS=0: must be an integer from 1 to 1024")
    expect(problem([], { FEATURE_HTTP_CLIENT: "curl" })).toBe("FEATURE_HTTP_CLIENT=curl: must be undici or node")
    expect(problem([], { OTEL_TRACES_SAMPLER: "sometimes" })).toBe(
      "OTEL_TRACES_SAMPLER=sometimes: must be one of always_on, always_off, traceidratio, parentbased_always_on, " +
        "parentbased_always_off, parentbased_traceidratio"
    )
    expect(problem([], { OTEL_TRACES_SAMPLER_ARG: "10%" })).toBe(
      "OTEL_TRACES_SAMPLER_ARG=10%: must be a number from 0 to 1, such as 0.1"
    )
    expect(problem([], { OTEL_TRACES_SAMPLER_ARG: "1.5" })).toBe(
      "OTEL_TRACES_SAMPLER_ARG=1.5: must be a number from 0 to 1, such as 0.1"
    )
    expect(problem([], { OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.1" }))
      .toBe("no error")
    expect(problem([], { FEATURE_MAX_BODY_BYTES: "big" })).toBe(
      "FEATURE_MAX_BODY_BYTES=big: must be an integer from 1 to 16777216"
    )
    expect(problem([], { LOG_WINDOW: "forever" })).toBe(
      `LOG_WINDOW=forever: the window must be a duration of zero or more, such as "10 seconds"`
    )
    expect(
      parse([], { MAX_FANOUTS: "8", MAX_CONNECTIONS: "100", LOG_WINDOW: "0 seconds", KEEP_ALIVE_TIMEOUT: "1 second" })
    )
      .toMatchObject({ _tag: "Embedded" })
    // Every bad variable at once, still in one line.
    expect(problem([], { FEATURE_RETRIES: "9", FEATURE_TIMEOUT: "soon" })).toMatch(
      /^FEATURE_RETRIES=9: .*; FEATURE_TIMEOUT=soon: [^\n]*$/
    )
    expect(parse([], { REQUIRED_FEATURES: "payments, listings", FEATURE_RETRIES: "5", FEATURE_TIMEOUT: "2 seconds" }))
      .toMatchObject({ _tag: "Embedded" })
  })

  it("takes PORT=0 (any free port) with --external, and names what --external needs and does not have", () => {
    expect(parse(["--external"], { PORT: "0", ...featureUrls })).toMatchObject({ _tag: "External" })
    expect(problem(["--external"], { PORT: "abc", ...featureUrls })).toBe(
      "PORT=abc: port must be an integer from 0 to 65535"
    )
    expect(problem(["--external"], { ...featureUrls, REQUIRED_FEATURES: "bogus" })).toMatch(
      /^REQUIRED_FEATURES=bogus: "bogus" is not a feature/
    )
    const { PAYMENTS_URL: _, ...withoutPayments } = featureUrls
    expect(problem(["--external"], withoutPayments)).toBe(
      "--external needs PAYMENTS_URL (the base URL of each feature service)"
    )
  })

  it("names an empty or malformed HOST, and a <FEATURE>_URL that is not an http(s) URL", () => {
    expect(parse(["--external"], { ...featureUrls, HOST: "::1" })).toMatchObject({ _tag: "External" })
    expect(parse(["--external"], { ...featureUrls, HOST: "api.internal" })).toMatchObject({ _tag: "External" })
    // Empty, `HOST` would have the server listen on every interface.
    expect(problem(["--external"], { ...featureUrls, HOST: "" })).toBe(
      "HOST=: host must be an IP address or a host name, such as 127.0.0.1"
    )
    expect(problem(["--external"], { ...featureUrls, HOST: "bad host" })).toMatch(/^HOST=bad host: host must be/)
    for (const url of ["notaurl", "ftp://10.0.0.7", ""]) {
      expect(problem(["--external"], { ...featureUrls, LISTINGS_URL: url })).toBe(
        `LISTINGS_URL=${url}: must be an absolute http:// or https:// URL, such as http://127.0.0.1:4318`
      )
    }
  })

  it("names an OTEL_EXPORTER_OTLP_ENDPOINT that is not an http(s) URL", () => {
    for (const endpoint of ["notaurl", ""]) {
      expect(problem([], { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint })).toBe(
        `OTEL_EXPORTER_OTLP_ENDPOINT=${endpoint}: must be an absolute http:// or https:// URL, such as ` +
          `http://127.0.0.1:4318`
      )
    }
    expect(parse([], { OTEL_EXPORTER_OTLP_ENDPOINT: "https://collector:4318" })).toMatchObject({ trace: "otlp" })
  })

  it("refuses a flag given twice, rather than keeping one of them", () => {
    expect(problem(["--port=3001", "--port=0"])).toBe("--port=0: --port is given twice")
    expect(problem(["--seed=1", "--seed=2"])).toBe("--seed=2: --seed is given twice")
    expect(problem(["--payments.errorRate=0.1", "--payments.errorRate=0.2"])).toBe(
      "--payments.errorRate=0.2: --payments.errorRate is given twice"
    )
    // The same setting for two targets is two flags.
    expect(parse(["--payments.errorRate=0.1", "--all.errorRate=0.2"])).toMatchObject({ _tag: "Embedded" })
  })

  it("refuses flags --external would ignore", () => {
    expect(problem(["--external", "--port=3000"])).toBe(
      "--port=3000 is not used with --external (no simulators run; the API listens on PORT and HOST)"
    )
    expect(problem(["--external", "--payments.errorRate=1"])).toMatch(
      /^--payments\.errorRate=1 is not used with --external/
    )
  })

  it("says every problem in one line", () => {
    const bad = [
      ["--port=abc"],
      ["--payments.errorRate=2"],
      ["--foo"],
      ["--config=/nonexistent"],
      ["--seed=x"],
      ["--workers=0"]
    ]
    for (const argv of bad) expect(problem(argv), argv[0]).not.toMatch(/\n/)
    expect(problem(["--external"])).not.toMatch(/\n/)
  })
})

describe("npm run serve", () => {
  const root = fileURLToPath(new URL("../../", import.meta.url))

  /** Runs `scripts/serve.ts` as `npm run serve` does, with `env` added to this process's environment. */
  const serve = (argv: ReadonlyArray<string>, env: Record<string, string>) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ["--import", "tsx", "scripts/serve.ts", ...argv],
        // The time-out only ends a server that should never have started.
        { cwd: root, env: { ...process.env, ...env }, timeout: 60_000 },
        (error, stdout, stderr) => resolve({ code: error === null ? 0 : error.code as number | null, stdout, stderr })
      )
    })

  it("exits with code 1 and one line when the port is taken", async () => {
    const taken = Net.createServer()
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve))
    const port = (taken.address() as Net.AddressInfo).port
    try {
      const result = await serve([`--port=${port}`, "--workers=1"], {})
      expect(result.code).toBe(1)
      expect(result.stderr).toBe(`serve: cannot listen: listen EADDRINUSE: address already in use 127.0.0.1:${port}\n`)
    } finally {
      await new Promise((resolve) => taken.close(resolve))
    }
  }, 60_000)

  it("exits with code 2 and one line for a bad environment variable, having started nothing", async () => {
    const result = await serve(["--port=0"], { REQUIRED_FEATURES: "bogus" })
    expect(result).toEqual({
      code: 2,
      stdout: "",
      stderr: `serve: REQUIRED_FEATURES=bogus: "bogus" is not a feature (the features are ${features.join(", ")})\n`
    })
  }, 60_000)
})
