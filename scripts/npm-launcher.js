#!/usr/bin/env node
// The `mcpssh` command of the npm package: runs the binary of the platform package npm
// installed beside it (mcpssh-<os>-<cpu>), with the same arguments, stdin, stdout and
// stderr, forwards termination signals to it and exits as it does.
"use strict";
const { spawn } = require("child_process");

const cpu = { x64: "x64", arm64: "arm64" }[process.arch];
const os = { linux: "linux", darwin: "darwin" }[process.platform];
const pkg = `mcpssh-${os}-${cpu}`;
let binary;
try {
  binary = require.resolve(`${pkg}/bin/mcpssh`);
} catch (e) {
  console.error(
    `mcpssh: no binary for ${process.platform} ${process.arch}: the optional package ${pkg} ` +
      "is not installed (npm skips optional dependencies with --no-optional or " +
      "--omit=optional; install again without it), or this platform is not supported: " +
      "install with `cargo install --git` instead"
  );
  process.exit(1);
}
const child = spawn(binary, process.argv.slice(2), { stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => child.kill(signal));
}
child.on("error", (e) => {
  console.error(`mcpssh: cannot run ${binary}: ${e.message}`);
  process.exit(1);
});
child.on("exit", (code, signal) => {
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  } else {
    process.exit(code);
  }
});
