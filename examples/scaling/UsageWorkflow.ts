/**
 * The usage fan-out as an `effect/workflow` workflow: each feature call is a durable `Activity` (its result journaled
 * under its name, retried on failure, not run again when the workflow resumes), and the fan-out over them is
 * `FanOut.settle`, as in the app. Run it on one process with `WorkflowEngine.layerMemory`, or on a cluster of runners
 * with `ClusterWorkflowEngine.layer` and SQL message storage (docs/SCALING.md).
 *
 * @since 1.0.0
 */
import { Effect, Schema } from "effect"
import { Activity, Workflow, WorkflowEngine } from "effect/workflow"
import { FanOut, Outcome } from "../../src/index.js"

const features = ["listings", "payments", "calendar"] as const

/** One feature service's answer; in the app this is the feature client's call. */
const Panel = Schema.Struct({ feature: Schema.String, count: Schema.Number })

/**
 * The call to one feature service as an activity: at-least-once (a runner that dies mid-call has it run again
 * elsewhere), so the service must tolerate a repeat; once it has succeeded its result is replayed, not re-fetched.
 */
const fetchPanel = (feature: string, customerId: string) =>
  Activity.make({
    name: `fetch-${feature}`,
    success: Panel,
    error: Schema.String,
    execute: feature === "calendar" ?
      Effect.fail(`${feature} is unavailable`) :
      Effect.succeed({ feature, count: customerId.length })
  }).pipe(Activity.retry({ times: 2 }))

/** The workflow: one execution per customer and day (its idempotency key), whoever asks and however often. */
export const UsageWorkflow = Workflow.make("UsageWorkflow", {
  payload: { customerId: Schema.String, day: Schema.String },
  success: Schema.Struct({ panels: Schema.Array(Panel), failed: Schema.Array(Schema.String) }),
  idempotencyKey: ({ customerId, day }) => `${customerId}/${day}`
})

/** The handler: the same settle fan-out as the app, over activities. */
export const UsageWorkflowLive = UsageWorkflow.toLayer(({ customerId }) =>
  FanOut.settle(features.map((feature) => fetchPanel(feature, customerId)), { concurrency: features.length }).pipe(
    Effect.map((outcomes) => ({
      panels: Outcome.successes(outcomes).map((success) => success.value),
      failed: features.filter((_, index) => !Outcome.isSuccess(outcomes[index]!))
    }))
  )
)

/** One process, in memory: what a test or a single node runs; `ClusterWorkflowEngine.layer` for many. */
export const program = UsageWorkflow.execute({ customerId: "c-1042", day: "2026-12-07" }).pipe(
  Effect.provide(UsageWorkflowLive),
  Effect.provide(WorkflowEngine.layerMemory)
)
