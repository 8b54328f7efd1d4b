import { existsSync, readFileSync } from "node:fs";

/**
 * This package's version, from its package.json: one directory up from the sources
 * (src/), two from the build (dist/src/).
 */
export function packageVersion(): string {
  for (const up of ["../package.json", "../../package.json"]) {
    const file = new URL(up, import.meta.url);
    if (!existsSync(file)) continue;
    const manifest = JSON.parse(readFileSync(file, "utf8")) as { name?: string; version?: string };
    if (manifest.name === "turnqueue" && manifest.version) return manifest.version;
  }
  return "unknown";
}
