import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * The import graph of src/ and client/, read from the sources: every arrow points down the
 * layers of docs/design.md ("Where things live"), and no file reaches itself through its
 * imports. A new arrow that runs up, or a new circle, fails here with the files named.
 */
const root = fileURLToPath(new URL("../..", import.meta.url));

/** Which parts each part may import (besides itself). Read top to bottom: lower layers first. */
const ALLOWED: Record<string, readonly string[]> = {
  "src/domain": [],
  "src/contract": ["src/domain"],
  "src/lifecycle.ts": [],
  "src/exit-codes.ts": [],
  "src/socket-errors.ts": [],
  "src/token-expiry.ts": [],
  "src/version.ts": [],
  "src/tracing.ts": [],
  "src/config.ts": ["src/domain", "src/exit-codes.ts"],
  "src/auth": ["src/domain"],
  "src/token-connections.ts": ["src/auth"],
  "src/store": ["src/domain", "src/lifecycle.ts"],
  "src/cluster": ["src/config.ts", "src/store", "src/lifecycle.ts"],
  "src/engine": ["src/domain", "src/store", "src/cluster", "src/lifecycle.ts", "src/tracing.ts"],
  "src/observability": ["src/domain", "src/store", "src/engine", "src/tracing.ts"],
  // The doors and reactors stand side by side on the engine: none imports another.
  "src/reactors": ["src/domain", "src/store", "src/cluster", "src/engine", "src/config.ts", "src/lifecycle.ts", "src/tracing.ts"],
  "src/collab": ["src/domain", "src/contract", "src/store", "src/cluster", "src/engine", "src/config.ts", "src/auth", "src/lifecycle.ts", "src/socket-errors.ts", "src/token-expiry.ts", "src/token-connections.ts"],
  "src/api": ["src/domain", "src/store", "src/cluster", "src/engine", "src/config.ts", "src/auth", "src/lifecycle.ts", "src/socket-errors.ts", "src/token-expiry.ts", "src/token-connections.ts", "src/tracing.ts", "src/mcp"],
  // Start-up and its failures: what server.ts and cli.ts run before and around the service.
  "src/startup": ["src/config.ts", "src/exit-codes.ts", "src/store", "client:type"],
  "src/server.ts": [
    "src/domain", "src/store", "src/cluster", "src/engine", "src/config.ts", "src/auth", "src/lifecycle.ts",
    "src/observability", "src/reactors", "src/collab", "src/api", "src/exit-codes.ts", "src/socket-errors.ts", "src/token-connections.ts", "src/startup", "src/tracing.ts", "src/version.ts",
  ],
  // Operator commands and MCP tools: clients of a running server through the SDK, and the
  // database commands (migrate, rebuild-projections) on the store.
  // The tools take their client as a parameter: the SDK's (turnqueue mcp) or the server's own
  // procedures (/mcp, from src/api), so they import neither door.
  "src/mcp": ["client:type", "src/domain"],
  "src/cli": ["client", "src/domain", "src/config.ts", "src/store", "src/mcp", "src/exit-codes.ts", "src/version.ts"],
  "src/cli.ts": ["src/cli", "src/domain", "src/config.ts", "src/auth", "src/server.ts", "client", "src/exit-codes.ts", "src/startup"],
  // The SDK runs far from the server: pure modules only, and the router as a type.
  client: ["src/domain", "src/contract", "src/api:type"],
  "client/web": ["client", "src/domain", "src/contract"],
};

const partOf = (file: string): string => {
  const [top, second] = path.relative(root, file).split(path.sep);
  if (top === "src") return second.endsWith(".ts") ? `src/${second}` : `src/${second}`;
  return second === "web" ? "client/web" : "client";
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return ["generated", "dist", "node_modules"].includes(entry.name) ? [] : sources(full);
    return entry.name.endsWith(".ts") ? [full] : [];
  });
}

interface Import {
  from: string;
  to: string;
  typeOnly: boolean;
}

function importsOf(file: string): Import[] {
  const text = readFileSync(file, "utf8");
  const found: Import[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?[^;]*?\bfrom\s+"(\.{1,2}\/[^"]+)";/gms)) {
    let to = path.resolve(path.dirname(file), m[2]!.replace(/\.js$/, ".ts"));
    if (!existsSync(to) && existsSync(to.replace(/\.ts$/, "/index.ts"))) to = to.replace(/\.ts$/, "/index.ts");
    found.push({ from: file, to, typeOnly: Boolean(m[1]) });
  }
  return found;
}

const files = [...sources(path.join(root, "src")), ...sources(path.join(root, "client"))];
const imports = files.flatMap(importsOf);

describe("the import graph of src/ and client/", () => {
  it("points only down the layers", () => {
    const upward = imports.flatMap(({ from, to, typeOnly }) => {
      const a = partOf(from);
      const b = partOf(to);
      if (a === b) return [];
      const allowed = ALLOWED[a];
      if (!allowed) return [`${path.relative(root, from)}: part ${a} has no place in the layers`];
      if (allowed.includes(b) || (typeOnly && allowed.includes(`${b}:type`))) return [];
      return [`${path.relative(root, from)} → ${path.relative(root, to)}`];
    });
    expect(upward).toEqual([]);
  });

  it("has no circle", () => {
    const next = new Map<string, string[]>();
    for (const { from, to } of imports) next.set(from, [...(next.get(from) ?? []), to]);
    const circles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const trail: string[] = [];
    const visit = (file: string) => {
      state.set(file, "open");
      trail.push(file);
      for (const to of next.get(file) ?? []) {
        if (state.get(to) === "open") circles.push([...trail.slice(trail.indexOf(to)), to].map((f) => path.relative(root, f)).join(" → "));
        else if (!state.has(to)) visit(to);
      }
      trail.pop();
      state.set(file, "done");
    };
    for (const file of files) if (!state.has(file)) visit(file);
    expect(circles).toEqual([]);
  });

  it("reads every import (the scan is not blind)", () => {
    expect(files.length).toBeGreaterThan(50);
    expect(imports.some((i) => partOf(i.from) === "src/server.ts" && partOf(i.to) === "src/engine")).toBe(true);
  });
});
