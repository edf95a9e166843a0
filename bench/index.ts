export { runSfuBench, capacity, type StepResult, type SfuBenchOptions, type Target } from './sfu-bench.ts';
export { startBaseline } from './baseline.ts';
export { startServer, prepareChannel } from './server.ts';
export { table, html, writeReport, type BenchReport } from './report.ts';
export { SoakChecker, type SoakVerdict, type SoakTrackResult, type SoakKind } from './soak-check.ts';
