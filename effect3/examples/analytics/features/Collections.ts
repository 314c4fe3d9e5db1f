/**
 * Client of the collections feature service (`GET /customers/:id/usage`), configured by `COLLECTIONS_URL`.
 */
import { Context, Data, Layer } from "effect"
import * as FeatureClient from "./FeatureClient.js"

export class CollectionsError extends Data.TaggedError("CollectionsError")<FeatureClient.ErrorFields> {}

export class Collections
  extends Context.Tag("analytics/Collections")<Collections, FeatureClient.FeatureClient<CollectionsError>>()
{}

export const CollectionsLive = Layer.effect(
  Collections,
  FeatureClient.make("collections", (fields) => new CollectionsError(fields))
)
