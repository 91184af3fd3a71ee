// Kept equal to package.json "version" by test/unit/cli/version.test.ts: the compiled CLI runs
// from dist/ or a build directory where package.json is not beside it.
export const VERSION = "0.1.0";
