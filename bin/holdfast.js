#!/usr/bin/env node
// Entry point of the `holdfast` command: runs the compiled CLI from dist/.
// The AWS SDK warns on every run that later versions will need Node 22; Holdfast pins a
// version that supports Node 20 (package.json), so the warning would only be noise.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { main } = await import('../dist/cli/main.js');

process.exitCode = await main(process.argv.slice(2));
