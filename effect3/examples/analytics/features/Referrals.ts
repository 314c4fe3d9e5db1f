/**
 * Client of the referrals feature service (`GET /customers/:id/usage`), configured by `REFERRALS_URL`.
 */
import { Context, Data, Layer } from "effect"
import * as FeatureClient from "./FeatureClient.js"

export class ReferralsError extends Data.TaggedError("ReferralsError")<FeatureClient.ErrorFields> {}

export class Referrals
  extends Context.Tag("analytics/Referrals")<Referrals, FeatureClient.FeatureClient<ReferralsError>>()
{}

export const ReferralsLive = Layer.effect(
  Referrals,
  FeatureClient.make("referrals", (fields) => new ReferralsError(fields))
)
