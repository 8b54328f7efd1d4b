import { execFileSync, type ExecFileSyncOptions } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import path from "node:path";

/** Names Chromium is installed under (Debian, Ubuntu, Google's package). */
const NAMES = ["chromium", "chromium-browser", "google-chrome-stable", "google-chrome"];

export const HOW_TO_INSTALL = "install it (Debian/Ubuntu: apt-get install chromium) or set CHROMIUM_PATH to a Chromium or Chrome binary";

export interface ChromiumSearch {
  env: NodeJS.ProcessEnv;
  /** Root on Debian may install the system package itself, as .ci/run does. */
  canInstall: boolean;
  install: () => void;
}

/** The browser the browser suites drive: a path, or the one line saying what to install. */
export function resolveChromium(search: ChromiumSearch): { path: string } | { missing: string } {
  const chosen = search.env.CHROMIUM_PATH;
  if (chosen) {
    return executable(chosen) ? { path: chosen } : { missing: `CHROMIUM_PATH=${chosen} is not an executable file: ${HOW_TO_INSTALL}` };
  }
  const found = onPath(search.env.PATH ?? "");
  if (found) return { path: found };
  if (search.canInstall) {
    try {
      search.install();
    } catch (error) {
      return { missing: `Chromium is not installed and apt-get could not install it (${(error as Error).message.split("\n")[0]}): ${HOW_TO_INSTALL}` };
    }
    const installed = onPath(search.env.PATH ?? "");
    if (installed) return { path: installed };
  }
  return { missing: `Chromium was not found on the PATH: ${HOW_TO_INSTALL}` };
}

const executable = (file: string) => {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

const onPath = (PATH: string) => {
  for (const name of NAMES) {
    for (const dir of PATH.split(path.delimiter).filter(Boolean)) {
      if (executable(path.join(dir, name))) return path.join(dir, name);
    }
  }
  return null;
};

/** This machine: root on Debian installs the package, without asking. */
export const systemSearch = (env: NodeJS.ProcessEnv = process.env): ChromiumSearch => ({
  env,
  canInstall: process.getuid?.() === 0 && existsSync("/etc/debian_version"),
  install: () => {
    console.warn("Chromium is missing: installing the Debian package (apt-get install chromium), as .ci/run does");
    const quiet: ExecFileSyncOptions = { stdio: ["ignore", "ignore", "pipe"], env: { ...env, DEBIAN_FRONTEND: "noninteractive" } };
    execFileSync("apt-get", ["update"], quiet);
    execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "chromium"], quiet);
  },
});

/**
 * What `npm test` does about the browser suites: run them with the browser found; without
 * one, skip them with one line saying what to install, except under CI, which installs it
 * and must not pass without them.
 */
export function chromiumForTests(search: ChromiumSearch): string | null {
  const result = resolveChromium(search);
  if ("path" in result) return result.path;
  if (search.env.CI === "true") throw new Error(`CI: the browser suites cannot run: ${result.missing}`);
  console.warn(`Browser suites skipped: ${result.missing}`);
  return null;
}
