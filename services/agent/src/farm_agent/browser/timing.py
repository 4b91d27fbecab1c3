"""How fast a page came: navigation timing and Web Vitals from the page's Performance API.

Read after the fact: buffered PerformanceObservers hand over the paints, largest
contentful paints and layout shifts the page has had so far. Measured as
web.dev defines them: from the navigation's start (its activation, for a
prerendered page); LCP is the latest candidate; CLS is the largest session window
of shifts without recent input (gaps under 1 s, windows up to 5 s). Used by
`collect.timing`; the performance audit measures the same way (audits/scripts/vitals.js).
"""

from typing import Any

from google.protobuf import json_format
from playwright.async_api import Page

from farm.tasks.v1 import tasks_pb2

FIRST_PAINT_WAIT_MS = 3000
"""How long a page that has not painted yet is given for its first contentful paint.

A loaded page may not have presented its first frame yet, and a busy machine delays
the paint entry past a few frames (as the performance audit's, scripts/vitals.js).
"""

# Returns PageTiming's fields by their JSON names; 0 for what has not happened. Waits
# for the first contentful paint's entry, `waitMs` at most: a page that paints nothing
# never has one, and a hidden page has none while it is hidden.
PAGE_TIMING_SCRIPT = """async (waitMs) => {
  const buffered = (type) => {
    try {
      const observer = new PerformanceObserver(() => {});
      observer.observe({ type, buffered: true });
      const entries = observer.takeRecords();
      observer.disconnect();
      return entries;
    } catch (error) {
      return [];
    }
  };
  if (document.visibilityState === "visible") {
    let painted;
    const firstPaint = new Promise((resolve) => { painted = resolve; });
    const observer = new PerformanceObserver((entries) => {
      if (entries.getEntriesByName("first-contentful-paint").length) painted();
    });
    observer.observe({ type: "paint", buffered: true });
    const giveUp = setTimeout(painted, waitMs);
    await firstPaint;
    observer.disconnect();
    clearTimeout(giveUp);
  }
  const navigation = performance.getEntriesByType("navigation")[0];
  const start = navigation ? navigation.activationStart || 0 : 0;
  const since = (time) => (time > 0 ? Math.max(time - start, 0) : 0);
  const fcp = buffered("paint").find((entry) => entry.name === "first-contentful-paint");
  const lcp = buffered("largest-contentful-paint").at(-1);
  let cls = 0, windowValue = 0, windowStart = 0, lastShift = 0;
  for (const shift of buffered("layout-shift")) {
    if (shift.hadRecentInput) continue;
    const sameWindow = windowValue > 0 && shift.startTime - lastShift < 1000 &&
      shift.startTime - windowStart < 5000;
    windowValue = sameWindow ? windowValue + shift.value : shift.value;
    windowStart = sameWindow ? windowStart : shift.startTime;
    lastShift = shift.startTime;
    cls = Math.max(cls, windowValue);
  }
  return {
    ttfbMs: navigation ? since(navigation.responseStart) : 0,
    fcpMs: fcp ? since(fcp.startTime) : 0,
    lcpMs: lcp ? since(lcp.startTime) : 0,
    cls,
    domContentLoadedMs: navigation ? since(navigation.domContentLoadedEventEnd) : 0,
    loadMs: navigation ? since(navigation.loadEventEnd) : 0,
  };
}"""


async def page_timing(page: Page) -> tasks_pb2.PageTiming:
    """The page's navigation timing and Web Vitals so far, in milliseconds (CLS unitless).

    Waits up to FIRST_PAINT_WAIT_MS for a first contentful paint that has not come yet.
    """
    measured: dict[str, Any] = await page.evaluate(PAGE_TIMING_SCRIPT, FIRST_PAINT_WAIT_MS)
    return json_format.ParseDict(measured, tasks_pb2.PageTiming())
