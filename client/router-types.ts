import type {
  AnyTRPCRouter, TrackedEnvelope, TRPCBuiltRouter, TRPCMutationProcedure, TRPCQueryProcedure, TRPCSubscriptionProcedure,
} from "@trpc/server";
import type { AppRouter as ServerRouter } from "../src/api/router.js";
import type { DocItem, DocMeta } from "../src/contract/document.js";

/*
 * The server's router type, spelled out so that its declaration names no server module.
 * The SDK's published `.d.ts` files then need only @trpc/server's types: not the server's
 * source, its context (services, database) or zod. TypeScript writes a type into a
 * declaration by the alias or property annotation it came from whenever it can, so each
 * helper below rebuilds what it maps (keys renamed to themselves, literal unions boxed and
 * unboxed): the declaration printer then has no server annotation left to reuse.
 */

type Boxed<T> = T extends unknown ? [T] : never;
type Unboxed<T> = T extends [infer X] ? X : never;
/** A union of literals rebuilt member by member, so it is written out rather than named. */
type Scalar<T> = Unboxed<Boxed<T>>;
type Key<K> = K extends string ? (string extends K ? K : `${K}`) : K;

/** JSON-shaped data (inputs and outputs) written out member by member. */
type Plain<T> = [T] extends [string | number | boolean | bigint | null | undefined] ? Scalar<T>
  : T extends readonly (infer E)[] ? Plain<E>[]
  : T extends object
    // An index signature stands apart from the named members: in one object type an
    // optional member would have to fit the index signature's type (zod's catchall allows it).
    ? string extends keyof T
      ? { [K in keyof T as string extends K ? never : Key<K>]: Plain<T[K]> } & { [K in keyof T as string extends K ? K : never]: Plain<T[K]> }
      : { [K in keyof T as Key<K>]: Plain<T[K]> }
  : T;

/** A subscription's events: tracked envelopes keep their shape (the client unwraps them). */
type Streamed<T> = T extends TrackedEnvelope<infer D> ? TrackedEnvelope<Plain<D>> : Plain<T>;
type PlainOutput<T> = T extends AsyncIterable<infer Y, infer R, infer N> ? AsyncIterable<Streamed<Y>, Plain<R>, Plain<N>> : Plain<T>;

type PlainProcedure<P> =
  P extends TRPCQueryProcedure<infer D> ? TRPCQueryProcedure<{ input: Plain<D["input"]>; output: Plain<D["output"]>; meta: object }>
  : P extends TRPCMutationProcedure<infer D> ? TRPCMutationProcedure<{ input: Plain<D["input"]>; output: Plain<D["output"]>; meta: object }>
  : P extends TRPCSubscriptionProcedure<infer D> ? TRPCSubscriptionProcedure<{ input: Plain<D["input"]>; output: PlainOutput<D["output"]>; meta: object }>
  : { [K in keyof P as Key<K>]: PlainProcedure<P[K]> };

declare const server: ServerRouter;
// Written inline (not through an alias) so the declaration shows the result, not the call.
declare function publicRouter<R extends AnyTRPCRouter>(router: R): TRPCBuiltRouter<
  { ctx: object; meta: object; errorShape: Plain<R["_def"]["_config"]["$types"]["errorShape"]>; transformer: false },
  { [K in keyof R["_def"]["record"] as Key<K>]: PlainProcedure<R["_def"]["record"][K]> }
>;
// A function that is never called: importing this module by mistake still runs nothing.
const router = () => publicRouter(server);
/** The server's tRPC router as clients see it: every procedure's input, output and errors. */
export type AppRouter = ReturnType<typeof router>;

// The live document's shapes, written out the same way: the SDK's declarations name no
// module of the contract (whose types reach into the domain and zod).
declare function spelled<T>(): { [K in keyof T as Key<K>]: Plain<T[K]> };
const docItem = () => spelled<DocItem>();
const docMeta = () => spelled<Omit<DocMeta, "threadId">>();
/** One queue item as the thread's shared document holds it. */
export type DocEntry = ReturnType<typeof docItem>;
/** The thread's queue-wide fields in the shared document. */
export type DocQueueMeta = ReturnType<typeof docMeta>;
