// Hocuspocus (@hocuspocus/server) as people deploy it: documents stored in PostgreSQL
// (BENCH_DATABASE_URL; one bytea row per document, written by its debounced onStoreDocument
// and read back by onLoadDocument), or in memory without it. Prints the URL once listening.
import { Server } from "@hocuspocus/server";
import pg from "pg";
import * as Y from "yjs";

const url = process.env.BENCH_DATABASE_URL;
const pool = url ? new pg.Pool({ connectionString: url, max: 10 }) : null;
if (pool) await pool.query(`create table if not exists hocuspocus_documents (name text primary key, data bytea not null)`);

const server = new Server({
  port: 0,
  address: "127.0.0.1",
  quiet: true,
  ...(pool && {
    async onLoadDocument({ documentName, document }) {
      const { rows } = await pool.query(`select data from hocuspocus_documents where name = $1`, [documentName]);
      if (rows[0]) Y.applyUpdate(document, rows[0].data);
      return document;
    },
    async onStoreDocument({ documentName, document }) {
      await pool.query(
        `insert into hocuspocus_documents (name, data) values ($1, $2) on conflict (name) do update set data = excluded.data`,
        [documentName, Buffer.from(Y.encodeStateAsUpdate(document))],
      );
    },
  }),
});
await server.listen();
process.stdout.write(`serving ${server.webSocketURL}\n`);
process.on("SIGTERM", () => {
  void server.destroy().finally(async () => {
    await pool?.end();
    process.exit(0);
  });
});
