/**
 * `Server.layerConfig`, the application as deployed against real feature services (`npm run serve -- --external`):
 * where it listens, from `PORT` and `HOST`.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
import { problems } from "../../examples/analytics/Environment.js"
import { configPrefix, features } from "../../examples/analytics/Features.js"
import * as Embedded from "../../examples/analytics/harness/Embedded.js"
import * as Server from "../../examples/analytics/Server.js"
import { get, makeCaptureLogger } from "./support.js"

/** `PORT`, `HOST` and every `<FEATURE>_URL`; no feature service is called by these tests. */
const environment = (entries: Record<string, string>) =>
  ConfigProvider.layer(
    ConfigProvider.fromEnv({
      env: {
        ...Object.fromEntries(features.map((feature) => [`${configPrefix(feature)}_URL`, "http://127.0.0.1:9"])),
        HOST: "127.0.0.1",
        ...entries
      },
      preserveEmptyStrings: true
    })
  )

describe("Server.layerConfig", () => {
  it.live("listens on a free port with PORT=0, as embedded mode does with --port=0, and logs where", () =>
    Effect.gen(function*() {
      const logs = makeCaptureLogger()
      const app = yield* Layer.build(
        Server.layerConfig.pipe(Layer.provide(environment({ PORT: "0" })), Layer.provide(logs.layer))
      )
      const address = Context.get(app, HttpServer.HttpServer).address
      expect(address._tag).toBe("InetAddressV4")
      expect(address._tag === "InetAddressV4" && address.port).toBeGreaterThan(0)
      const base = yield* Effect.provide(Embedded.apiUrl, app)
      expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      expect(logs.entries.map((entry) => entry.message)).toContain(`Listening on ${base}`)
      expect((yield* get(`${base}/health`)).json).toEqual({ status: "ok" })
    }))

  it.live("refuses a PORT that is not one, saying what it takes", () =>
    Effect.gen(function*() {
      for (const port of ["abc", "65536", "0x50", "-1", ""]) {
        const error = yield* Effect.flip(
          Layer.build(Server.layerConfig.pipe(Layer.provide(environment({ PORT: port }))))
        )
        expect(error._tag, port).toBe("ConfigError")
        expect(error._tag === "ConfigError" && problems(error), port).toEqual([
          { _tag: "Invalid", name: "PORT", value: port, takes: "port must be an integer from 0 to 65535" }
        ])
      }
    }))
})
