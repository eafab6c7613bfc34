// Tabs other than Decide register a loader here: called with the page state
// when their tab opens, and again when the vendor or kind changes meanwhile.
export const loaders = {};

export function onTab(name, fn) { loaders[name] = fn; }

export function currentTab() {
  const b = document.querySelector('[data-tab][aria-selected="true"]');
  return b ? b.dataset.tab : "decide";
}
