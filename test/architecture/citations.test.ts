import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

/**
 * A reader of this repository can open whatever its comments and documents cite: every
 * repository path they name exists, and none points at a file outside it or at a tracker
 * entry the reader cannot see.
 */
const root = path.resolve(import.meta.dirname, "../..");
const SKIP = new Set(["node_modules", "dist", "generated", ".tmp", "screenshots", "results"]);

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return SKIP.has(entry.name) ? [] : files(full);
    return /\.(ts|mts|mjs|md)$/.test(entry.name) && !entry.name.endsWith(".d.ts") ? [full] : [];
  });
}

const texts = [...["src", "client", "test", "bench", "scripts", "docs"].flatMap((d) => files(path.join(root, d))), path.join(root, "README.md")]
  .map((file) => ({ file: path.relative(root, file), text: readFileSync(file, "utf8") }));

describe("what the repository cites", () => {
  it("reads the sources and documents (the scan is not blind)", () => {
    expect(texts.length).toBeGreaterThan(200);
    expect(texts.some((t) => t.file === "docs/design.md")).toBe(true);
  });

  it("names only repository paths that exist", () => {
    const cited = /\b(?:src|client|test|docs|bench|scripts|prisma)\/[A-Za-z0-9_./-]+\.(?:ts|md|mjs|prisma|json)\b/g;
    const missing = texts.flatMap(({ file, text }) =>
      [...text.matchAll(cited)].map((m) => m[0]).filter((p) => !existsSync(path.join(root, p))).map((p) => `${file}: ${p}`),
    );
    expect(missing).toEqual([]);
  });

  it("points at nothing outside the repository: no ../shared documents, no tracker numbers", () => {
    // This file's own patterns are written so that they do not match themselves.
    const outside = [/\.\.\/shared\//, new RegExp("\\bissues? #?\\d+\\b", "i")];
    const found = texts
      .filter(({ file }) => file !== "test/architecture/citations.test.ts")
      .flatMap(({ file, text }) => outside.filter((re) => re.test(text)).map((re) => `${file}: ${re}`));
    expect(found).toEqual([]);
  });
});
