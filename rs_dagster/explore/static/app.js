// rs-dagster explorer: a hash-routed page that renders the views' JSON. Served by `rs explore`, it reads
// /api/<route>; exported (the report folder, opened from file://), it reads the same JSON from
// data/*.js files that data/index.js lists (window.RS_EXPORT), loaded with <script> tags.
"use strict";

window.RS_DATA = window.RS_DATA || {};
const exported = window.RS_EXPORT || null;
const loadedScripts = {};

function currentRoute() {
  const hash = location.hash.replace(/^#/, "");
  return hash === "" ? "/" : hash;
}

function loadScript(src) {
  if (!loadedScripts[src]) {
    loadedScripts[src] = new Promise((resolve, reject) => {
      const tag = document.createElement("script");
      tag.src = src;
      tag.onload = resolve;
      tag.onerror = () => reject(new Error("cannot read " + src));
      document.head.appendChild(tag);
    });
  }
  return loadedScripts[src];
}

async function load(route) {
  if (exported) {
    const file = exported.files[route];
    if (!file) {
      return { error: "This view is not in the exported report (" + exported.note + "); run `rs explore` to see it." };
    }
    await loadScript(file);
    return window.RS_DATA[route];
  }
  const [path, query] = route.split("?");
  const response = await fetch("api" + (path === "/" ? "/leaderboard" : path) + (query ? "?" + query : ""));
  return response.json();
}

function element(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value !== undefined && value !== null && value !== "") node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function cell(value) {
  if (value && typeof value === "object" && "href" in value) {
    const external = !value.href.startsWith("#");
    return element("a", { href: value.href, target: external ? "_blank" : "", rel: external ? "noopener" : "" }, value.text);
  }
  return document.createTextNode(value === null || value === undefined ? "—" : String(value));
}

// Keep only the rows of the chosen models in every inline dataset of a Vega-Lite spec.
function withModels(spec, chosen) {
  if (Array.isArray(spec)) {
    const rows = spec.filter((row) => !(row && typeof row === "object" && "model" in row && !chosen.has(row.model)));
    return rows.map((row) => withModels(row, chosen));
  }
  if (spec && typeof spec === "object") {
    return Object.fromEntries(Object.entries(spec).map(([key, value]) => [key, withModels(value, chosen)]));
  }
  return spec;
}

function embed(container, spec) {
  return vegaEmbed(container, spec, { actions: false, renderer: "svg" }).catch((error) => {
    console.error("chart failed to render: " + error);
    container.append(element("p", { class: "error" }, "This chart could not be drawn: " + error));
  });
}

function chartBlock(block) {
  const wrapper = element("div", { class: "chart", "data-chart": block.name });
  const target = element("div", { class: "vega" });
  if (block.models.length > 1) {
    const chosen = new Set(block.models);
    const picker = element("div", { class: "models" }, "Models:");
    for (const model of block.models) {
      const box = element("input", { type: "checkbox", value: model });
      box.checked = true;
      box.addEventListener("change", () => {
        if (box.checked) chosen.add(model); else chosen.delete(model);
        embed(target, withModels(block.spec, chosen));
      });
      picker.append(element("label", {}, box, " " + model));
    }
    wrapper.append(picker);
  }
  wrapper.append(target);
  embed(target, block.spec);
  return wrapper;
}

function choiceBlock(block) {
  const select = element("select", { "aria-label": block.label });
  block.options.forEach((option, index) => select.append(element("option", { value: index }, option.label)));
  const body = element("div", { class: "choice-body" });
  const show = () => body.replaceChildren(...block.options[Number(select.value)].blocks.map(renderBlock));
  select.addEventListener("change", show);
  show();
  return element("div", {}, element("label", { class: "choice" }, block.label + ": ", select), body);
}

function pagerBlock(block) {
  const bar = element("div", { class: "pager", "data-pages": block.pages },
    `${block.total} samples, page ${block.page + 1} of ${block.pages}`);
  if (exported && block.pages > 1) bar.append(" (" + exported.note + ")");
  const pageLink = (page, label) => element("a", { href: "#" + block.route + (page ? "?page=" + (page + 1) : "") }, label);
  if (!exported) {
    if (block.page > 0) bar.append(pageLink(block.page - 1, "‹ previous"));
    if (block.page + 1 < block.pages) bar.append(pageLink(block.page + 1, "next ›"));
  }
  return bar;
}

function renderBlock(block) {
  switch (block.type) {
    case "heading":
      return element("h2", {}, block.text);
    case "text":
      return element("p", {}, block.text);
    case "note":
      return element("p", { class: "note" }, block.text);
    case "pre":
      return element("section", { "data-pre": block.name }, element("h2", {}, block.label), element("pre", {}, block.text));
    case "fields": {
      const list = element("dl", { class: "fields", "data-fields": block.name });
      for (const item of block.items) {
        const outcome = item.outcome ? "outcome-" + item.value : "";
        list.append(element("dt", {}, item.label), element("dd", { "data-field": item.key, class: outcome }, cell(item.value)));
      }
      return list;
    }
    case "table": {
      const head = element("tr", {}, ...block.columns.map((c) => element("th", {}, c)));
      const outcomes = new Set(block.outcome_columns || []);  // cells holding an outcome, coloured by it (style.css)
      const td = (v, i) => element("td", { class: outcomes.has(i) ? "outcome-" + v : "" }, cell(v));
      const body = element("tbody", {}, ...block.rows.map((row) => element("tr", {}, ...row.map(td))));
      return element("table", { "data-table": block.name }, element("thead", {}, head), body);
    }
    case "chart":
      return chartBlock(block);
    case "choice":
      return choiceBlock(block);
    case "pager":
      return pagerBlock(block);
    default:
      return element("p", { class: "error" }, "unknown block " + block.type);
  }
}

async function show() {
  const view = document.getElementById("view");
  const crumbs = document.getElementById("crumbs");
  let data;
  try {
    data = await load(currentRoute());
  } catch (error) {
    data = { error: String(error) };
  }
  if (data.error) {
    crumbs.replaceChildren(cell({ text: "Leaderboard", href: "#/" }));
    view.replaceChildren(element("h1", {}, "Not found"), element("p", { class: "error" }, data.error));
    document.body.dataset.ready = currentRoute();
    return;
  }
  document.title = data.title + " · rs-dagster";
  crumbs.replaceChildren(...data.crumbs.map(cell));
  view.replaceChildren(element("h1", {}, data.title), ...data.blocks.map(renderBlock));
  window.scrollTo(0, 0);
  document.body.dataset.ready = currentRoute();
}

if (exported) document.getElementById("banner").textContent = "Exported " + exported.generated + " · " + exported.note;
window.addEventListener("hashchange", show);
show();
