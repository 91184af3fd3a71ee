export * from "./cores.js";
export * from "./output.js";
export * from "./stats.js";
export * from "./svgChart.js";
export * from "./table.js";
