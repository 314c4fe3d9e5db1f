/**
 * Client of the payments feature service (`GET /customers/:id/usage`), configured by `PAYMENTS_URL`.
 */
import { Context, Data, Layer } from "effect"
import * as FeatureClient from "./FeatureClient.js"

export class PaymentsError extends Data.TaggedError("PaymentsError")<FeatureClient.ErrorFields> {}

export class Payments
  extends Context.Tag("analytics/Payments")<Payments, FeatureClient.FeatureClient<PaymentsError>>()
{}

export const PaymentsLive = Layer.effect(
  Payments,
  FeatureClient.make("payments", (fields) => new PaymentsError(fields))
)
