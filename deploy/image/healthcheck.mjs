// The image's HEALTHCHECK: asks the validator's own gRPC health service (grpc.health.v1, overall
// server "") on the API port and exits 0 only for SERVING.
import * as grpc from "@grpc/grpc-js";
import { service } from "grpc-health-check";

const addr = process.env.PARABFT_HEALTH_ADDR ?? `127.0.0.1:${(process.env.PARABFT_API_ADDR ?? ":26657").split(":").pop()}`;
const Client = grpc.makeGenericClientConstructor(service, "Health");
const client = new Client(addr, grpc.credentials.createInsecure());
client.check({ service: "" }, { deadline: Date.now() + 4000 }, (err, res) => {
  const status = err ? `error ${err.code}` : res.status;
  client.close();
  if (status !== "SERVING" && status !== 1) {
    console.error(`health: ${addr} ${status}`);
    process.exit(1);
  }
  process.exit(0);
});
