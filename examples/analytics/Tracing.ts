/**
 * Where the application's spans go, and which traces are kept. The application uses only `spansIfSampled` (around
 * each usage request): spans are opened anyway (by the HTTP server, `Usage.forCustomer`, each `FanOut` and each
 * feature client) and cost little until a tracer is installed here.
 *
 * - `layerConsole` prints each span as it ends: one line with its trace, name, duration, parent and the attributes
 *   worth reading (the fan-out's outcome counts, each task's outcome and attempts).
 * - `layerOtlp` sends spans to an OpenTelemetry collector over OTLP/HTTP (JSON): `@effect/opentelemetry`'s tracer on
 *   an OpenTelemetry tracer provider whose batch processor flushes every second and when the layer closes.
 *
 * Installing any tracer other than Effect's built-in one also turns on `FanOut`'s per-task spans, so a trace reads:
 * the server's `GET` → `Usage.forCustomer` → `usage.partial` → `listings` → `feature.listings.usage` → the
 * client's `GET`.
 */
import * as OtelTracer from "@effect/opentelemetry/OtelTracer"
import * as OtelResource from "@effect/opentelemetry/Resource"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import type { Sampler } from "@opentelemetry/sdk-trace-base"
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler
} from "@opentelemetry/sdk-trace-base"
import type { Exit } from "effect"
import { Config, Context, Effect, Layer, Option, Result, Tracer } from "effect"
import { variable } from "./Environment.js"

/**
 * A span of another tracer that reports itself to `onEnd` once it has ended. Everything else is delegated, so the
 * ids, parent and timing are the other tracer's.
 */
class ReportingSpan implements Tracer.Span {
  readonly _tag = "Span"
  constructor(readonly span: Tracer.Span, readonly onEnd: (span: Tracer.Span) => void) {}
  get name(): string {
    return this.span.name
  }
  get spanId(): string {
    return this.span.spanId
  }
  get traceId(): string {
    return this.span.traceId
  }
  get parent(): Option.Option<Tracer.AnySpan> {
    return this.span.parent
  }
  get annotations(): Context.Context<never> {
    return this.span.annotations
  }
  get status(): Tracer.SpanStatus {
    return this.span.status
  }
  get attributes(): ReadonlyMap<string, unknown> {
    return this.span.attributes
  }
  get links(): ReadonlyArray<Tracer.SpanLink> {
    return this.span.links
  }
  get sampled(): boolean {
    return this.span.sampled
  }
  get kind(): Tracer.SpanKind {
    return this.span.kind
  }
  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    this.span.end(endTime, exit)
    this.onEnd(this)
  }
  attribute(key: string, value: unknown): void {
    this.span.attribute(key, value)
  }
  event(name: string, startTime: bigint, attributes?: Record<string, unknown>): void {
    this.span.event(name, startTime, attributes)
  }
  addLinks(links: ReadonlyArray<Tracer.SpanLink>): void {
    this.span.addLinks(links)
  }
}

/** `base`'s spans, each passed to `onEnd` when it ends (tests use this to capture spans). */
export const reporting = (base: Tracer.Tracer, onEnd: (span: Tracer.Span) => void): Tracer.Tracer =>
  Tracer.make({
    span: (options) => new ReportingSpan(base.span(options), onEnd),
    ...(base.context === undefined ? {} : { context: base.context })
  })

/** Installs a tracer built on the current one (Effect's built-in tracer) that reports every ended span. */
export const layerReporting = (onEnd: (span: Tracer.Span) => void): Layer.Layer<never> =>
  Layer.effect(Tracer.Tracer, Effect.map(Effect.tracer, (base) => reporting(base, onEnd)))

/** Attributes not worth a console line: headers, the user agent, stack traces, and zero outcome counts. */
const shown = (key: string, value: unknown): boolean =>
  !key.startsWith("http.request.header.") && !key.startsWith("http.response.header.") &&
  key !== "user_agent.original" && key !== "url.full" && key !== "url.scheme" && key !== "code.stacktrace" &&
  !(key.startsWith("fanout.outcome.") && value === 0)

/** logfmt-style: quoted when it holds a space or a quote. */
const text = (value: unknown): string => {
  const plain = typeof value === "string" ? value : JSON.stringify(value)
  return /[\s"]/.test(plain) ? JSON.stringify(plain) : plain
}

/**
 * One line per span, when it ends: `trace=<first 8 hex> <name> <duration> parent=<name> [error] key=value ...` (a
 * child ends before its parent, so a trace reads bottom-up), for example
 * `trace=5f0c2a1b usage.partial 412.3ms parent=Usage.forCustomer fanout.tasks=12 fanout.outcome.Success=11
 * fanout.outcome.Failure=1`.
 */
export const formatSpan = (span: Tracer.Span): string => {
  const parts = [`trace=${span.traceId.slice(0, 8)}`, text(span.name)]
  if (span.status._tag === "Ended") {
    parts.push(`${(Number(span.status.endTime - span.status.startTime) / 1e6).toFixed(1)}ms`)
  }
  const parent = span.parent._tag === "Some" && span.parent.value._tag === "Span" ? span.parent.value.name : "-"
  parts.push(`parent=${text(parent)}`)
  if (span.status._tag === "Ended" && span.status.exit._tag === "Failure") parts.push("error")
  for (const [key, value] of span.attributes) {
    if (shown(key, value)) parts.push(`${key}=${text(value)}`)
  }
  return parts.join(" ")
}

/** Prints every ended span with `write` (one line each, see `formatSpan`). */
export const layerConsole = (write: (line: string) => void = (line) => console.log(line)): Layer.Layer<never> =>
  layerReporting((span) => write(formatSpan(span)))

/** The samplers of OpenTelemetry's `OTEL_TRACES_SAMPLER`, as its SDKs name them. */
const samplerNames = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio"
] as const

/** Which traces are exported: OpenTelemetry's sampler by name, with its ratio for the `traceidratio` ones. */
export interface Sampling {
  readonly sampler: (typeof samplerNames)[number]
  readonly ratio: number
}

/**
 * Which traces `layerOtlp` exports, from OpenTelemetry's own variables: `OTEL_TRACES_SAMPLER` (default
 * `parentbased_always_on`: every trace) and `OTEL_TRACES_SAMPLER_ARG`, the share of traces kept by the `traceidratio`
 * samplers, 0 to 1 (default 1), such as `OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1`
 * for one trace in ten. Exporting every span costs the app 1.4–2.6× its CPU per request (docs/BENCHMARKS.md, "What
 * each choice of the app costs"); a trace not sampled is neither recorded nor sent. Checked by `serve` before it
 * starts, rather than left to the SDK, which would log a bad value and fall back to its default.
 */
export const sampling: Config.Config<Sampling> = Config.all({
  sampler: variable("OTEL_TRACES_SAMPLER", (raw) =>
    (samplerNames as ReadonlyArray<string>).includes(raw) ?
      Result.succeed(raw as Sampling["sampler"]) :
      Result.fail(`must be one of ${samplerNames.join(", ")}`)).pipe(
      Config.withDefault<Sampling["sampler"]>("parentbased_always_on")
    ),
  ratio: variable("OTEL_TRACES_SAMPLER_ARG", (raw) => {
    const ratio = /^\s*(0|1|0?\.\d+|1\.0*)\s*$/.test(raw) ? Number(raw) : NaN
    return Number.isNaN(ratio) ? Result.fail("must be a number from 0 to 1, such as 0.1") : Result.succeed(ratio)
  }).pipe(Config.withDefault(1))
})

/** OpenTelemetry's sampler for `sampling`. */
export const sampler = ({ ratio, sampler }: Sampling): Sampler => {
  const root = sampler.endsWith("always_on") ?
    new AlwaysOnSampler() :
    sampler.endsWith("always_off") ?
    new AlwaysOffSampler() :
    new TraceIdRatioBasedSampler(ratio)
  return sampler.startsWith("parentbased_") ? new ParentBasedSampler({ root }) : root
}

/**
 * Runs `effect` without making spans when the span around it (the HTTP server's, for a request) was not sampled: a
 * trace the sampler dropped at its root then costs nothing below it — no spans for `Usage`, the fan-out, its tasks
 * or the feature calls, which would be made and thrown away (OpenTelemetry only stops a non-sampled span from being
 * recorded and exported; Effect still makes it). The feature calls of such a request send no `traceparent`, so the
 * services decide for themselves. With every trace sampled (the default) or Effect's own tracer, nothing changes.
 */
export const spansIfSampled = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => {
    const around = Context.getOption(fiber.context, Tracer.ParentSpan)
    return Option.isSome(around) && !around.value.sampled ? Effect.withTracerEnabled(effect, false) : effect
  })

/**
 * Exports spans over OTLP/HTTP as JSON to `<endpoint>/v1/traces`, as service `OTEL_SERVICE_NAME` (default
 * `analytics`), the traces `sampling` keeps (see `sampling`; default: read from the environment). A failed export
 * never fails a request: the exporter drops that batch (OpenTelemetry's diagnostics, off by default, say so). As the
 * server stops, the spans still held are sent, waiting at most a second for the collector.
 */
export const layerOtlp = (
  endpoint: string,
  options: { readonly sampling?: Sampling } = {}
): Layer.Layer<OtelTracer.OtelTracer, Config.ConfigError> =>
  OtelTracer.layer.pipe(
    Layer.provide(Layer.effect(
      OtelTracer.OtelTracerProvider,
      Effect.gen(function*() {
        const resource = yield* OtelResource.Resource
        const kept = options.sampling ?? (yield* sampling)
        const exporter = new OTLPTraceExporter({ url: `${endpoint.replace(/\/+$/, "")}/v1/traces` })
        return yield* Effect.acquireRelease(
          Effect.sync(() =>
            new BasicTracerProvider({
              resource,
              sampler: sampler(kept),
              spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1_000 })]
            })
          ),
          // The last spans are sent as the server stops, but an unreachable collector must not hold Ctrl-C for long.
          (provider) =>
            Effect.promise(() => provider.forceFlush().finally(() => provider.shutdown())).pipe(
              Effect.timeoutOrElse({ duration: "1 second", orElse: () => Effect.void })
            )
        )
      })
    )),
    Layer.provide(resource)
  )

/** The OpenTelemetry resource spans and metrics are sent as: service `OTEL_SERVICE_NAME`, default `analytics`. */
export const resource: Layer.Layer<OtelResource.Resource> = Layer.unwrap(Effect.map(
  Config.String("OTEL_SERVICE_NAME").pipe(Config.withDefault("analytics"), Effect.orElseSucceed(() => "analytics")),
  (serviceName) => OtelResource.layer({ serviceName })
))

/** The collector's base URL: `OTEL_EXPORTER_OTLP_ENDPOINT`, default `http://127.0.0.1:4318` (a local collector). */
export const otlpEndpoint: Config.Config<string> = Config.String("OTEL_EXPORTER_OTLP_ENDPOINT").pipe(
  Config.withDefault("http://127.0.0.1:4318")
)
