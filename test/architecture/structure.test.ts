import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));

describe("scripts/structure.mjs (the README's architecture map names it)", () => {
  it("prints files per directory, the largest functions with their place, and the layers with the domain at the bottom", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ["scripts/structure.mjs", "--top", "5"], { cwd: root });
    expect(stdout).toMatch(/^\| src\/domain \| \d+ \| \d+ \|$/m);
    const largest = stdout.slice(stdout.indexOf("## The 5 largest functions"), stdout.indexOf("## Import graph layers"));
    expect(largest.match(/^\| \d+ \| [^|]+ \| (src|client)\/[\w/.-]+\.ts:\d+ \|$/gm)).toHaveLength(5);
    expect(stdout).toMatch(/^0: .*src\/domain \(→ nothing\)/m);
    expect(stdout).toMatch(/circles between parts: none$/m);
  });
});
