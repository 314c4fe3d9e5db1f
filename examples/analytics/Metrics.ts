/**
 * Where the application's metrics go. `layerOtlp` exports every metric the application records over OTLP/HTTP (JSON)
 * to `<endpoint>/v1/metrics`: the fan-outs' own (`fanout_task_outcomes_total` by outcome, `fanout_task_duration_millis`)
 * and the attempt metrics, which it turns on (`Attempt.layerMetrics`): `fanout_attempts_started_total` by type
 * (`original`, `retry`, `hedge`), `fanout_task_retries`, `fanout_task_hedges`, `fanout_retry_delay_millis` and
 * `fanout_attempts_refused_total` by reason (`budget`, `limit`, `deadline`) — each with the `fanout` attribute
 * (`usage.partial`, `usage.strict`). `@effect/opentelemetry`'s metric producer feeds an OpenTelemetry periodic reader
 * that exports every `OTEL_METRIC_EXPORT_INTERVAL` milliseconds (OpenTelemetry's own variable, default 60000), and
 * once more as the server stops, waiting at most a second for the collector. A failed export never fails a request.
 */
import * as OtelMetrics from "@effect/opentelemetry/OtelMetrics"
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http"
import { PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { Config, Effect, Layer, Result } from "effect"
import { Attempt } from "../../src/index.js"
import { variable } from "./Environment.js"
import * as Tracing from "./Tracing.js"

/**
 * How often metrics are exported, in milliseconds: `OTEL_METRIC_EXPORT_INTERVAL`, 100 to 3600000, default 60000
 * (OpenTelemetry's default). Checked by `serve` before it starts.
 */
export const exportInterval: Config.Config<number> = variable("OTEL_METRIC_EXPORT_INTERVAL", (raw) => {
  const millis = /^\d{1,7}$/.test(raw) ? Number(raw) : NaN
  return millis >= 100 && millis <= 3_600_000
    ? Result.succeed(millis)
    : Result.fail("must be a whole number of milliseconds from 100 to 3600000")
}).pipe(Config.withDefault(60_000))

/**
 * Exports the application's metrics, the attempt metrics turned on, to `<endpoint>/v1/metrics` every
 * `options.intervalMillis` (default: `exportInterval`), as the spans' service (`Tracing.resource`).
 */
export const layerOtlp = (
  endpoint: string,
  options: { readonly intervalMillis?: number } = {}
): Layer.Layer<never, Config.ConfigError> =>
  Layer.unwrap(Effect.gen(function*() {
    const intervalMillis = options.intervalMillis ?? (yield* exportInterval)
    const reader = () =>
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: `${endpoint.replace(/\/+$/, "")}/v1/metrics` }),
        exportIntervalMillis: intervalMillis,
        exportTimeoutMillis: Math.min(intervalMillis, 30_000)
      })
    return Layer.mergeAll(
      OtelMetrics.layer(reader, { shutdownTimeout: "1 second" }).pipe(Layer.provide(Tracing.resource)),
      Attempt.layerMetrics
    )
  }))
