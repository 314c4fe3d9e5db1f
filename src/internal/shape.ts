/**
 * The shapes tasks come in — a tuple, an iterable or a struct of effects, or `forEach`'s items and function — read
 * into one list of tasks with a key and a label each, and the results put back into the same shape.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Predicate from "effect/Predicate"
import { InvalidOptionError } from "../FanOutError.js"
import type * as Outcome from "../Outcome.js"
import type { CallbackTask } from "./engine/run.js"
import { names } from "./options.js"
import { show } from "./show.js"

type AnyEffect = Effect.Effect<any, any, any>

/** A fan-out's tasks, whatever shape they came in. */
export interface Shape {
  readonly struct: boolean
  /** One per task: its struct key or index. */
  readonly keys: ReadonlyArray<Outcome.Key>
  /** Task `index`, asked for once, when it starts (`forEach` makes its tasks then); a throw is that task's defect. */
  readonly task: (index: number) => AnyEffect
  /** Known up front, except the labels `forEach`'s tasks carry (`labeled`), which are filled in as they start. */
  readonly labels: Array<string | undefined>
  /** The Promise facade's tasks (see `callbacks.ts`): they run as they are, never wrapped by `prepare`. */
  readonly callbacks?: ((index: number) => Exit.Exit<unknown, unknown> | CallbackTask) | undefined
}

/**
 * The label of each labeled task, or why `labeled` was misused (a non-Effect, a label that is not a string): a
 * fan-out reports that before anything runs, as it does a non-Effect task, rather than as that task's defect.
 */
const labels = new WeakMap<object, string | InvalidOptionError>()
/** Whether `labeled` was ever called: until then no task has a label to look up. */
let anyLabeled = false

/** Names a task: a fresh effect, so that one effect value used twice can carry two labels. */
export const labeled = <A, E, R>(effect: Effect.Effect<A, E, R>, label: string): Effect.Effect<A, E, R> => {
  anyLabeled = true
  const invalid = typeof label !== "string"
    ? new InvalidOptionError({ option: "label", reason: `must be a string, got ${show(label)}` })
    : !Effect.isEffect(effect)
    ? notAnEffect("tasks", `labeled(${JSON.stringify(label)}) was given a non-Effect`, effect)
    : undefined
  if (invalid !== undefined) {
    const misused = Effect.die(invalid)
    labels.set(misused, invalid)
    return misused
  }
  const wrapped = Effect.suspend(() => effect)
  labels.set(wrapped, label)
  return wrapped
}

/** The label `labeled` gave `effect`, if any; throws what was wrong when `labeled` was misused. */
const labelOf = (effect: object): string | undefined => {
  if (!anyLabeled) return undefined
  const label = labels.get(effect)
  if (typeof label === "object") throw label
  return label
}

const notAnEffect = (option: string, what: string, value: unknown) =>
  new InvalidOptionError({ option, reason: `${what}: ${show(value)}` })

/**
 * Whether the first argument of a dual combinator is its tasks (data-first) rather than its options (data-last).
 * Options never hold effects, and only hold option names: a record with an effect, with none at all (the empty
 * struct) or with a key that is not an option name is tasks, and so is anything that is neither a record nor
 * `undefined`, so that bad input is reported as bad tasks rather than taken for options.
 */
export const isTasks = (u: unknown): boolean => {
  if (u === undefined) return false
  if (!Predicate.isObject(u) || Array.isArray(u) || Predicate.isIterable(u) || Effect.isEffect(u)) return true
  const record = u as Record<string, unknown>
  const keys = Object.keys(record)
  return keys.length === 0 || keys.some((key) => Effect.isEffect(record[key]) || !names.has(key))
}

/** Reads tasks given as a tuple, an iterable or a struct of effects. */
export const shapeOf = (input: unknown): Shape => {
  if (Predicate.isIterable(input) && typeof input !== "string") {
    const effects = Array.from(input as Iterable<unknown>)
    const keys: Array<number> = new Array(effects.length)
    const taskLabels: Array<string | undefined> = new Array(effects.length)
    for (let i = 0; i < effects.length; i++) {
      const effect = effects[i]
      if (!Effect.isEffect(effect)) throw notAnEffect("tasks", `entry ${i} is not an Effect`, effect)
      keys[i] = i
      taskLabels[i] = labelOf(effect)
    }
    return { struct: false, keys, task: (i) => effects[i] as AnyEffect, labels: taskLabels }
  }
  if (Predicate.isObject(input) && !Effect.isEffect(input) && typeof input !== "function") {
    const record = input as Record<string, unknown>
    const keys = Object.keys(record)
    const effects: Array<AnyEffect> = new Array(keys.length)
    const taskLabels: Array<string> = new Array(keys.length)
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!
      const effect = record[key]
      if (!Effect.isEffect(effect)) throw notAnEffect("tasks", `entry ${JSON.stringify(key)} is not an Effect`, effect)
      effects[i] = effect
      taskLabels[i] = labelOf(effect) ?? key
    }
    return { struct: true, keys, task: (i) => effects[i]!, labels: taskLabels }
  }
  throw new InvalidOptionError({
    option: "tasks",
    reason: `must be a tuple, an iterable or a struct of Effects, got ${show(input)}`
  })
}

/**
 * The shape of `forEach(items, f)`. `f` is called when an item's task starts, as `Effect.forEach` and p-map do: an item
 * that never starts (a fail-fast fan-out stopped first) never calls it, and the tasks not started yet cost nothing. A
 * throw inside `f`, or a non-Effect returned by it, ends that item's task as a defect.
 */
export const shapeOfForEach = <X>(
  items: Iterable<X>,
  f: (item: X, index: number) => AnyEffect,
  label: ((item: X, index: number) => string) | undefined
): Shape => {
  if (typeof items !== "string" && !Predicate.isIterable(items)) {
    throw new InvalidOptionError({ option: "items", reason: `must be an iterable, got ${show(items)}` })
  }
  if (!Predicate.isFunction(f)) {
    throw new InvalidOptionError({ option: "f", reason: `must be a function, got ${show(f)}` })
  }
  const list = Array.from(items)
  const keys: Array<number> = new Array(list.length)
  const taskLabels: Array<string | undefined> = new Array(list.length)
  for (let i = 0; i < list.length; i++) {
    keys[i] = i
    if (label !== undefined) {
      const name: unknown = label(list[i]!, i)
      if (typeof name !== "string") {
        throw new InvalidOptionError({
          option: "label",
          reason: `must return a string, returned ${show(name)} for item ${i}`
        })
      }
      taskLabels[i] = name
    }
  }
  const task = (i: number): AnyEffect => {
    const effect: unknown = f(list[i]!, i)
    if (!Effect.isEffect(effect)) throw notAnEffect("f", `returned a non-Effect for item ${i}`, effect)
    // A misused `labeled` returned here dies as this item's task, as a non-Effect does; it has no label to show.
    const own = label === undefined ? labels.get(effect) : undefined
    if (typeof own === "string") taskLabels[i] = own
    return effect as AnyEffect
  }
  return { struct: false, keys, task, labels: taskLabels }
}

/** Puts one value per task back into the tasks' shape. */
export const rebuild = (shape: Shape, values: ReadonlyArray<unknown>): any => {
  if (!shape.struct) return values
  const out: Record<string, unknown> = {}
  for (let i = 0; i < shape.keys.length; i++) out[shape.keys[i] as string] = values[i]
  return out
}
