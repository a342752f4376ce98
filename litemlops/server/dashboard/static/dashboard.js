// The dashboard's only script: keeps the admin token for the tab, sends changes to the
// admin API with it, and refreshes a page's main part in place while the tab is seen.
"use strict";

const TOKEN = "litemlops-token";

function notice(text, bad) {
  const box = document.getElementById("notice");
  box.textContent = text;
  box.className = bad ? "bad" : "ok";
}

function showTokenState() {
  const state = document.querySelector("#token .token-state");
  if (state) state.textContent = sessionStorage.getItem(TOKEN) ? "token kept" : "no token";
}

// A timed refresh leaves the page alone while the user is in one of its fields.
async function refresh(force) {
  const main = document.getElementById("main");
  const answer = await fetch(location.href, { headers: { Accept: "text/html" } });
  if (!answer.ok) return;
  const page = new DOMParser().parseFromString(await answer.text(), "text/html");
  const fresh = page.getElementById("main");
  if (fresh && (force || !main.contains(document.activeElement))) main.innerHTML = fresh.innerHTML;
}

function every() {
  const seconds = Number(document.getElementById("main").dataset.refresh || 0);
  if (!seconds) return;
  setInterval(() => {
    if (document.visibilityState === "visible") refresh(false).catch(() => {});
  }, seconds * 1000);
}

async function change(form) {
  const token = sessionStorage.getItem(TOKEN);
  if (!token) {
    notice("enter the admin token first (it is in <home>/token)", true);
    return;
  }
  const body = {};
  let url = form.dataset.url;
  for (const field of form.elements) {
    if (!field.name) continue;
    if (url.includes(`{${field.name}}`)) {
      url = url.replace(`{${field.name}}`, encodeURIComponent(field.value));
    } else if (field.value !== "") {
      body[field.name] = field.dataset.type === "int" ? Number(field.value) : field.value;
    }
  }
  const answer = await fetch(url, {
    method: form.dataset.method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await answer.text();
  if (answer.ok) {
    notice(`${form.dataset.done}: ${text}`, false);
    await refresh(true);
  } else {
    let message = text;
    try { message = JSON.parse(text).error.message; } catch (e) { /* not JSON */ }
    notice(`${answer.status}: ${message}`, true);
  }
}

// The API page: send an operation as its form fills it in, and show the answer.
async function tryOperation(form) {
  let url = form.dataset.path;
  const query = new URLSearchParams();
  let body;
  for (const field of form.elements) {
    if (!field.name || field.value === "") continue;
    const [where, name] = field.name.split(":");
    if (where === "path") url = url.replace(`{${name}}`, encodeURIComponent(field.value));
    else if (where === "query") query.append(name, field.value);
    else if (field.name === "body") body = field.value;
  }
  const headers = {};
  const token = sessionStorage.getItem(TOKEN);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const answer = await fetch(query.size ? `${url}?${query}` : url,
                             { method: form.dataset.method, headers, body });
  let text = await answer.text();
  try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
  form.querySelector(".answer").textContent = `${answer.status} ${answer.statusText}\n${text}`;
}

document.addEventListener("DOMContentLoaded", () => {
  showTokenState();
  document.getElementById("token").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = event.target.elements.token;
    if (input.value) sessionStorage.setItem(TOKEN, input.value.trim());
    input.value = "";
    showTokenState();
  });
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.matches("form.try")) {
      event.preventDefault();
      tryOperation(form).catch((error) => notice(String(error), true));
      return;
    }
    if (!form.matches("form.change")) return;
    event.preventDefault();
    change(form).catch((error) => notice(String(error), true));
  });
  every();
});
