// The Web Worker that runs trigger and highlight patterns (matcher.js sends
// the jobs). Matching here, off the page's thread, is what lets a pattern
// that backtracks without end be stopped: the page terminates this worker.

import { matchLines } from "./triggers.js";

self.onmessage = ({ data }) => {
  const { id, pattern, lines } = data;
  try {
    self.postMessage({ id, hits: matchLines(pattern, lines) });
  } catch (e) {
    self.postMessage({ id, error: String(e && e.message) });
  }
};
self.postMessage({ ready: true });
