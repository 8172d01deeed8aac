#!/usr/bin/env node
"use strict";
// The project has no build step: the CLI runs its TypeScript through ts-node, transpile-only (type errors are
// caught by `npm test`, which runs tsc first). The project's tsconfig is named explicitly so the command works
// from any directory.
const path = require("node:path");
require("ts-node").register({ transpileOnly: true, project: path.join(__dirname, "..", "tsconfig.json") });
require("../cli/main").main();
