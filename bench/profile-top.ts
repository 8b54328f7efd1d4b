/**
 * `npm run bench:profile <dir or .cpuprofile> [count]`: where a server profiled with
 * `BENCH_PROFILE=<dir> npm run bench` spent its time. Lists the functions with the most self
 * time, then the same grouped by file (which package or module of ours), so the next fix goes
 * where the time is.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [target = "bench/profiles", countArg = "30"] = process.argv.slice(2);
const count = Number(countArg);
const files = (await stat(target)).isDirectory()
  ? (await readdir(target)).filter((f) => f.endsWith(".cpuprofile")).map((f) => path.join(target, f))
  : [target];

const shortUrl = (url: string) => {
  const file = url.replace(/^file:\/\//, "");
  const nm = file.lastIndexOf("node_modules/");
  if (nm >= 0) return file.slice(nm + "node_modules/".length);
  const dist = file.indexOf("/dist/");
  return dist >= 0 ? file.slice(dist + 1) : file || "(native)";
};

for (const file of files) {
  const profile = JSON.parse(await readFile(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = profile.endTime - profile.startTime;
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const where = shortUrl(url);
    const key = `${functionName || "(anonymous)"}  ${where}${url ? `:${lineNumber + 1}` : ""}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const group = url ? where.split("/").slice(0, where.startsWith("@") ? 2 : where.startsWith("dist/") ? 3 : 1).join("/") : where;
    byFile.set(group, (byFile.get(group) ?? 0) + us);
  }
  const top = (m: Map<string, number>) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, count).map(([k, us]) => `  ${(us / 1000).toFixed(0).padStart(7)} ms  ${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`);
  console.log(`\n${file}: ${(total / 1e6).toFixed(1)} s profiled`);
  console.log("self time by function:");
  console.log(top(byFunction).join("\n"));
  console.log("self time by package / module:");
  console.log(top(byFile).join("\n"));
}
