import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";

const readmePath = fileURLToPath(new URL("../../README.md", import.meta.url));

/**
 * The fenced blocks of one language (```sh, ```ts, ```json…) in the README's section
 * `## <heading>`, in order, each trimmed: what a README test runs as written. A renamed or
 * missing section fails the test with the heading named, instead of running nothing.
 */
export async function readmeBlocks(heading: string, lang: string): Promise<string[]> {
  const readme = await readFile(readmePath, "utf8");
  const start = readme.indexOf(`\n## ${heading}\n`);
  expect(start, `README.md has a "${heading}" section`).toBeGreaterThan(-1);
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(new RegExp("```" + lang + "\\n([\\s\\S]*?)```", "g"))].map((m) => m[1]!.trim());
}
