// Whether the container suite runs: it needs a Docker engine (make test / .ci/run start one).
// Without an engine the scenarios are skipped locally, but with CI=true the run fails, so CI can
// never pass by skipping them.
import path from "node:path";
import { engineAvailable, ensureImage } from "./docker.js";

const repo = path.resolve(import.meta.dirname, "../../../..");

export async function suiteGate(): Promise<{ skip: string | false; before: () => Promise<void> }> {
  const engine = await engineAvailable();
  const ci = process.env.CI === "true" || process.env.CI === "1";
  if (!engine && !ci)
    return { skip: "no Docker engine answers (deploy/engine.sh start gives one)", before: async () => {} };
  return {
    skip: false,
    before: async () => {
      if (!engine) throw new Error("CI=true but no Docker engine answers: the container suite cannot run");
      await ensureImage(repo);
    },
  };
}
