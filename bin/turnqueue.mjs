#!/usr/bin/env node
// The `turnqueue` command: the compiled server (dist/, made by `npm run build`) run by node
// itself, so SIGTERM and SIGINT reach the server's graceful shutdown directly.
// In a checkout, `npm run dev` runs the TypeScript sources through tsx instead.
import { existsSync } from "node:fs";

const cli = new URL("../dist/src/cli.js", import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write("turnqueue: not built yet: run `npm run build` in the package (or `npm run dev` for the sources)\n");
  process.exit(1);
}
await import(cli.href);
