// Loaded into Playwright's driver (node) by the agent (NODE_OPTIONS --require, with
// --expose-gc): once the driver has been idle for a whole interval after some work, one
// memory-reducing full collection gives back the heap its last tasks left as garbage.
// V8 collects only as it allocates, so an idle driver otherwise keeps that garbage (the
// screenshots it passed on: tens of MiB after a soak) and the pages under it.
'use strict';

const v8 = require('v8');

const intervalMs = Number(process.env.FARM_DRIVER_IDLE_GC_MS) || 0;
// Less than this allocated over an interval is idle; a busy driver allocates megabytes.
const IDLE_BYTES = 256 * 1024;

if (intervalMs > 0 && typeof globalThis.gc === 'function') {
  let previous = v8.getHeapStatistics().used_heap_size;
  let workedSinceCollection = false;
  setInterval(() => {
    const used = v8.getHeapStatistics().used_heap_size;
    const idle = Math.abs(used - previous) < IDLE_BYTES;
    if (!idle) {
      workedSinceCollection = true;
    } else if (workedSinceCollection) {
      workedSinceCollection = false;
      // "last-resort": repeated full collections that also release V8's pooled pages.
      globalThis.gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    }
    previous = v8.getHeapStatistics().used_heap_size;
  }, intervalMs).unref();
}
