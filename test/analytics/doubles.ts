/**
 * `Layer.succeed` doubles of the twelve feature clients, derived from the feature table, so the fan-out and the
 * handlers can be tested without any network: each feature answers with a fixed usage unless the test gives it its
 * own behaviour.
 */
import { Effect, Layer } from "effect"
import type { CustomerId } from "../../examples/analytics/Domain.js"
import * as FeatureClient from "../../examples/analytics/FeatureClient.js"
import type { Feature } from "../../examples/analytics/Features.js"
import { features, FeatureUsage } from "../../examples/analytics/Features.js"

export type Behaviour = (
  customerId: CustomerId,
  fail: (reason: FeatureClient.Reason) => Effect.Effect<never, FeatureClient.FeatureError>
) => Effect.Effect<FeatureUsage, unknown>

export const usageOf = (feature: Feature, customerId: string) =>
  new FeatureUsage({ customerId, feature, count: feature.length, lastUsedAt: null })

/** All twelve clients as doubles, failing with the real clients' typed errors; `behaviours` replaces some answers. */
export const doubles = (behaviours: { readonly [F in Feature]?: Behaviour } = {}): Layer.Layer<FeatureClient.Clients> =>
  Layer.mergeAll(
    ...features.map((feature) => {
      const ErrorClass = FeatureClient.errors[feature] as FeatureClient.ErrorClass<Feature>
      const fail = (reason: FeatureClient.Reason) =>
        Effect.fail(new ErrorClass({ feature, reason, message: `${feature} double failed: ${reason}` }))
      const behaviour = behaviours[feature]
      const client: FeatureClient.FeatureClient = {
        feature,
        usage: (customerId) =>
          behaviour === undefined ?
            Effect.succeed(usageOf(feature, customerId)) :
            behaviour(customerId, fail) as Effect.Effect<FeatureUsage, FeatureClient.FeatureError>
      }
      return Layer.succeed(FeatureClient.services[feature] as any, client) as Layer.Layer<FeatureClient.Clients>
    }) as [Layer.Layer<FeatureClient.Clients>]
  )
