/**
 * The load benchmark's plain Node peer: the analytics endpoint as a team without Effect writes it, on `node:http`
 * with a keep-alive agent, `Promise.allSettled` (partial, each call cut at the deadline by an `AbortSignal`) and
 * `Promise.all` + `AbortController` (strict: the first failure aborts the other calls). It answers the benchmark's
 * scenarios (healthy services, one service answering 503) with the same statuses and body shape as the application,
 * and checks its input as the application does, by hand; it decodes the services' JSON without a schema.
 *
 * @since 1.0.0
 */
import { setMaxListeners } from "node:events"
import * as Http from "node:http"
import type { Feature } from "../../../examples/analytics/Features.js"
import { features, pathOf } from "../../../examples/analytics/Features.js"

type Urls = { readonly [F in Feature]: string }

class CallError extends Error {
  constructor(
    readonly feature: Feature,
    readonly reason: "unavailable" | "bad_response" | "deadline",
    message: string
  ) {
    super(message)
  }
}

const agent = new Http.Agent({ keepAlive: true })

const getUsage = (url: string, feature: Feature, customerId: string, signal: AbortSignal) =>
  new Promise<{ readonly count: number; readonly lastUsedAt: string | null }>((resolve, reject) => {
    const request = Http.get(
      `${url}${pathOf(feature, customerId)}`,
      { agent, signal, headers: { accept: "application/json" } },
      (response) => {
        const chunks: Array<Buffer> = []
        response.on("data", (chunk: Buffer) => chunks.push(chunk))
        response.on("error", (error) => reject(new CallError(feature, "unavailable", error.message)))
        response.on("end", () => {
          const status = response.statusCode ?? 0
          if (status < 200 || status >= 300) {
            return reject(new CallError(feature, "unavailable", `${feature} answered ${status}`))
          }
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString("utf8"))
            if (body.customerId !== customerId || body.feature !== feature) throw new Error("answer for another call")
            resolve({ count: body.count, lastUsedAt: body.lastUsedAt })
          } catch (error) {
            reject(new CallError(feature, "bad_response", String(error)))
          }
        })
      }
    )
    request.on("error", (error) =>
      reject(
        signal.aborted ?
          new CallError(feature, "deadline", "aborted") :
          new CallError(feature, "unavailable", error.message)
      ))
  })

const send = (response: Http.ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body)
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) })
  response.end(text)
}

const usagePath = /^\/customers\/(c-[a-z0-9-]{1,32})\/usage$/

/**
 * A server for the endpoint `GET /customers/:id/usage?mode=&deadlineMs=` over the feature services at `urls`.
 *
 * @since 1.0.0
 */
export const make = (urls: Urls): Http.Server =>
  Http.createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost")
    const match = usagePath.exec(url.pathname)
    if (request.method !== "GET" || match === null) return send(response, 404, { _tag: "NotFound" })
    const customerId = match[1]!
    const mode = url.searchParams.get("mode") ?? "partial"
    const rawDeadline = url.searchParams.get("deadlineMs") ?? "1500"
    const deadlineMs = Number(rawDeadline)
    if ((mode !== "partial" && mode !== "strict") || !/^\d+$/.test(rawDeadline) || deadlineMs < 10) {
      return send(response, 400, { _tag: "HttpApiDecodeError", message: "bad input" })
    }
    const startedAt = performance.now()
    const controller = new AbortController()
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(deadlineMs)])
    // One abort listener per call: twelve is no leak, but over Node's default warning threshold of ten.
    setMaxListeners(features.length, signal)
    const calls = features.map((feature) => {
      const callStart = performance.now()
      return getUsage(urls[feature], feature, customerId, signal).then((usage) => ({
        status: "ok",
        feature,
        durationMs: Math.round(performance.now() - callStart),
        attempts: 1,
        usage
      }))
    })
    const answer = (panels: ReadonlyArray<{ readonly status: string }>) =>
      send(response, 200, {
        customerId,
        mode,
        complete: panels.every((panel) => panel.status === "ok"),
        durationMs: Math.round(performance.now() - startedAt),
        panels
      })
    if (mode === "strict") {
      Promise.all(calls).then(answer, (error: CallError) => {
        controller.abort(error)
        Promise.allSettled(calls).then(() =>
          error.reason === "deadline" ?
            send(response, 504, { _tag: "DeadlineExceeded", deadlineMs, pending: [] }) :
            send(response, 502, {
              _tag: "FeatureFailed",
              feature: error.feature,
              reason: error.reason,
              attempts: 1,
              message: `${error.feature} failed (${error.reason})`
            })
        )
      })
    } else {
      Promise.allSettled(calls).then((settled) =>
        answer(settled.map((result, i) => {
          if (result.status === "fulfilled") return result.value
          const error = result.reason as CallError
          return error.reason === "deadline" ?
            { status: "timed_out", feature: features[i], durationMs: deadlineMs, attempts: 1, reason: "deadline" } :
            { status: "failed", feature: features[i], durationMs: 0, attempts: 1, reason: error.reason }
        }))
      )
    }
  })
