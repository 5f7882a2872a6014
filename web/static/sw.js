// Nightcall's service worker, served at /sw.js so that its scope is the
// whole origin. It does three things:
//  - keeps the console's shell in a cache, so the installed app opens with no
//    network (and says it is offline) instead of the browser's error page;
//  - shows a page that arrives by Web Push on the lock screen, with Accept
//    and Open, and posts a `received` receipt the moment it arrives (so a
//    delivered push stops the receipt timeout as the pager socket's does);
//  - on a click posts `seen`, and for Accept accepts the escalation and then
//    opens its case.
// The push payload holds the page and escalation IDs, the home and NEWS2:
// never a resident's name, observations or free text.
"use strict";

const SHELL_CACHE = "nightcall-shell-v1";
const SHELL = [
  "/console",
  "/static/app.js",
  "/static/app.css",
  "/static/call.js",
  "/static/push.js",
  "/static/manifest.webmanifest",
  "/static/icons/icon-192.png",
  "/static/icons/icon-512.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL_CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const k of await caches.keys()) if (k !== SHELL_CACHE) await caches.delete(k);
    await self.clients.claim();
  })());
});

// The shell is network first (a new release reaches the device at once), the
// cached copy only when the network fails. The API is never cached.
self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || url.pathname.startsWith("/api/")) return;
  const shellPath = req.mode === "navigate" && url.pathname === "/console" ? "/console" : url.pathname;
  if (!SHELL.includes(shellPath)) return;
  event.respondWith((async () => {
    const cache = await caches.open(SHELL_CACHE);
    try {
      const resp = await fetch(req);
      if (resp.ok) cache.put(shellPath, resp.clone()).catch(() => {});
      return resp;
    } catch (err) {
      const hit = await cache.match(shellPath);
      if (hit) return hit;
      throw err;
    }
  })());
});

// receipt tells the server a device got (received) or showed (seen) a page.
function receipt(page, state) {
  if (!page || !page.page_id) return Promise.resolve();
  return fetch("/api/v1/pages/" + encodeURIComponent(page.page_id) + "/receipts", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ state, device: page.device || "push" }),
  }).catch(() => { /* offline: the receipt timeout pages the next level, as it should */ });
}

function scoreText(s) {
  if (!s) return "soft signs only";
  if (s.total !== null && s.total !== undefined) return "NEWS2 " + s.total + (s.risk ? " (" + s.risk + " risk)" : "");
  return "NEWS2 partial, at least " + (s.at_least !== undefined && s.at_least !== null ? s.at_least : "?") + (s.risk ? " (" + s.risk + " risk or more)" : "");
}

function clock(iso) {
  try { return new Date(iso).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", hour12: false }); } catch (e) { return ""; }
}

// notify shows a page on the lock screen, one notification per escalation
// (a later page replaces an earlier one and rings again).
function notify(p) {
  const home = (p.care_home && p.care_home.name) || "A care home";
  let title = "Nightcall page: " + home;
  let body = scoreText(p.news2) + (p.level ? " · level " + p.level : "") + (p.raised_at ? " · raised " + clock(p.raised_at) : "");
  if (p.reason === "join_overdue") {
    title = "Nightcall: " + home + " is waiting";
    body = "You accepted but have not joined the video call. Join now, or phone the home.";
  }
  return self.registration.showNotification(title, {
    body, tag: "escalation-" + p.escalation_id, renotify: true, requireInteraction: true,
    icon: "/static/icons/icon-192.png", badge: "/static/icons/icon-192.png",
    data: p, timestamp: Date.now(),
    actions: [{ action: "accept", title: "Accept" }, { action: "open", title: "Open" }],
  });
}

async function dismiss(escalationID) {
  for (const n of await self.registration.getNotifications({ tag: "escalation-" + escalationID })) n.close();
}

self.addEventListener("push", (event) => {
  let p = null;
  try { p = event.data ? event.data.json() : null; } catch (e) { p = null; }
  if (!p || !p.type) return;
  if (p.type === "page") {
    event.waitUntil(Promise.all([notify(p), receipt(p, "received")]));
  } else if (p.type === "page_cancelled") {
    event.waitUntil(dismiss(p.escalation_id));
  }
});

// openConsole focuses an open console on url, or opens one.
async function openConsole(url, escalationID) {
  const wins = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const c of wins) {
    if (new URL(c.url).pathname === "/console") {
      c.postMessage({ type: "nightcall-open", escalation_id: escalationID });
      try { await c.focus(); } catch (e) { /* not allowed here */ }
      return "focused";
    }
  }
  try { await self.clients.openWindow(url); return "opened"; } catch (e) { return "not-opened"; }
}

// click does what the notification's click or action asks: `seen`, then for
// Accept the accept itself, then the case (or the queue, when someone else
// accepted first). It resolves to what happened, for the test hook below.
async function click(n, action) {
  const p = n.data || {};
  n.close();
  await receipt(p, "seen");
  const id = p.escalation_id;
  if (!id) return { accepted: false };
  if (action === "accept") {
    let status = 0;
    try {
      const r = await fetch("/api/v1/escalations/" + encodeURIComponent(id) + "/accept", {
        method: "POST", credentials: "same-origin", headers: { "Idempotency-Key": "push-accept-" + p.page_id },
      });
      status = r.status;
    } catch (e) { status = 0; }
    if (status === 200) return { accepted: true, status, window: await openConsole("/console#case=" + encodeURIComponent(id), id) };
    return { accepted: false, status, window: await openConsole("/console", null) };
  }
  // Open: the console, with the page at the top of its queue.
  return { accepted: false, window: await openConsole("/console#page=" + encodeURIComponent(id), null) };
}

self.addEventListener("notificationclick", (event) => {
  event.waitUntil(click(event.notification, event.action));
});

// The test hook: a page of this origin can ask the worker to act on a shown
// notification as if it were clicked (headless browsers have no lock screen
// to tap). It can only do what a click does.
self.addEventListener("message", (event) => {
  const m = event.data || {};
  if (m.type !== "nightcall-click") return;
  event.waitUntil((async () => {
    const shown = await self.registration.getNotifications({ tag: m.tag });
    const result = shown.length ? await click(shown[0], m.action || "") : { error: "no notification " + m.tag };
    if (event.source) event.source.postMessage({ type: "nightcall-click-done", tag: m.tag, result });
  })());
});
