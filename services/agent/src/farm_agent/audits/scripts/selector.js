// The CSS selector of an element: its id if unique, else its tag and place under the
// nearest parent with a unique id (or under body).
function selectorOf(element) {
  const parts = [];
  for (let node = element; node && node.nodeType === Node.ELEMENT_NODE; node = node.parentElement) {
    const tag = node.localName;
    if (node.id && document.querySelectorAll("#" + CSS.escape(node.id)).length === 1) {
      parts.unshift("#" + CSS.escape(node.id));
      break;
    }
    if (tag === "body" || tag === "head" || tag === "html" || !node.parentElement) {
      parts.unshift(tag);
      break;
    }
    const same = [...node.parentElement.children].filter((child) => child.localName === tag);
    parts.unshift(same.length === 1 ? tag : `${tag}:nth-of-type(${same.indexOf(node) + 1})`);
  }
  return parts.join(" > ");
}
