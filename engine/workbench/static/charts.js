// Bar charts drawn as SVG by the page (no chart library).
import { svg } from "./util.js";

const PALETTE = ["#2f6fb5", "#3a9d5d", "#d08a2e", "#b5453a", "#7a5ab5", "#3a9d9d", "#8a8a3a", "#b53a8a",
  "#5a7a9d", "#9d5a3a", "#4a4a4a"];

export function colour(i) { return PALETTE[i % PALETTE.length]; }

// Horizontal bars: rows [{label, value, display}], one per line.
export function barChart(title, rows, { width = 560, barColour = "#2f6fb5" } = {}) {
  const labelWidth = 220;
  const rowHeight = 22;
  const height = rows.length * rowHeight + 30;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart", "aria-label": title });
  chart.append(svg("title", { text: title }));
  chart.append(svg("text", { x: 0, y: 14, class: "chart-title", text: title }));
  rows.forEach((r, i) => {
    const y = 24 + i * rowHeight;
    const w = Math.max(1, ((width - labelWidth - 90) * r.value) / max);
    chart.append(svg("text", { x: labelWidth - 6, y: y + 14, "text-anchor": "end", class: "chart-label", text: r.label }));
    chart.append(svg("rect", { x: labelWidth, y: y + 3, width: w, height: rowHeight - 6, fill: r.colour || barColour, rx: 2 }));
    chart.append(svg("text", { x: labelWidth + w + 4, y: y + 14, class: "chart-value", text: r.display ?? String(r.value) }));
  });
  return chart;
}

// One stacked bar per group: groups [{label, parts: {name: count}}], legend below.
export function stackedChart(title, groups, { width = 560 } = {}) {
  const names = [...new Set(groups.flatMap((g) => Object.keys(g.parts)))].sort();
  const labelWidth = 220;
  const rowHeight = 24;
  const legendRows = Math.ceil(names.length / 4);
  const height = groups.length * rowHeight + 34 + legendRows * 18;
  const max = Math.max(1, ...groups.map((g) => Object.values(g.parts).reduce((a, b) => a + b, 0)));
  const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart", "aria-label": title });
  chart.append(svg("title", { text: title }));
  chart.append(svg("text", { x: 0, y: 14, class: "chart-title", text: title }));
  groups.forEach((g, i) => {
    const y = 24 + i * rowHeight;
    chart.append(svg("text", { x: labelWidth - 6, y: y + 15, "text-anchor": "end", class: "chart-label", text: g.label }));
    let x = labelWidth;
    let total = 0;
    for (const name of names) {
      const n = g.parts[name] || 0;
      if (!n) continue;
      const w = ((width - labelWidth - 50) * n) / max;
      const rect = svg("rect", { x, y: y + 3, width: Math.max(w, 1), height: rowHeight - 6, fill: colour(names.indexOf(name)) });
      rect.append(svg("title", { text: `${name}: ${n}` }));
      chart.append(rect);
      x += w;
      total += n;
    }
    chart.append(svg("text", { x: x + 4, y: y + 15, class: "chart-value", text: String(total) }));
  });
  const top = 30 + groups.length * rowHeight;
  names.forEach((name, i) => {
    const x = (i % 4) * (width / 4);
    const y = top + Math.floor(i / 4) * 18;
    chart.append(svg("rect", { x, y, width: 10, height: 10, fill: colour(i) }));
    chart.append(svg("text", { x: x + 14, y: y + 9, class: "chart-label", text: name }));
  });
  return chart;
}
