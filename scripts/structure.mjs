#!/usr/bin/env node
// The shape of the code at a glance: files and lines per directory, the largest functions,
// and the import graph's layers between the parts of src/ and client/ (the parts the
// layering test, test/architecture/layers.test.ts, names). For a checkout elsewhere (an
// older commit unpacked with `git archive`), pass its directory:
//   node scripts/structure.mjs [root] [--top N]
import { readdirSync, readFileSync, existsSync } from "node:fs";
import path from "node:path";

const args = process.argv.slice(2);
const topAt = args.indexOf("--top");
const top = topAt === -1 ? 15 : Number(args[topAt + 1]);
const root = path.resolve(args.find((a, i) => !a.startsWith("--") && (topAt === -1 || i !== topAt + 1)) ?? ".");

const SKIP = new Set(["node_modules", "dist", "generated", ".tmp"]);
function sources(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return SKIP.has(entry.name) ? [] : sources(full);
    return /\.(ts|mts|mjs)$/.test(entry.name) && !entry.name.endsWith(".d.ts") ? [full] : [];
  });
}

const rel = (file) => path.relative(root, file);
const files = ["src", "client", "test", "bench", "scripts"].flatMap((d) => sources(path.join(root, d)));
const text = new Map(files.map((f) => [f, readFileSync(f, "utf8")]));
const lines = (f) => text.get(f).split("\n").length;

// 1. Files and lines per directory (two levels: src/api, test/collab, …).
const perDir = new Map();
for (const f of files) {
  const parts = rel(f).split(path.sep);
  const dir = parts.length > 2 ? parts.slice(0, 2).join("/") : parts[0];
  const row = perDir.get(dir) ?? { files: 0, lines: 0 };
  row.files++;
  row.lines += lines(f);
  perDir.set(dir, row);
}
console.log("## Files and lines per directory\n");
console.log("| directory | files | lines |\n|---|---:|---:|");
for (const [dir, row] of [...perDir].sort(([a], [b]) => a.localeCompare(b))) console.log(`| ${dir} | ${row.files} | ${row.lines} |`);
const total = [...perDir.values()].reduce((a, r) => ({ files: a.files + r.files, lines: a.lines + r.lines }), { files: 0, lines: 0 });
console.log(`| **total** | ${total.files} | ${total.lines} |`);

// 2. The largest functions of src/ and client/ (lines from the body's opening brace to its
// close). TypeScript 7 has no JavaScript API, so a small scanner does: it skips strings,
// templates, comments and regular expressions, and takes a `{` as a function body when a
// `)` (after any return type) or `=>` comes before it and no control keyword owns the `(`.
const CONTROL = new Set(["if", "for", "while", "switch", "catch", "with"]);
function functionsOf(source) {
  const found = [];
  const stack = [];
  let line = 1;
  let last = ""; // the last significant token
  const tokens = []; // recent significant tokens with their offsets, for looking back
  const push = (t, at) => {
    tokens.push({ t, at });
    if (tokens.length > 400) tokens.splice(0, 200);
    last = t;
  };
  const headOf = () => {
    // Walk back over a return type to the `)` or `=>` just before this `{`.
    let i = tokens.length - 1;
    if (tokens[i]?.t === "=>") return nameBefore(i);
    let depth = 0;
    for (; i >= 0; i--) {
      const t = tokens[i].t;
      if (t === ">" || t === "]") depth++;
      else if ((t === "<" || t === "[") && depth > 0) depth--;
      else if (depth === 0 && (t === ";" || t === "{" || t === "}" || t === "=")) return null;
      else if (depth === 0 && t === ")") break;
    }
    if (i < 0) return null;
    // Match the parenthesis back to its `(`.
    let parens = 0;
    for (; i >= 0; i--) {
      if (tokens[i].t === ")") parens++;
      else if (tokens[i].t === "(" && --parens === 0) break;
    }
    if (i <= 0) return null;
    let j = i - 1;
    if (tokens[j].t === ">") {
      // Type parameters: name<T>(…)
      let angle = 0;
      for (; j >= 0; j--) {
        if (tokens[j].t === ">") angle++;
        else if (tokens[j].t === "<" && --angle === 0) break;
      }
      j--;
    }
    const before = tokens[j]?.t;
    if (!before || CONTROL.has(before)) return null;
    if (before === "function") return "(anonymous)";
    if (/^[A-Za-z_$][\w$]*$/.test(before)) return before === "constructor" ? "constructor" : before;
    return null;
  };
  const nameBefore = (i) => {
    // `name = (…) =>`, `name: (…) =>`, or an argument.
    for (let k = i - 1, parens = 0; k >= 0; k--) {
      const t = tokens[k].t;
      if (t === ")") parens++;
      else if (t === "(") {
        if (parens === 0) return "(arrow)";
        parens--;
      } else if (parens === 0 && (t === "=" || t === ":")) return /^[A-Za-z_$][\w$]*$/.test(tokens[k - 1]?.t ?? "") ? tokens[k - 1].t : "(arrow)";
      else if (parens === 0 && (t === "," || t === ";" || t === "{")) return "(arrow)";
    }
    return "(arrow)";
  };
  /**
   * Scans a template literal from `from` to its closing backquote, or to its next `${`, which
   * opens a brace the stack tracks as an expression (not a body). Returns where it stopped.
   */
  const template = (from) => {
    let i = from;
    for (; i < source.length && source[i] !== "`"; i++) {
      if (source[i] === "\\") i++;
      else if (source[i] === "\n") line++;
      else if (source[i] === "$" && source[i + 1] === "{") {
        stack.push({ kind: "template" });
        last = "{";
        return i + 1;
      }
    }
    push("str", i);
    return i;
  };
  const regexAllowed = () => last === "" || /^[(,=:[!&|?{};+\-*%<>~^]$|^(return|typeof|case|=>|&&|\|\||\?\?)$/.test(last);
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === "\n") { line++; continue; }
    if (/\s/.test(c)) continue;
    if (c === "/" && source[i + 1] === "/") { while (i < source.length && source[i] !== "\n") i++; i--; continue; }
    if (c === "/" && source[i + 1] === "*") { const end = source.indexOf("*/", i + 2); for (let k = i; k < end; k++) if (source[k] === "\n") line++; i = end + 1; continue; }
    if (c === "'" || c === '"') { for (i++; i < source.length && source[i] !== c; i++) if (source[i] === "\\") i++; push("str", i); continue; }
    if (c === "`") {
      i = template(i + 1);
      continue;
    }
    if (c === "/" && regexAllowed()) {
      let inClass = false;
      for (i++; i < source.length; i++) {
        if (source[i] === "\\") i++;
        else if (source[i] === "[") inClass = true;
        else if (source[i] === "]") inClass = false;
        else if (source[i] === "/" && !inClass) break;
      }
      while (/[a-z]/.test(source[i + 1] ?? "")) i++;
      push("re", i);
      continue;
    }
    if (/[A-Za-z_$]/.test(c)) { let j = i; while (/[\w$]/.test(source[j + 1] ?? "")) j++; push(source.slice(i, j + 1), i); i = j; continue; }
    if (/\d/.test(c)) { while (/[\w.]/.test(source[i + 1] ?? "")) i++; push("num", i); continue; }
    if (c === "=" && source[i + 1] === ">") { push("=>", i); i++; continue; }
    if (c === "{") {
      const name = headOf();
      stack.push(name ? { kind: "fn", name, line } : { kind: "block" });
      push("{", i);
      continue;
    }
    if (c === "}") {
      const open = stack.pop();
      if (open?.kind === "template") {
        // Back into the template literal.
        i = template(i + 1);
        continue;
      }
      if (open?.kind === "fn") found.push({ name: open.name, line: open.line, lines: line - open.line + 1 });
      push("}", i);
      continue;
    }
    push(c, i);
  }
  return found;
}

const functions = [];
for (const f of files.filter((f) => /^(src|client)\//.test(rel(f)))) {
  for (const fn of functionsOf(text.get(f))) functions.push({ where: `${rel(f)}:${fn.line}`, name: fn.name, lines: fn.lines });
}
functions.sort((a, b) => b.lines - a.lines);
console.log(`\n## The ${top} largest functions of src/ and client/\n`);
console.log("| lines | function | where |\n|---:|---|---|");
for (const fn of functions.slice(0, top)) console.log(`| ${fn.lines} | ${fn.name} | ${fn.where} |`);
const over = (n) => functions.filter((fn) => fn.lines > n).length;
console.log(`\n${functions.length} functions; over 50 lines: ${over(50)}, over 100 lines: ${over(100)}`);

// 3. The import graph between parts, and its layers (a part sits one above the highest part it imports).
const partOf = (file) => {
  const [top, second] = rel(file).split(path.sep);
  if (top === "src") return `src/${second}`;
  return second === "web" ? "client/web" : "client";
};
const edges = new Map();
const typeOnly = new Set();
for (const f of files.filter((f) => /^(src|client)\//.test(rel(f)))) {
  const from = partOf(f);
  if (!edges.has(from)) edges.set(from, new Set());
  for (const m of text.get(f).matchAll(/^(?:import|export)\s+(type\s+)?[^;]*?\bfrom\s+"(\.{1,2}\/[^"]+)";/gms)) {
    let to = path.resolve(path.dirname(f), m[2].replace(/\.js$/, ".ts"));
    if (!existsSync(to) && existsSync(to.replace(/\.ts$/, "/index.ts"))) to = to.replace(/\.ts$/, "/index.ts");
    if (!/^(src|client)\//.test(rel(to))) continue;
    const part = partOf(to);
    if (part === from) continue;
    // A type-only import vanishes at run time (the SDK names the router's type, nothing more):
    // listed apart, not an arrow of the layers.
    if (m[1]) typeOnly.add(`${from} → ${part}`);
    else edges.get(from).add(part);
  }
}
const level = new Map();
const circles = [];
const levelOf = (part, trail = []) => {
  if (level.has(part)) return level.get(part);
  if (trail.includes(part)) {
    circles.push([...trail.slice(trail.indexOf(part)), part].join(" → "));
    return 0;
  }
  const deps = [...(edges.get(part) ?? [])];
  const l = deps.length === 0 ? 0 : 1 + Math.max(...deps.map((d) => levelOf(d, [...trail, part])));
  level.set(part, l);
  return l;
};
for (const part of edges.keys()) levelOf(part);
console.log("\n## Import graph layers (0 imports no other part)\n");
const byLevel = new Map();
for (const [part, l] of level) byLevel.set(l, [...(byLevel.get(l) ?? []), part]);
for (const l of [...byLevel.keys()].sort((a, b) => a - b)) {
  console.log(`${l}: ${byLevel.get(l).sort().map((p) => `${p} (→ ${[...edges.get(p)].sort().join(", ") || "nothing"})`).join("; ")}`);
}
const arrowsHave = (a) => { const [from, to] = a.split(" → "); return edges.get(from)?.has(to); };
const arrows = [...edges.values()].reduce((n, s) => n + s.size, 0);
console.log(`\n${edges.size} parts, ${arrows} arrows between them; circles between parts: ${circles.length === 0 ? "none" : [...new Set(circles)].join("; ")}`);
console.log(`type-only imports between parts (not arrows): ${[...typeOnly].filter((a) => !arrowsHave(a)).sort().join("; ") || "none"}`);
