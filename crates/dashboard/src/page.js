"use strict";
(function () {
  const data = JSON.parse(document.getElementById("data").textContent);
  const programmes = data.programmes.map((p, id) => Object.assign({ id: id }, p));
  // Computed once: each programme's estimates by outcome key (the first of a key wins) and the
  // text the search box looks in.
  for (const p of programmes) {
    p.byKey = new Map();
    for (const e of p.effects) {
      const key = e.outcome + "|" + e.measure;
      if (!p.byKey.has(key)) p.byKey.set(key, e);
    }
    p.text = [p.name, p.organisation, p.type, p.description, period(p)].join(" ").toLowerCase();
  }
  const outcomes = data.outcomes;
  const SVG = "http://www.w3.org/2000/svg";
  const state = { search: "", outcome: "all", type: "all", result: "all", sort: "name", dir: 1, selected: new Set() };

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) node.setAttribute(k, v);
    }
    for (const c of children || []) node.append(c);
    return node;
  }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function effectOf(p, key) {
    return p.byKey.get(key) || null;
  }
  // SVG markup for a forest plot's many marks, parsed at once (far faster than one DOM call
  // per attribute); every attribute value and text is escaped.
  const ENTITY = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;" };
  function esc(v) {
    const text = String(v);
    return /[&<>"]/.test(text) ? text.replace(/[&<>"]/g, c => ENTITY[c]) : text;
  }
  // Numbers (coordinates) to a hundredth of a pixel; they need no escaping.
  function attr(v) {
    return typeof v === "number" ? String(Math.round(v * 100) / 100) : esc(v);
  }
  function mark(tag, attrs, inner) {
    let s = "<" + tag;
    for (const k in attrs) s += " " + k + "=\"" + attr(attrs[k]) + "\"";
    return s + ">" + (inner === undefined ? "" : inner) + "</" + tag + ">";
  }
  function fmt(v, digits) {
    return (v < 0 ? "\u2212" : "") + Math.abs(v).toFixed(digits);
  }
  function shown(o, v) { return v * o.scale; }
  function period(p) {
    if (p.start === "unspecified" && p.end === "unspecified") return "unspecified";
    return p.start + " \u2013 " + p.end;
  }
  function outcomeLabel(o) { return o.outcome + " (" + o.measure.replace("_", " ") + ")"; }

  // The result of a programme for the chosen outcome, or over all outcomes.
  function resultOf(p) {
    if (state.outcome !== "all") {
      const e = effectOf(p, state.outcome);
      return e ? e.result : "not_published";
    }
    if (p.effects.some(e => e.result === "significant")) return "significant";
    if (p.effects.some(e => e.result === "inconclusive")) return "inconclusive";
    return "not_published";
  }
  function visibleOutcomes() {
    return state.outcome === "all" ? outcomes : outcomes.filter(o => o.key === state.outcome);
  }
  function matches(p) {
    if (state.type !== "all" && p.type !== state.type) return false;
    if (state.result !== "all" && resultOf(p) !== state.result) return false;
    if (!state.search) return true;
    return state.search.split(/\s+/).every(word => p.text.includes(word));
  }
  function sortValue(p) {
    switch (state.sort) {
      case "name": case "organisation": case "type": return p[state.sort].toLowerCase();
      case "period": return p.start;
      case "people": return p.people;
      default: { const e = effectOf(p, state.sort); return e && e.difference !== null ? e.difference : null; }
    }
  }
  function visible() {
    const rows = programmes.filter(matches);
    rows.sort((a, b) => {
      const x = sortValue(a), y = sortValue(b);
      if (x === null && y === null) return a.id - b.id;
      if (x === null) return 1;
      if (y === null) return -1;
      return (x < y ? -1 : x > y ? 1 : a.id - b.id) * state.dir;
    });
    return rows;
  }

  // ------------------------------------------------------------------ the table
  function header() {
    const columns = [["name", "Programme"], ["organisation", "Organisation"], ["type", "Type"], ["period", "Period"], ["people", "People"]]
      .concat(visibleOutcomes().map(o => [o.key, outcomeLabel(o)]));
    const row = el("tr", {}, [el("th", { scope: "col" }, ["Compare"])]);
    for (const [key, label] of columns) {
      const button = el("button", { type: "button", "data-sort": key }, [label]);
      button.addEventListener("click", () => {
        state.dir = state.sort === key ? -state.dir : 1;
        state.sort = key;
        update();
      });
      const sort = state.sort === key ? (state.dir > 0 ? "ascending" : "descending") : null;
      row.append(el("th", { scope: "col", "aria-sort": sort }, [button]));
    }
    return row;
  }
  function effectCell(p, o) {
    const e = effectOf(p, o.key);
    const cell = inner => mark("td", { "data-outcome": o.key }, inner);
    if (!e || e.result === "not_published") {
      return cell(mark("span", { class: "mark not_published" }, "not published"));
    }
    const d = 1;
    const text = fmt(shown(o, e.difference), d) + " (" + fmt(shown(o, e.ci_low), d) + " to " + fmt(shown(o, e.ci_high), d) + ")";
    return cell(mark("span", { class: "effect", title: o.unit }, esc(text)) + mark("span", { class: "mark " + e.result }, esc(e.result)));
  }
  function rowMarkup(p) {
    const checked = state.selected.has(p.id) ? " checked" : "";
    const box = "<input type=\"checkbox\" aria-label=\"" + esc("compare " + p.name) + "\"" + checked + ">";
    let name = p.report ? mark("a", { href: p.report }, esc(p.name)) : esc(p.name);
    if (p.description) name += mark("span", { class: "desc" }, esc(p.description));
    let cells = mark("td", {}, box) + mark("td", {}, name) + mark("td", {}, esc(p.organisation)) + mark("td", {}, esc(p.type)) +
      mark("td", {}, esc(period(p))) + mark("td", { class: "num" }, esc(p.people === null ? "[c]" : p.people.toLocaleString("en-GB")));
    for (const o of visibleOutcomes()) cells += effectCell(p, o);
    return mark("tr", { "data-id": p.id, "data-name": p.name }, cells);
  }
  // Rows are built once per outcome choice (as markup, parsed at once) and reused: a search, a
  // filter or a sort only puts existing rows in a new order, and a ticked box stays ticked.
  const rowCache = new Map();
  let rowCacheOutcome = null;
  function tableRows(rows) {
    if (rowCacheOutcome !== state.outcome) {
      rowCache.clear();
      rowCacheOutcome = state.outcome;
    }
    const missing = rows.filter(p => !rowCache.has(p.id));
    if (missing.length) {
      const holder = document.createElement("tbody");
      holder.innerHTML = missing.map(rowMarkup).join("");
      const built = [...holder.rows];
      missing.forEach((p, i) => rowCache.set(p.id, built[i]));
    }
    return rows.map(p => rowCache.get(p.id));
  }

  // ------------------------------------------------------------------ forest plots
  function niceTicks(lo, hi) {
    const span = hi - lo || 1;
    const step0 = Math.pow(10, Math.floor(Math.log10(span / 5)));
    const step = [1, 2, 5, 10].map(m => m * step0).find(s => span / s <= 6) || step0 * 10;
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) ticks.push(Math.abs(t) < 1e-12 ? 0 : t);
    return ticks;
  }
  function forest(o, rows) {
    const studies = rows.map(p => [p, effectOf(p, o.key)]).filter(([, e]) => e && e.result !== "not_published");
    const types = new Set(rows.map(p => p.type));
    const pooled = data.pooled.filter(g => g.outcome + "|" + g.measure === o.key && types.has(g.type) && g.reml);
    const box = el("div", { class: "forest-block" }, [el("h3", {}, [outcomeLabel(o) + ", difference in " + o.unit])]);
    if (!studies.length) {
      box.append(el("p", { class: "note" }, ["No programme shown has a published estimate of this outcome."]));
      return box;
    }
    let lo = 0, hi = 0;
    for (const [, e] of studies) { lo = Math.min(lo, shown(o, e.ci_low)); hi = Math.max(hi, shown(o, e.ci_high)); }
    for (const g of pooled) { lo = Math.min(lo, shown(o, g.reml.pi_low)); hi = Math.max(hi, shown(o, g.reml.pi_high)); }
    const pad = (hi - lo) * 0.05 || 1;
    lo -= pad; hi += pad;
    const W = 760, left = 250, right = 150, rowH = 22, top = 10;
    const n = studies.length + pooled.length;
    const H = top + n * rowH + 40;
    const x = v => left + (v - lo) / (hi - lo) * (W - left - right);
    const plot = svg("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, class: "forest", "data-outcome": o.key, role: "img",
      "aria-label": "Forest plot of " + outcomeLabel(o) + ": " + studies.length + " programmes" });
    const parts = [];
    for (const t of niceTicks(lo, hi)) {
      parts.push(mark("line", { x1: x(t), x2: x(t), y1: top, y2: H - 28, stroke: t === 0 ? "#5b6472" : "#e3e6eb" }));
      parts.push(mark("text", { x: x(t), y: H - 12, "text-anchor": "middle", class: "muted" }, esc(fmt(t, Math.abs(t) < 10 && t % 1 !== 0 ? 1 : 0))));
    }
    studies.forEach(([p, e], i) => {
      const y = top + i * rowH + rowH / 2;
      const label = p.name.length > 34 ? p.name.slice(0, 33) + "\u2026" : p.name;
      const colour = e.result === "significant" ? "#1c7c54" : "#9a5b00";
      parts.push(mark("g", { class: "study", "data-name": p.name },
        mark("title", {}, esc(p.name + ": " + fmt(shown(o, e.difference), 1) + " (" + fmt(shown(o, e.ci_low), 1) + " to " + fmt(shown(o, e.ci_high), 1) + ")")) +
        mark("text", { x: 4, y: y + 4 }, esc(label)) +
        mark("line", { x1: x(shown(o, e.ci_low)), x2: x(shown(o, e.ci_high)), y1: y, y2: y, stroke: colour, "stroke-width": 2 }) +
        mark("rect", { x: x(shown(o, e.difference)) - 4, y: y - 4, width: 8, height: 8, fill: colour }) +
        mark("text", { x: W - right + 8, y: y + 4, class: "muted" }, esc(fmt(shown(o, e.difference), 1) + " [" + fmt(shown(o, e.ci_low), 1) + ", " + fmt(shown(o, e.ci_high), 1) + "]"))));
    });
    pooled.forEach((gr, j) => {
      const r = gr.reml;
      const y = top + (studies.length + j) * rowH + rowH / 2;
      const [a, m, b] = [x(shown(o, r.ci_low)), x(shown(o, r.estimate)), x(shown(o, r.ci_high))];
      parts.push(mark("g", { class: "pooled", "data-type": gr.type },
        mark("title", {}, esc("Pooled " + gr.type + " (REML, k = " + r.k + "); dashed: 95% prediction interval")) +
        mark("text", { x: 4, y: y + 4 }, esc("Pooled: " + gr.type + " (k = " + r.k + ")")) +
        mark("line", { x1: x(shown(o, r.pi_low)), x2: x(shown(o, r.pi_high)), y1: y, y2: y, stroke: "#1f5fa8", "stroke-dasharray": "4 3" }) +
        mark("path", { d: "M" + a + " " + y + " L" + m + " " + (y - 6) + " L" + b + " " + y + " L" + m + " " + (y + 6) + " Z", fill: "#1f5fa8" }) +
        mark("text", { x: W - right + 8, y: y + 4, class: "muted" }, esc(fmt(shown(o, r.estimate), 1) + " [" + fmt(shown(o, r.ci_low), 1) + ", " + fmt(shown(o, r.ci_high), 1) + "]"))));
    });
    plot.innerHTML = parts.join("");
    box.append(plot);
    return box;
  }

  // ------------------------------------------------------------------ pooled table
  function pooledTable(rows) {
    const types = new Set(rows.map(p => p.type));
    const keys = new Set(visibleOutcomes().map(o => o.key));
    const groups = data.pooled.filter(g => types.has(g.type) && keys.has(g.outcome + "|" + g.measure));
    if (!groups.length) {
      return el("p", { class: "note" }, ["No type has two or more programmes shown with a published estimate of the same outcome (programmes of unspecified type are not pooled)."]);
    }
    const head = el("tr", {}, ["Type", "Outcome", "k", "REML estimate (95% CI)", "DL estimate (95% CI)", "\u03c4\u00b2 (REML)", "I\u00b2 (REML)", "95% prediction interval"].map(h => el("th", { scope: "col" }, [h])));
    const body = el("tbody");
    for (const g of groups) {
      const o = outcomes.find(x => x.key === g.outcome + "|" + g.measure);
      const est = r => r ? fmt(shown(o, r.estimate), 2) + " (" + fmt(shown(o, r.ci_low), 2) + " to " + fmt(shown(o, r.ci_high), 2) + ")" : "\u2013";
      const r = g.reml;
      body.append(el("tr", { "data-type": g.type }, [
        el("td", {}, [g.type]), el("td", {}, [outcomeLabel(o) + ", " + o.unit]), el("td", { class: "num", title: g.programmes.join(", ") }, [String(g.programmes.length)]),
        el("td", {}, [est(r)]), el("td", {}, [est(g.dl)]),
        el("td", { class: "num" }, [r ? (r.tau2 * o.scale * o.scale).toFixed(3) : "\u2013"]),
        el("td", { class: "num" }, [r ? r.i2_percent.toFixed(1) + "%" : "\u2013"]),
        el("td", {}, [r ? fmt(shown(o, r.pi_low), 2) + " to " + fmt(shown(o, r.pi_high), 2) : "\u2013"]),
      ]));
    }
    return el("table", {}, [el("thead", {}, [head]), body]);
  }

  // ------------------------------------------------------------------ survival curves
  function drawSurvival() {
    const holder = document.getElementById("survival");
    holder.replaceChildren();
    const chosen = programmes.filter(p => state.selected.has(p.id));
    if (!chosen.length) {
      holder.append(el("p", { class: "note" }, ["Tick programmes in the table to see their survival curves side by side (participants against their matched comparison group)."]));
      return;
    }
    const names = [...new Set(chosen.flatMap(p => p.survival.map(s => s.outcome)))];
    if (!names.length) {
      holder.append(el("p", { class: "note" }, ["None of the programmes ticked published survival curves."]));
      return;
    }
    for (const name of names) {
      holder.append(el("h3", {}, [name]));
      holder.append(el("p", { class: "legend" }, [el("span", { class: "swatch treated" }), "participants", el("span", { class: "swatch comparison" }), "comparison group"]));
      const steps = chosen.flatMap(p => p.survival.filter(s => s.outcome === name));
      const maxDay = Math.max(1, ...steps.map(s => s.day));
      const minS = Math.min(0.9, ...steps.map(s => s.survival));
      const floor = Math.max(0, Math.floor(minS * 10) / 10);
      const grid = el("div", { class: "charts" });
      for (const p of chosen) {
        const own = p.survival.filter(s => s.outcome === name);
        const card = el("div", { class: "chart", "data-name": p.name }, [el("h3", {}, [p.name])]);
        if (!own.length) { card.append(el("p", { class: "note" }, ["Not published for this programme."])); grid.append(card); continue; }
        const W = 320, H = 200, l = 40, r = 10, t = 10, b = 30;
        const x = d => l + d / maxDay * (W - l - r);
        const y = s => t + (1 - s) / (1 - floor) * (H - t - b);
        const chart = svg("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img", "aria-label": "Survival curves of " + p.name + " for " + name });
        for (const v of [floor, (1 + floor) / 2, 1]) {
          chart.append(svg("line", { x1: l, x2: W - r, y1: y(v), y2: y(v), stroke: "#e3e6eb" }));
          chart.append(svg("text", { x: l - 4, y: y(v) + 4, "text-anchor": "end", class: "muted" }, v.toFixed(2)));
        }
        chart.append(svg("text", { x: l, y: H - 8, class: "muted" }, "0"));
        chart.append(svg("text", { x: W - r, y: H - 8, "text-anchor": "end", class: "muted" }, maxDay + " days"));
        for (const [group, colour] of [["treated", "#1f5fa8"], ["comparison", "#b0562f"]]) {
          const pts = own.filter(s => s.group === group).sort((a, c) => a.day - c.day);
          if (!pts.length) continue;
          let d = "M" + x(0) + " " + y(1), last = 1;
          for (const s of pts) { d += " L" + x(s.day) + " " + y(last) + " L" + x(s.day) + " " + y(s.survival); last = s.survival; }
          chart.append(svg("path", { d: d, fill: "none", stroke: colour, "stroke-width": 2, class: "curve " + group }));
        }
        card.append(chart);
        grid.append(card);
      }
      holder.append(grid);
    }
  }

  // ------------------------------------------------------------------ wiring
  function update() {
    const rows = visible();
    const table = document.getElementById("programmes");
    table.tHead.replaceChildren(header());
    table.tBodies[0].replaceChildren(...tableRows(rows));
    document.getElementById("count").textContent = rows.length + " of " + programmes.length + " programmes shown";
    const forestHolder = document.getElementById("forest");
    forestHolder.replaceChildren(...visibleOutcomes().map(o => forest(o, rows)));
    document.getElementById("pooled").replaceChildren(pooledTable(rows));
    drawSurvival();
  }
  function fill(id, values) {
    const select = document.getElementById(id);
    for (const [value, label] of values) select.append(el("option", { value: value }, [label]));
    select.addEventListener("change", () => { state[id] = select.value; update(); });
  }
  fill("outcome", outcomes.map(o => [o.key, outcomeLabel(o)]));
  fill("type", [...new Set(programmes.map(p => p.type))].sort().map(t => [t, t]));
  fill("result", []);
  // The compare boxes of every row, by delegation.
  document.getElementById("programmes").tBodies[0].addEventListener("change", event => {
    const box = event.target;
    const row = box.closest("tr");
    if (box.type !== "checkbox" || !row) return;
    const id = Number(row.dataset.id);
    if (box.checked) state.selected.add(id); else state.selected.delete(id);
    drawSurvival();
  });
  const search = document.getElementById("search");
  search.addEventListener("input", () => { state.search = search.value.trim().toLowerCase(); update(); });
  update();
})();
