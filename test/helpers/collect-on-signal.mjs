// Preloaded (`--expose-gc --import`) into a server under test: on SIGUSR2 it runs a full garbage
// collection, lets the sweeper return pages, and writes one JSON line on stderr with what is left. A
// memory comparison then measures what the process retains, not where the collector happened to be.
process.on('SIGUSR2', () => {
  globalThis.gc();
  setTimeout(() => {
    const { rss, heapUsed } = process.memoryUsage();
    process.stderr.write(`${JSON.stringify({ collected: true, rss, heap_used: heapUsed })}\n`);
  }, 500);
});
