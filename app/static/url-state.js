// The page's state in the URL: ?q=...&target=...&k=...&gender=...&articleType=... for a
// text search, ?similar=ID&target=...&k=... for "more like this". A photo never goes into
// the URL (it stays in this page's memory, for back and forward). Loaded before app.js,
// whose globals ($, lastQuery, targets, photos, ...) these functions use when called.
"use strict";

function searchUrl() {
  const params = new URLSearchParams();
  if (lastQuery && lastQuery.kind === "text") params.set("q", lastQuery.query);
  if (lastQuery && lastQuery.kind === "similar") params.set("similar", lastQuery.id);
  params.set("target", target());
  params.set("k", $("k").value);
  for (const [name, value] of Object.entries(filters())) params.set(name, value);
  return `${location.pathname}?${params}`;
}

// Record the search now on screen: a new history entry, or (same search, or a photo
// search's options changing) the current one updated.
function remember({replace = false} = {}) {
  const state = lastQuery && lastQuery.kind === "image" ? {photo: lastQuery.photoId} : {};
  const url = searchUrl();
  if (replace || url === location.pathname + location.search) {
    history.replaceState(state, "", url);
  } else {
    history.pushState(state, "", url);
  }
}

function setControls(params) {
  const wanted = params.get("target");
  const chosen = targets.includes(wanted) ? wanted : defaultTarget();
  document.querySelector(`input[name="target"][value="${chosen}"]`).checked = true;
  const k = params.get("k") || DEFAULT_K;
  if (/^\d+$/.test(k) && Number(k) >= 1 && Number(k) <= 100) {
    if (![...$("k").options].some((o) => o.value === k)) addOption($("k"), k);
    $("k").value = k;
  }
  for (const name of FILTERS) {
    const value = params.get(name) || "";
    // A value this catalogue lacks stays chosen, so that the link's search is the one run.
    if (value && ![...$(name).options].some((o) => o.value === value)) addOption($(name), value);
    $(name).value = value;
  }
}

// Show the search the URL (and the history entry's state) describes, and run it.
function restore() {
  const params = new URLSearchParams(location.search);
  setControls(params);
  const photoId = history.state && history.state.photo;
  $("query").value = params.get("q") || "";
  $("query-photo").hidden = true;
  $("similar-to").hidden = true;
  if (params.get("q")) {
    lastQuery = {kind: "text", query: params.get("q")};
  } else if (params.get("similar")) {
    lastQuery = {kind: "similar", id: params.get("similar")};
  } else if (photoId && photos.has(photoId)) {
    lastQuery = {kind: "image", file: photos.get(photoId), photoId};
  } else {
    lastQuery = null;
    $("results").replaceChildren();
    say(photoId ? "That search used a photo, which is not kept in the address: upload it again." : "");
    return;
  }
  // The address shows what runs (a target this index lacks was replaced, say).
  history.replaceState(history.state, "", searchUrl());
  run();
}
