/**
 * Shared by the analytics tests: plain HTTP calls (so status codes and raw bodies are what a caller sees) and a
 * logger that keeps what the server logged, to check that details are logged and not sent.
 */
import { Cause, Effect, Logger, References } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

export interface RawResponse {
  readonly status: number
  readonly text: string
  readonly json: any
}

/** `GET url`, or another method. */
export const get = (url: string, method = "GET"): Effect.Effect<RawResponse> =>
  Effect.promise(async (signal) => {
    const response = await fetch(url, { method, signal })
    const text = await response.text()
    let json: unknown = undefined
    try {
      json = JSON.parse(text)
    } catch {
      // Leave `json` undefined: the test asserting on it will say so.
    }
    return { status: response.status, text, json }
  })

/** The body of a 502: the feature that failed, why, after how many attempts. */
export const featureFailedBody = (feature: string, reason: string, attempts = 1) => ({
  _tag: "FeatureFailed",
  feature,
  reason,
  attempts,
  message: `${feature} failed (${reason})`
})

/**
 * What a stack trace looks like in text: a line starting with `at ` after an indent, the line break raw or escaped
 * as JSON writes it inside a string (`"Error: boom\\n    at f (file.js:1:1)"`).
 */
export const stackFrame = /(?:\n|\\n)\s+at /

export interface CapturedLog {
  /** `INFO`, `WARN`, `ERROR`, ... */
  readonly level: string
  readonly message: string
  readonly annotations: Record<string, unknown>
  readonly cause: string
}

/** A logger that records every entry (message, annotations and pretty cause) instead of printing it. */
export const makeCaptureLogger = () => {
  const entries: Array<CapturedLog> = []
  const logger = Logger.make(({ cause, fiber, logLevel, message }) => {
    entries.push({
      level: logLevel.toUpperCase(),
      message: (Array.isArray(message) ? message : [message]).map(String).join(" "),
      annotations: { ...fiber.getRef(References.CurrentLogAnnotations) },
      cause: cause.reasons.length === 0 ? "" : Cause.pretty(cause)
    })
  })
  return { entries, layer: Logger.layer([logger]) }
}

/** A collector stand-in on 127.0.0.1 port 0: every POST's path and JSON body, answered 200. */
export const collector = Effect.acquireRelease(
  Effect.callback<{ readonly server: ReturnType<typeof createServer>; readonly bodies: Array<any> }>((resume) => {
    const bodies: Array<any> = []
    const server = createServer((request, response) => {
      let body = ""
      request.on("data", (chunk) => (body += chunk))
      request.on("end", () => {
        bodies.push({ path: request.url, json: JSON.parse(body) })
        response.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, bodies })))
  }),
  ({ server }) =>
    Effect.callback<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
).pipe(Effect.map(({ bodies, server }) => ({ bodies, port: (server.address() as AddressInfo).port })))
