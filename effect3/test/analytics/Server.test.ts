/**
 * `Server.layerConfig`, the application as deployed against real feature services (`npm run serve -- --external`):
 * where it listens, from `PORT` and `HOST`.
 */
import { HttpServer } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer } from "effect"
import { features } from "../../examples/analytics/Domain.js"
import * as Embedded from "../../examples/analytics/Embedded.js"
import { configPrefix } from "../../examples/analytics/features/FeatureClient.js"
import * as Server from "../../examples/analytics/Server.js"
import { get, makeCaptureLogger } from "./support.js"

/** `PORT`, `HOST` and every `<FEATURE>_URL`; no feature service is called by these tests. */
const environment = (entries: Record<string, string>) =>
  Layer.setConfigProvider(
    ConfigProvider.fromMap(
      new Map([
        ...features.map((feature) => [`${configPrefix(feature)}_URL`, "http://127.0.0.1:9"] as const),
        ["HOST", "127.0.0.1"],
        ...Object.entries(entries)
      ])
    )
  )

describe("Server.layerConfig", () => {
  it.scopedLive("listens on a free port with PORT=0, as embedded mode does with --port=0, and logs where", () =>
    Effect.gen(function*() {
      const logs = makeCaptureLogger()
      const app = yield* Layer.build(
        Server.layerConfig.pipe(Layer.provide(environment({ PORT: "0" })), Layer.provide(logs.layer))
      )
      const address = Context.get(app, HttpServer.HttpServer).address
      expect(address).toMatchObject({ _tag: "TcpAddress", hostname: "127.0.0.1", port: expect.any(Number) })
      expect(address._tag === "TcpAddress" && address.port).toBeGreaterThan(0)
      const base = yield* Effect.provide(Embedded.apiUrl, app)
      expect(logs.entries.map((entry) => entry.message)).toContain(`Listening on ${base}`)
      expect((yield* get(`${base}/health`)).json).toEqual({ status: "ok" })
    }))

  it.scopedLive("refuses a PORT that is not one, saying what it takes", () =>
    Effect.gen(function*() {
      for (const port of ["abc", "65536", "0x50", "-1", ""]) {
        const error = yield* Effect.flip(
          Layer.build(Server.layerConfig.pipe(Layer.provide(environment({ PORT: port }))))
        )
        expect(error, port).toMatchObject({
          _op: "InvalidData",
          path: ["PORT"],
          message: "port must be an integer from 0 to 65535"
        })
      }
    }))
})
