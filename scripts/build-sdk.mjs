#!/usr/bin/env node
// Builds the SDK package (packages/sdk/dist): ESM JavaScript bundled by esbuild (the SDK's
// own modules and the few pure server helpers it uses, such as the order keys; every npm
// package stays an import) and `.d.ts` declarations emitted by tsc. tsc alone cannot bundle
// the server helpers, and the declaration bundlers (tsup's dts, rollup-plugin-dts) need the
// TypeScript 5 compiler API, which TypeScript 7 does not have.
import { spawnSync } from "node:child_process";
import { cp, readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const sdk = path.join(root, "packages/sdk");
const dist = path.join(sdk, "dist");
const typesOut = path.join(sdk, ".types");
const entries = ["index", "agent"];

await rm(dist, { recursive: true, force: true });
await rm(typesOut, { recursive: true, force: true });

await build({
  absWorkingDir: root,
  entryPoints: entries.map((name) => `client/${name}.ts`),
  outdir: dist,
  bundle: true,
  splitting: true,
  format: "esm",
  // Neither Node nor browser: `ws` and node: imports stay imports, resolved by the app.
  platform: "neutral",
  packages: "external",
  target: "es2022",
  chunkNames: "chunks/[name]-[hash]",
  logLevel: "warning",
});

// tsc emits declarations for every file the SDK's types reach, server modules included;
// only client/*.d.ts ship, and client/router-types.ts keeps them free of server imports.
const tsc = spawnSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", path.join(sdk, "tsconfig.json")], {
  cwd: root,
  encoding: "utf8",
});
// Prisma's generated client has no declarations of its own (TS4094 on its private class
// fields); no shipped file reaches it. Any other diagnostic fails the build.
const problems = `${tsc.stdout}${tsc.stderr}`
  .split("\n")
  .filter((line) => line.trim() && !/^src\/store\/generated\/.*error TS4094:/.test(line));
if (problems.length > 0) {
  process.stderr.write(`${problems.join("\n")}\n`);
  process.exit(1);
}
for (const file of await readdir(path.join(typesOut, "client"))) {
  if (file.endsWith(".d.ts")) await cp(path.join(typesOut, "client", file), path.join(dist, file));
}
await rm(typesOut, { recursive: true, force: true });

// Every relative import of a shipped declaration must be shipped too (nothing of src/).
const shipped = new Set(await readdir(dist));
for (const file of shipped) {
  if (!file.endsWith(".d.ts")) continue;
  const text = await readFile(path.join(dist, file), "utf8");
  for (const [, spec] of text.matchAll(/(?:from\s+|import\()\s*"(\.[^"]*)"/g)) {
    const target = spec.replace(/^\.\//, "").replace(/\.js$/, ".d.ts");
    if (!shipped.has(target)) {
      process.stderr.write(`build-sdk: ${file} imports ${spec}, which the package does not ship\n`);
      process.exit(1);
    }
  }
}
process.stdout.write(`built ${path.relative(root, dist)}: ${[...shipped].sort().join(", ")}\n`);
