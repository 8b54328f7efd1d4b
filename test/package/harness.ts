import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

const exec = promisify(execFile);

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; never throws for a non-zero exit (the test asserts it). */
export async function runOnce(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<Ran> {
  try {
    const { stdout, stderr } = await exec(command, args, { cwd: options.cwd, env: options.env ?? process.env, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === "number" ? failed.code : 1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

async function mustRun(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<string> {
  const ran = await runOnce(command, args, options);
  if (ran.code !== 0) throw new Error(`${command} ${args.join(" ")} failed (${ran.code}):\n${ran.stdout}\n${ran.stderr}`);
  return ran.stdout;
}

/** A temp dir removed by the returned function. */
export async function tempDir(prefix: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** What a checkout holds that a build makes or a clone lacks: not copied. */
const NOT_COPIED = new Set([".git", "node_modules", "dist", ".tmp", ".turnqueue", "test-artifacts"]);

/**
 * A copy of this checkout (sharing its node_modules) in which to build and pack: a build in
 * the checkout itself would replace dist/ and the web board under tests that serve them.
 */
export async function checkoutCopy(into: string): Promise<string> {
  const copy = path.join(into, "checkout");
  await cp(repoRoot, copy, {
    recursive: true,
    filter: (source) => {
      const relative = path.relative(repoRoot, source);
      return !relative.split(path.sep).some((part) => NOT_COPIED.has(part)) && !/\.tgz$/.test(relative);
    },
  });
  await symlink(path.join(repoRoot, "node_modules"), path.join(copy, "node_modules"), "dir");
  return copy;
}

/**
 * `npm pack` of a package directory, as a publish would make it (its `prepack` builds it):
 * the tarball's path and the files it holds.
 */
export async function pack(packageDir: string, destination: string): Promise<{ tarball: string; files: string[] }> {
  const out = await mustRun("npm", ["pack", "--json", "--pack-destination", destination], { cwd: packageDir });
  // prepack's own output comes first; the JSON report is the last thing printed.
  const [report] = JSON.parse(out.slice(out.lastIndexOf("\n[") + 1)) as { filename: string; files: { path: string }[] }[];
  return { tarball: path.join(destination, report.filename), files: report.files.map((f) => f.path).sort() };
}

/** The version of a package installed in this repository (so an install can hit the npm cache). */
export async function installedVersion(name: string): Promise<string> {
  const manifest = JSON.parse(await readFile(path.join(repoRoot, "node_modules", name, "package.json"), "utf8")) as { version: string };
  return manifest.version;
}

/**
 * A fresh app outside the repository with the given packages installed, from the npm
 * cache where it has them (the registry otherwise): what `npm install <tarball>` does.
 */
export async function freshApp(dir: string, packages: string[]): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "package.json"), JSON.stringify({ name: "fresh-app", private: true, type: "module" }, null, 2));
  await mustRun("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", ...packages], { cwd: dir });
  return dir;
}
