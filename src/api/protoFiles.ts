// Server reflection needs the .proto sources at run time. Compiled, this file lives in
// dist/src/api/ (repo root ../../..); run from source it lives in src/api/ (root ../..).
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as protoLoader from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { ApiError } from "./errors.js";

export const API_PROTO = "parabft/v1/api.proto";

/** The proto/ directory: `explicit` if given, else found relative to this module or the cwd. */
export function findProtoDir(explicit?: string): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = explicit
    ? [explicit]
    : [path.resolve(here, "../../../proto"), path.resolve(here, "../../proto"), path.resolve("proto")];
  for (const dir of candidates) if (existsSync(path.join(dir, API_PROTO))) return dir;
  throw new ApiError(
    "FAILED_PRECONDITION",
    { field: "protoDir" },
    `cannot find ${API_PROTO} for server reflection; looked in ${candidates.join(", ")}`,
  );
}

/** The public API and health protos, as grpc-js reflection wants them. */
export function loadReflectionPackage(protoDir: string): protoLoader.PackageDefinition {
  return protoLoader.loadSync([API_PROTO, healthProtoPath], {
    includeDirs: [protoDir, path.dirname(healthProtoPath)],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
}
