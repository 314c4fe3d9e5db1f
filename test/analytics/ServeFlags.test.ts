/**
 * The command line of `npm run serve`, parsed without starting anything: what each flag gives, and the one line a
 * bad flag gets instead of a stack trace.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { fileURLToPath } from "node:url"
import * as ServeFlags from "../../examples/analytics/ServeFlags.js"
import * as Simulator from "../../examples/analytics/Simulator.js"

const parse = (argv: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Either.getOrThrow(ServeFlags.parse(argv, env))

const problem = (argv: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Either.flip(ServeFlags.parse(argv, env)).pipe(
    Either.map((error) => error.message),
    Either.getOrElse(() => "no error")
  )

describe("ServeFlags.parse", () => {
  it("starts the simulators from the config file, the API on port 3000, without tracing, when given nothing", () => {
    expect(parse([])).toEqual({
      _tag: "Embedded",
      port: 3000,
      simulators: Either.getOrThrow(Simulator.applyFlags(Simulator.loadConfig(), [])),
      trace: "off",
      otlpEndpoint: "http://127.0.0.1:4318"
    })
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

  it("starts no simulators with --external", () => {
    expect(parse(["--external", "--trace=console"])).toEqual({
      _tag: "External",
      trace: "console",
      otlpEndpoint: "http://127.0.0.1:4318"
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
      "--payments.errorRate=2: errorRate must be a number between 0 and 1"
    )
    expect(problem(["--calendar.crash=yes"])).toBe("--calendar.crash=yes: crash must be true or false")
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
    expect(problem([`--config=${packageJson}`])).toMatch(new RegExp(`^--config=${packageJson}: seed: `))
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
    const bad = [["--port=abc"], ["--payments.errorRate=2"], ["--foo"], ["--config=/nonexistent"], ["--seed=x"]]
    for (const argv of bad) expect(problem(argv), argv[0]).not.toMatch(/\n/)
  })
})
