// The browsing page: talks only to this service's own JSON API (no build step, nothing from elsewhere).
//
// Every request belongs to one user action. A newer action of the same kind aborts the older one's requests
// (a click on another item stops the explanation being generated, and the server stops generating it), and a
// late answer is shown only if it still belongs to the latest action. An error clears what the last action
// had shown. A server started with an API key gets the key from a box on the page (kept for this tab).
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "cllm4rec-api-key";
let currentUser = null;
const latest = { results: null, explain: null }; // the AbortController of each kind's latest action

class NeedKey extends Error {}

function apiKey() {
  return sessionStorage.getItem(KEY_STORE) || "";
}

async function api(path, options = {}, signal = undefined) {
  const headers = { ...(options.headers || {}) };
  if (apiKey()) headers["X-API-Key"] = apiKey();
  const response = await fetch(path, { ...options, headers, signal });
  const body = await response.json().catch(() => null);
  if (response.status === 401) throw new NeedKey(body && body.error ? body.error.message : "API key needed");
  if (!response.ok) {
    const message = body && body.error ? body.error.message : response.statusText;
    throw new Error(`${response.status}: ${message}`);
  }
  return body;
}

// A new action of ``kind``: abort the previous one's requests; returns its controller.
function begin(kind) {
  if (latest[kind]) latest[kind].abort();
  latest[kind] = new AbortController();
  return latest[kind];
}

function isCurrent(kind, action) {
  return latest[kind] === action && !action.signal.aborted;
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

function askForKey(message) {
  $("key-form").hidden = false;
  document.body.dataset.state = "need-key";
  showError(apiKey() ? `the API key was refused: ${message}` : "");
  $("api-key").focus();
}

function fail(kind, action, error) {
  if (error.name === "AbortError" || !isCurrent(kind, action)) return; // a newer action took over
  if (error instanceof NeedKey) {
    askForKey(error.message);
  } else {
    showError(error.message);
  }
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
}

function clearResults() {
  $("history-list").replaceChildren();
  $("history-count").textContent = "";
  document.querySelector("#recs tbody").replaceChildren();
  $("k-shown").textContent = "k";
  $("who").textContent = "";
  clearExplanation();
}

function renderHistory(items) {
  const list = $("history-list");
  list.replaceChildren();
  for (const entry of items) {
    const li = document.createElement("li");
    li.textContent = entry.title ? `${entry.title} (${entry.item})` : entry.item;
    li.dataset.item = entry.item;
    list.appendChild(li);
  }
  $("history-count").textContent = `(${items.length})`;
}

function renderRecommendations(result, who) {
  const body = document.querySelector("#recs tbody");
  body.replaceChildren();
  for (const rec of result.items) {
    const row = document.createElement("tr");
    row.dataset.item = rec.item;
    cell(row, rec.rank);
    cell(row, rec.item, "item");
    cell(row, rec.title || "");
    cell(row, rec.score.toFixed(3), "score");
    row.addEventListener("click", () => explainItem(row, rec));
    body.appendChild(row);
  }
  $("k-shown").textContent = result.k;
  $("who").textContent = who;
  $("results").dataset.state = "ready";
}

// ----- explanations: progress while generating, the latest click only ---------------------------------------
let ticking = null;

function stopProgress() {
  if (ticking !== null) clearInterval(ticking);
  ticking = null;
  $("explain-progress").hidden = true;
}

function startProgress() {
  const started = performance.now();
  const elapsed = $("explain-elapsed");
  const tick = () => {
    elapsed.textContent = `generating\u2026 ${((performance.now() - started) / 1000).toFixed(1)} s`;
  };
  stopProgress();
  tick();
  ticking = setInterval(tick, 200);
  $("explain-progress").hidden = false;
}

function clearExplanation() {
  if (latest.explain) latest.explain.abort();
  stopProgress();
  const section = $("explanation");
  section.hidden = true;
  delete section.dataset.state;
  delete section.dataset.item;
}

async function explainItem(row, rec) {
  const action = begin("explain");
  document.querySelectorAll("#recs tbody tr").forEach((r) => r.classList.remove("selected"));
  row.classList.add("selected");
  showError("");
  const section = $("explanation");
  section.hidden = false;
  section.dataset.item = rec.item;
  $("explain-item").textContent = rec.title ? `${rec.title} (${rec.item})` : rec.item;
  $("explain-text").textContent = "";
  $("explain-meta").textContent = "";
  if (currentUser === null) {
    stopProgress();
    $("explain-text").textContent = "Explanations need a known user: the prompt names the user's token.";
    section.dataset.state = "ready";
    return;
  }
  section.dataset.state = "loading";
  startProgress();
  try {
    const params = new URLSearchParams({ user: currentUser, item: rec.item });
    const result = await api(`/v1/explain?${params}`, {}, action.signal);
    if (!isCurrent("explain", action)) return;
    stopProgress();
    $("explain-text").textContent = result.text || "(no text generated)";
    const meta = [`prompt: "${result.prompt}"`, `${result.new_tokens} tokens in ${result.seconds}s`];
    if (result.note) meta.push(result.note);
    $("explain-meta").textContent = meta.join(" \u00b7 ");
    section.dataset.state = "ready";
  } catch (error) {
    if (error.name === "AbortError" || !isCurrent("explain", action)) return; // stopped, or a newer click
    stopProgress();
    section.dataset.state = "error";
    fail("explain", action, error);
  }
}

function stopExplanation() {
  if (!latest.explain) return;
  latest.explain.abort();
  stopProgress();
  $("explain-text").textContent = "(stopped)";
  $("explanation").dataset.state = "stopped";
}

// ----- recommendations --------------------------------------------------------------------------------------
function startResults() {
  const action = begin("results");
  showError("");
  clearExplanation();
  $("results").dataset.state = "loading";
  return action;
}

function resultsFailed(action, error) {
  if (error.name === "AbortError" || !isCurrent("results", action)) return;
  clearResults(); // what an earlier request showed is not this request's answer
  currentUser = null;
  $("results").dataset.state = "error";
  fail("results", action, error);
}

async function showUser(event) {
  event.preventDefault();
  const action = startResults();
  const user = $("user").value.trim();
  const k = $("k").value || "10";
  try {
    const params = new URLSearchParams({ user, k });
    const [profile, result] = await Promise.all([
      api(`/v1/users/${encodeURIComponent(user)}`, {}, action.signal),
      api(`/v1/recommend?${params}`, {}, action.signal),
    ]);
    if (!isCurrent("results", action)) return;
    currentUser = user;
    renderHistory(profile.history);
    renderRecommendations(result, `for user ${user}`);
  } catch (error) {
    resultsFailed(action, error);
  }
}

async function showHistory(event) {
  event.preventDefault();
  const action = startResults();
  const history = $("history").value.split(/[\s,]+/).filter((s) => s.length > 0);
  const k = Number($("k").value || "10");
  try {
    const result = await api(
      "/v1/recommend",
      { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ history, k }) },
      action.signal,
    );
    const titled = await Promise.all(
      [...new Set(history)].map((item) =>
        api(`/v1/items/${encodeURIComponent(item)}`, {}, action.signal).then((info) => ({ item, title: info.title })),
      ),
    );
    if (!isCurrent("results", action)) return;
    currentUser = null;
    renderHistory(titled);
    renderRecommendations(result, "for this history");
  } catch (error) {
    resultsFailed(action, error);
  }
}

// ----- start-up and the key -----------------------------------------------------------------------------------
async function load() {
  try {
    const health = await api("/health");
    const backbone = health.backbone ? health.backbone.name || health.backbone.alias || "" : "";
    $("run-info").textContent =
      `run ${health.run_id} \u00b7 ${health.n_users} users \u00b7 ${health.n_items} items` +
      (backbone ? ` \u00b7 ${backbone}` : "");
    const users = await api("/v1/users?limit=1000");
    const list = $("user-list");
    list.replaceChildren();
    for (const id of users.users) {
      const option = document.createElement("option");
      option.value = id;
      list.appendChild(option);
    }
    $("key-form").hidden = true;
    showError("");
    document.body.dataset.state = "ready";
  } catch (error) {
    if (error instanceof NeedKey) {
      askForKey(error.message);
    } else {
      showError(error.message);
    }
  }
}

function useKey(event) {
  event.preventDefault();
  sessionStorage.setItem(KEY_STORE, $("api-key").value.trim());
  load();
}

function start() {
  $("user-form").addEventListener("submit", showUser);
  $("history-form").addEventListener("submit", showHistory);
  $("key-form").addEventListener("submit", useKey);
  $("explain-stop").addEventListener("click", stopExplanation);
  load();
}

start();
