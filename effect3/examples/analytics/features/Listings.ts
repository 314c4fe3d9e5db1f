/**
 * Client of the listings feature service (`GET /customers/:id/usage`), configured by `LISTINGS_URL`.
 */
import { Context, Data, Layer } from "effect"
import * as FeatureClient from "./FeatureClient.js"

export class ListingsError extends Data.TaggedError("ListingsError")<FeatureClient.ErrorFields> {}

export class Listings
  extends Context.Tag("analytics/Listings")<Listings, FeatureClient.FeatureClient<ListingsError>>()
{}

export const ListingsLive = Layer.effect(
  Listings,
  FeatureClient.make("listings", (fields) => new ListingsError(fields))
)
