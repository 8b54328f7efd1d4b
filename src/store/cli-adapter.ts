import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";

const NAME_OID = 19;
const TEXT_OID = 25;

type Result = { fields?: Array<{ dataTypeID: number }> } | undefined;

const asText = <R extends Result>(result: R): R => {
  for (const field of result?.fields ?? []) if (field.dataTypeID === NAME_OID) field.dataTypeID = TEXT_OID;
  return result;
};

/**
 * adapter-pg 6.19 cannot deserialize PostgreSQL's `name` type, which the schema engine's
 * catalog queries return (`prisma migrate deploy` fails with "Column type 'name' could not
 * be deserialized"): report those columns as text. Only the CLI needs this.
 */
class NameAsTextClient extends pg.Client {
  // pg's overloads (promise and callback forms) do not survive an override's signature.
  override query(...args: any[]): any {
    const callback = typeof args.at(-1) === "function" ? (args.pop() as (err: Error | null, res: Result) => void) : null;
    const queryConfig = args[0];
    if (queryConfig && typeof queryConfig === "object" && typeof queryConfig.callback === "function") {
      const inner = queryConfig.callback;
      queryConfig.callback = (err: Error | null, res: Result) => inner(err, asText(res));
      return super.query(queryConfig, ...args.slice(1));
    }
    if (callback) return super.query(args[0], args[1], (err: Error | null, res: Result) => callback(err, asText(res)));
    const result = super.query(args[0], args[1]) as unknown;
    return result instanceof Promise ? result.then(asText) : result;
  }
}

export function cliPostgresAdapter(url: string): PrismaPg {
  return new PrismaPg(new pg.Pool({ connectionString: url, Client: NameAsTextClient }));
}
