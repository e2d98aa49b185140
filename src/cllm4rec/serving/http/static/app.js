// The browsing page: talks only to this service's own JSON API (no build step, nothing from elsewhere).
"use strict";

const $ = (id) => document.getElementById(id);
let currentUser = null;

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body && body.error ? body.error.message : response.statusText;
    throw new Error(`${response.status}: ${message}`);
  }
  return body;
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
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

async function explainItem(row, rec) {
  document.querySelectorAll("#recs tbody tr").forEach((r) => r.classList.remove("selected"));
  row.classList.add("selected");
  const section = $("explanation");
  section.hidden = false;
  $("explain-item").textContent = rec.title ? `${rec.title} (${rec.item})` : rec.item;
  if (currentUser === null) {
    $("explain-text").textContent = "Explanations need a known user: the prompt names the user's token.";
    $("explain-meta").textContent = "";
    return;
  }
  $("explain-text").textContent = "generating\u2026";
  $("explain-meta").textContent = "";
  section.dataset.state = "loading";
  try {
    const params = new URLSearchParams({ user: currentUser, item: rec.item });
    const result = await api(`/v1/explain?${params}`);
    $("explain-text").textContent = result.text || "(no text generated)";
    const meta = [`prompt: "${result.prompt}"`, `${result.new_tokens} tokens in ${result.seconds}s`];
    if (result.note) meta.push(result.note);
    $("explain-meta").textContent = meta.join(" \u00b7 ");
    section.dataset.state = "ready";
  } catch (error) {
    $("explain-text").textContent = "";
    section.dataset.state = "error";
    showError(error.message);
  }
}

async function showUser(event) {
  event.preventDefault();
  showError("");
  $("explanation").hidden = true;
  $("results").dataset.state = "loading";
  const user = $("user").value.trim();
  const k = $("k").value || "10";
  try {
    const params = new URLSearchParams({ user, k });
    const [profile, result] = await Promise.all([
      api(`/v1/users/${encodeURIComponent(user)}`),
      api(`/v1/recommend?${params}`),
    ]);
    currentUser = user;
    renderHistory(profile.history);
    renderRecommendations(result, `for user ${user}`);
  } catch (error) {
    $("results").dataset.state = "error";
    showError(error.message);
  }
}

async function showHistory(event) {
  event.preventDefault();
  showError("");
  $("explanation").hidden = true;
  $("results").dataset.state = "loading";
  const history = $("history").value.split(/[\s,]+/).filter((s) => s.length > 0);
  const k = Number($("k").value || "10");
  try {
    const result = await api("/v1/recommend", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ history, k }),
    });
    const titled = await Promise.all(
      [...new Set(history)].map((item) =>
        api(`/v1/items/${encodeURIComponent(item)}`).then((info) => ({ item, title: info.title })),
      ),
    );
    currentUser = null;
    renderHistory(titled);
    renderRecommendations(result, "for this history");
  } catch (error) {
    $("results").dataset.state = "error";
    showError(error.message);
  }
}

async function start() {
  $("user-form").addEventListener("submit", showUser);
  $("history-form").addEventListener("submit", showHistory);
  try {
    const health = await api("/health");
    const backbone = health.backbone ? health.backbone.name || health.backbone.alias || "" : "";
    $("run-info").textContent =
      `run ${health.run_id} \u00b7 ${health.n_users} users \u00b7 ${health.n_items} items` +
      (backbone ? ` \u00b7 ${backbone}` : "");
    const users = await api("/v1/users?limit=1000");
    const list = $("user-list");
    for (const id of users.users) {
      const option = document.createElement("option");
      option.value = id;
      list.appendChild(option);
    }
    document.body.dataset.state = "ready";
  } catch (error) {
    showError(error.message);
  }
}

start();
