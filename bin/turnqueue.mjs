#!/usr/bin/env node
// The `turnqueue` command. tsx's loader is registered in this very process (no child
// process in between), so SIGTERM and SIGINT reach the server's graceful shutdown directly.
import { register } from "tsx/esm/api";

register();
await import("../src/cli.ts");
