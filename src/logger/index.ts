// The pino logger factory: JSON by default, pretty on a TTY, one child per component.
import { type Logger as PinoLogger, pino } from "pino";

export type Logger = PinoLogger;

/**
 * PARABFT_TRACE=1 (with log level debug): components log their per-event trace points
 * (timelines joined by bench/cluster's stage tools). Off otherwise: nothing is built for them.
 */
export const TRACE = process.env.PARABFT_TRACE === "1";

export interface LoggerOpts {
  level?: string;
  /** Force pretty (true) or JSON (false); default: pretty when stderr is a TTY. */
  pretty?: boolean;
  /** Base bindings, e.g. { node: 2 }. */
  base?: Record<string, unknown>;
}

export function createLogger(opts: LoggerOpts = {}): Logger {
  const level = opts.level ?? process.env.PARABFT_LOG_LEVEL ?? "info";
  const pretty = opts.pretty ?? process.stderr.isTTY === true;
  const common = {
    level,
    base: opts.base ?? {},
    redact: ["*.privateKey", "*.secretKey", "privateKey", "secretKey"],
  };
  if (pretty) {
    return pino({
      ...common,
      transport: { target: "pino-pretty", options: { destination: 2, colorize: true } },
    });
  }
  return pino(common, pino.destination({ fd: 2, sync: false }));
}

/** A logger that drops everything: tests and the simulator. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

export function componentLogger(parent: Logger, component: string): Logger {
  return parent.child({ component });
}
