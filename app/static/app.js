// The search page: talks to /v1/facets, /v1/search/text, /v1/search/image and
// /v1/products/{id}/similar. Its state lives in the URL (url-state.js): loading a link
// runs its search, and the back and forward buttons move between searches.
"use strict";

const $ = (id) => document.getElementById(id);
const FILTERS = ["gender", "articleType"];
const DEFAULT_K = "10";
let targets = ["product", "image", "text"]; // what the served index can search
let lastQuery = null; // {kind: "text", query} | {kind: "image", file, photoId} | {kind: "similar", id}
let requestSeq = 0;   // only the newest answer is shown
const photos = new Map(); // photoId -> File, so back/forward can return to a photo search
let nextPhotoId = 1;

function target() {
  return document.querySelector('input[name="target"]:checked').value;
}

function defaultTarget() {
  return targets.includes("product") ? "product" : "image";
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

function addOption(select, value) {
  const option = document.createElement("option");
  option.value = value;
  option.textContent = value;
  select.append(option);
}

async function loadFacets() {
  try {
    const response = await fetch("/v1/facets");
    if (!response.ok) throw new Error((await response.json()).detail);
    const facets = await response.json();
    $("catalogue").textContent = `${facets.count} products`;
    targets = facets.targets || targets;
    $("target-product").hidden = !targets.includes("product"); // an index built before them
    for (const name of FILTERS) {
      const values = facets.attributes[name];
      if (!values || values.length === 0) {
        $(name).closest("label").hidden = true;
        continue;
      }
      for (const value of values) addOption($(name), value);
    }
  } catch (error) {
    say(`Could not load the filters: ${error.message}`, true);
  }
}

// --- Searching and showing results. ---

function request(k) {
  if (lastQuery.kind === "text") {
    return fetch("/v1/search/text", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({query: lastQuery.query, k, target: target(), filters: filters()}),
    });
  }
  if (lastQuery.kind === "similar") {
    const params = new URLSearchParams({k: String(k), target: target(), ...filters()});
    return fetch(`/v1/products/${encodeURIComponent(lastQuery.id)}/similar?${params}`);
  }
  const form = new FormData();
  form.append("file", lastQuery.file);
  form.append("k", String(k));
  form.append("target", target());
  form.append("filters", JSON.stringify(filters()));
  return fetch("/v1/search/image", {method: "POST", body: form});
}

async function showQuery() {
  if (lastQuery.kind === "image") {
    $("query-photo-img").src = URL.createObjectURL(lastQuery.file);
    $("query-photo").hidden = false;
  } else if (lastQuery.kind === "similar") {
    const response = await fetch(`/v1/products/${encodeURIComponent(lastQuery.id)}`);
    if (!response.ok) return; // the search itself says what is wrong
    const product = await response.json();
    $("similar-to-img").src = product.image_url;
    $("similar-to-title").textContent = product.text;
    $("similar-to").hidden = false;
  }
}

async function run() {
  if (!lastQuery) return;
  const seq = ++requestSeq;
  say("Searching…");
  $("results").setAttribute("aria-busy", "true");
  try {
    showQuery();
    const response = await request(Number($("k").value));
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

function similarButton(result) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "similar secondary";
  button.dataset.id = result.id;
  button.textContent = "Similar";
  button.title = `Products similar to ${result.text}`;
  return button;
}

function render(body) {
  const asGrid = target() !== "text"; // photos and products: a grid; titles: a ranked list
  const container = document.createElement(asGrid ? "div" : "ol");
  container.className = asGrid ? "grid" : "list";
  body.results.forEach((result, i) => {
    const item = document.createElement(asGrid ? "div" : "li");
    item.className = "result";
    item.dataset.id = result.id;
    if (asGrid) {
      item.append(resultImage(result), document.createElement("br"),
                  span("title", result.text), document.createElement("br"),
                  span("score", result.score.toFixed(3)), similarButton(result));
    } else {
      item.append(span("rank", `${i + 1}.`), resultImage(result), span("title", result.text),
                  span("score", result.score.toFixed(3)), similarButton(result));
    }
    container.append(item);
  });
  $("results").replaceChildren(container);
  const n = body.results.length;
  say(n ? `${n} result${n === 1 ? "" : "s"} in ${body.took_ms.toFixed(1)} ms` : "No matching products.");
}

// --- What the shopper does. ---

function searchWithPhoto(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) {
    say(`${file.name} is not an image.`, true);
    return;
  }
  const photoId = nextPhotoId++;
  photos.set(photoId, file);
  lastQuery = {kind: "image", file, photoId};
  $("similar-to").hidden = true;
  $("query").value = "";
  history.pushState({photo: photoId}, "", searchUrl()); // no q: the photo stays here
  run();
}

function showSimilar(productId) {
  lastQuery = {kind: "similar", id: productId};
  $("query").value = "";
  $("query-photo").hidden = true;
  remember();
  window.scrollTo(0, 0);
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
    $("similar-to").hidden = true;
    remember();
    run();
  });
  $("file").addEventListener("change", () => searchWithPhoto($("file").files[0]));
  $("clear-photo").addEventListener("click", () => {
    $("query-photo").hidden = true;
    $("file").value = "";
    lastQuery = null;
    $("results").replaceChildren();
    say("");
    remember({replace: true});
  });
  for (const element of document.querySelectorAll('input[name="target"], #k, #gender, #articleType')) {
    element.addEventListener("change", () => {
      remember({replace: lastQuery !== null && lastQuery.kind === "image"});
      run();
    });
  }
  $("results").addEventListener("click", (event) => {
    const button = event.target.closest("button.similar");
    if (button) showSimilar(button.dataset.id);
  });
  window.addEventListener("popstate", restore);
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
loadFacets().then(restore); // a shared link runs its search once the filters are known
