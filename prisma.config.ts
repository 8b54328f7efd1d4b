// Config for the Prisma CLI only (generate, migrate diff/deploy). The server applies
// migrations itself at start-up (src/store/migrate.ts), so the CLI is a developer tool.
import path from "node:path";
import { defineConfig } from "prisma/config";
import type { cliPostgresAdapter as cliPostgresAdapterType } from "./src/store/cli-adapter.js";

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: path.join("prisma", "schema.prisma"),
  async adapter() {
    const url = process.env.DATABASE_URL;
    if (url?.startsWith("postgres")) {
      const { cliPostgresAdapter } = await import("./src/store/cli-adapter.js");
      return cliPostgresAdapter(url);
    }
    const { PGlite } = await import("@electric-sql/pglite");
    const { PrismaPGlite } = await import("pglite-prisma-adapter");
    // Without a data directory the CLI works on a throw-away in-memory database (enough
    // for `migrate diff`); never point it at the directory of a running server.
    const dir = process.env.TURNQUEUE_DB_DIR;
    // pglite-prisma-adapter 0.6 is typed against an older @prisma/driver-adapter-utils; the
    // runtime protocol is the same, so only the type needs bridging.
    const adapter = new PrismaPGlite(new PGlite(dir ?? "memory://"));
    return adapter as unknown as Awaited<ReturnType<typeof cliPostgresAdapterType>>;
  },
});
