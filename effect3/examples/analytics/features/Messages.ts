/**
 * Client of the messages feature service (`GET /customers/:id/usage`), configured by `MESSAGES_URL`.
 */
import { Context, Data, Layer } from "effect"
import * as FeatureClient from "./FeatureClient.js"

export class MessagesError extends Data.TaggedError("MessagesError")<FeatureClient.ErrorFields> {}

export class Messages
  extends Context.Tag("analytics/Messages")<Messages, FeatureClient.FeatureClient<MessagesError>>()
{}

export const MessagesLive = Layer.effect(
  Messages,
  FeatureClient.make("messages", (fields) => new MessagesError(fields))
)
