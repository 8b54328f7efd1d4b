import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { chromiumForTests, HOW_TO_INSTALL, resolveChromium } from "../support/chromium.js";

const noInstall = { canInstall: false, install: () => expect.unreachable("must not install") };

describe("finding Chromium for the browser suites (the installer is scripted)", () => {
  it("uses CHROMIUM_PATH, and says when it points at nothing", () => {
    expect(resolveChromium({ env: { CHROMIUM_PATH: process.execPath }, ...noInstall })).toEqual({ path: process.execPath });
    expect(resolveChromium({ env: { CHROMIUM_PATH: "/nowhere/chromium" }, ...noInstall })).toEqual({
      missing: `CHROMIUM_PATH=/nowhere/chromium is not an executable file: ${HOW_TO_INSTALL}`,
    });
  });

  it("without one on the PATH: one line saying what to install; the suites skip, except under CI where the run fails", () => {
    const search = { env: { PATH: "/nowhere" }, ...noInstall };
    expect(resolveChromium(search)).toEqual({ missing: `Chromium was not found on the PATH: ${HOW_TO_INSTALL}` });
    expect(HOW_TO_INSTALL).toMatch(/apt-get install chromium.*CHROMIUM_PATH/);
    expect(chromiumForTests(search)).toBeNull();
    expect(() => chromiumForTests({ ...search, env: { ...search.env, CI: "true" } })).toThrow(
      `CI: the browser suites cannot run: Chromium was not found on the PATH: ${HOW_TO_INSTALL}`,
    );
  });

  it("as root on Debian it installs the package itself, then uses it (scripted apt-get)", () => {
    const bin = mkdtempSync(path.join(os.tmpdir(), "turnqueue-bin-"));
    try {
      const install = () => writeFileSync(path.join(bin, "chromium"), "#!/bin/sh\n", { mode: 0o755 });
      expect(resolveChromium({ env: { PATH: bin }, canInstall: true, install })).toEqual({ path: path.join(bin, "chromium") });
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
    const failed = resolveChromium({ env: { PATH: "/nowhere" }, canInstall: true, install: () => { throw new Error("E: Unable to locate package chromium"); } });
    expect(failed).toEqual({ missing: `Chromium is not installed and apt-get could not install it (E: Unable to locate package chromium): ${HOW_TO_INSTALL}` });
  });
});
