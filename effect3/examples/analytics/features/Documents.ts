/**
 * Client of the documents feature service (`GET /customers/:id/usage`), configured by `DOCUMENTS_URL`.
 */
import { Context, Data, Layer } from "effect"
import * as FeatureClient from "./FeatureClient.js"

export class DocumentsError extends Data.TaggedError("DocumentsError")<FeatureClient.ErrorFields> {}

export class Documents
  extends Context.Tag("analytics/Documents")<Documents, FeatureClient.FeatureClient<DocumentsError>>()
{}

export const DocumentsLive = Layer.effect(
  Documents,
  FeatureClient.make("documents", (fields) => new DocumentsError(fields))
)
