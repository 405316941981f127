// Character offsets in an element's text (its textContent) -> the text
// nodes that hold them. Search (ranges to highlight, search.js rangesIn) and
// highlights (spans to wrap) both find text this way, whatever elements the text sits in.

/** [[textNode, from, to], ...] covering characters [start, end) of `el`'s text. */
export function textSegments(el, start, end) {
  const walker = el.ownerDocument.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  const out = [];
  let pos = 0;
  for (let n = walker.nextNode(); n && pos < end; n = walker.nextNode()) {
    const len = n.data.length;
    if (pos + len > start && len) out.push([n, Math.max(start, pos) - pos, Math.min(end, pos + len) - pos]);
    pos += len;
  }
  return out;
}
