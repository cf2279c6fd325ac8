// The search page: talks to /v1/facets, /v1/search/text and /v1/search/image.
"use strict";

const $ = (id) => document.getElementById(id);
const FILTERS = ["gender", "articleType"];
let lastQuery = null; // {kind: "text", query} or {kind: "image", file}
let requestSeq = 0;   // only the newest answer is shown

function target() {
  return document.querySelector('input[name="target"]:checked').value;
}

function filters() {
  const chosen = {};
  for (const name of FILTERS) {
    const value = $(name).value;
    if (value) chosen[name] = value;
  }
  return chosen;
}

function say(text, isError = false) {
  $("message").textContent = text;
  $("message").classList.toggle("error", isError);
}

async function loadFacets() {
  try {
    const response = await fetch("/v1/facets");
    if (!response.ok) throw new Error((await response.json()).detail);
    const facets = await response.json();
    $("catalogue").textContent = `${facets.count} products`;
    for (const name of FILTERS) {
      const values = facets.attributes[name];
      const select = $(name);
      if (!values || values.length === 0) {
        select.closest("label").hidden = true;
        continue;
      }
      for (const value of values) {
        const option = document.createElement("option");
        option.value = value;
        option.textContent = value;
        select.append(option);
      }
    }
  } catch (error) {
    say(`Could not load the filters: ${error.message}`, true);
  }
}

async function run() {
  if (!lastQuery) return;
  const seq = ++requestSeq;
  const k = Number($("k").value);
  let response;
  say("Searching…");
  $("results").setAttribute("aria-busy", "true");
  try {
    if (lastQuery.kind === "text") {
      response = await fetch("/v1/search/text", {
        method: "POST",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify({query: lastQuery.query, k, target: target(), filters: filters()}),
      });
    } else {
      const form = new FormData();
      form.append("file", lastQuery.file);
      form.append("k", String(k));
      form.append("target", target());
      form.append("filters", JSON.stringify(filters()));
      response = await fetch("/v1/search/image", {method: "POST", body: form});
    }
    const body = await response.json();
    if (seq !== requestSeq) return;
    if (!response.ok) {
      const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
      throw new Error(detail || response.statusText);
    }
    render(body);
  } catch (error) {
    if (seq !== requestSeq) return;
    $("results").replaceChildren();
    say(error.message, true);
  } finally {
    if (seq === requestSeq) $("results").setAttribute("aria-busy", "false");
  }
}

function resultImage(result) {
  const img = document.createElement("img");
  img.src = result.image_url;
  img.alt = result.text;
  img.loading = "lazy";
  return img;
}

function span(className, text) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}

function render(body) {
  const asGrid = target() === "image"; // photos: a grid; titles: a ranked list
  const container = document.createElement(asGrid ? "div" : "ol");
  container.className = asGrid ? "grid" : "list";
  body.results.forEach((result, i) => {
    const item = document.createElement(asGrid ? "div" : "li");
    item.className = "result";
    item.dataset.id = result.id;
    if (asGrid) {
      item.append(resultImage(result), document.createElement("br"),
                  span("title", result.text), document.createElement("br"),
                  span("score", result.score.toFixed(3)));
    } else {
      item.append(span("rank", `${i + 1}.`), resultImage(result),
                  span("title", result.text), span("score", result.score.toFixed(3)));
    }
    container.append(item);
  });
  $("results").replaceChildren(container);
  const n = body.results.length;
  say(n ? `${n} result${n === 1 ? "" : "s"} in ${body.took_ms.toFixed(1)} ms` : "No matching products.");
}

function searchWithPhoto(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) {
    say(`${file.name} is not an image.`, true);
    return;
  }
  lastQuery = {kind: "image", file};
  $("query-photo-img").src = URL.createObjectURL(file);
  $("query-photo").hidden = false;
  run();
}

function wire() {
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const query = $("query").value.trim();
    if (!query) {
      say("Type something to search for, or upload a photo.", true);
      return;
    }
    lastQuery = {kind: "text", query};
    $("query-photo").hidden = true;
    run();
  });
  $("file").addEventListener("change", () => searchWithPhoto($("file").files[0]));
  $("clear-photo").addEventListener("click", () => {
    $("query-photo").hidden = true;
    $("file").value = "";
    lastQuery = null;
    $("results").replaceChildren();
    say("");
  });
  for (const element of document.querySelectorAll('input[name="target"], #k, #gender, #articleType')) {
    element.addEventListener("change", run);
  }
  const zone = $("drop-zone");
  // Dropping anywhere on the page works; the zone lights up to show it.
  document.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  document.addEventListener("dragleave", (event) => {
    if (event.relatedTarget === null) zone.classList.remove("over");
  });
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    searchWithPhoto(event.dataTransfer.files[0]);
  });
}

wire();
loadFacets();
