import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** The queue board: built into client/web/dist, which the server serves at `/`. */
export default defineConfig({
  root: here("."),
  base: "/",
  logLevel: "warn",
  build: { outDir: here("dist"), emptyOutDir: true, sourcemap: true },
});
