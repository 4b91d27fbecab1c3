// Navigation timing and Web Vitals from the page's buffered performance entries, in
// milliseconds from the navigation's start (CLS as web-vitals counts it: the largest
// session window of shifts without recent input, less than 1 s apart and within 5 s).
// A page just loaded may not have painted yet: it first waits for the first
// contentful paint, 3 s at most (a page with nothing to paint never has one).
async () => {
  let painted;
  const firstPaint = new Promise((resolve) => { painted = resolve; });
  const paintObserver = new PerformanceObserver((entries) => {
    if (entries.getEntriesByName("first-contentful-paint").length) painted();
  });
  paintObserver.observe({ type: "paint", buffered: true });
  const giveUp = setTimeout(painted, 3000);
  await firstPaint;
  paintObserver.disconnect();
  clearTimeout(giveUp);
  const buffered = (type) => {
    if (!PerformanceObserver.supportedEntryTypes.includes(type)) return [];
    const observer = new PerformanceObserver(() => {});
    observer.observe({ type, buffered: true });
    const entries = observer.takeRecords();
    observer.disconnect();
    return entries;
  };
  const navigation = performance.getEntriesByType("navigation")[0];
  const activation = (navigation && navigation.activationStart) || 0;
  const since = (time) => (time > 0 ? Math.max(0, time - activation) : 0);
  const paint = buffered("paint").find((entry) => entry.name === "first-contentful-paint");
  const largest = buffered("largest-contentful-paint").pop();
  let cls = 0;
  let session = { value: 0, start: 0, last: 0, nodes: [] };
  let worst = [];
  for (const shift of buffered("layout-shift")) {
    if (shift.hadRecentInput) continue;
    const joins = session.value > 0 && shift.startTime - session.last < 1000 &&
      shift.startTime - session.start < 5000;
    if (!joins) session = { value: 0, start: shift.startTime, last: 0, nodes: [] };
    session.value += shift.value;
    session.last = shift.startTime;
    session.nodes.push(...shift.sources.map((source) => source.node).filter(
      (node) => node && node.nodeType === Node.ELEMENT_NODE));
    if (session.value > cls) {
      cls = session.value;
      worst = session.nodes;
    }
  }
  return {
    ttfbMs: navigation ? since(navigation.responseStart) : 0,
    fcpMs: paint ? since(paint.startTime) : 0,
    lcpMs: largest ? since(largest.startTime) : 0,
    cls,
    domContentLoadedMs: navigation ? since(navigation.domContentLoadedEventEnd) : 0,
    loadMs: navigation ? since(navigation.loadEventEnd) : 0,
    elapsedMs: since(performance.now()),
    largestElement: largest && largest.element ? selectorOf(largest.element) : "",
    shiftedElements: [...new Set(worst.filter((node) => node.isConnected).map(selectorOf))],
  };
}
