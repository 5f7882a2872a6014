// The console as an installable app: the service worker (/sw.js), pages on
// the lock screen by Web Push, and an honest word when the device is offline.
// app.js runs the console itself; this file only adds to it.
"use strict";

(() => {
  const byId = (id) => document.getElementById(id);
  const say = (text) => { const s = byId("push-status"); if (s) s.textContent = text; };

  // The offline banner: the shell opens from the cache with no network, and
  // then says plainly that no page can reach this screen until it reconnects.
  function offline(is) {
    const b = byId("offline");
    if (!b) return;
    b.hidden = !is;
    document.body.classList.toggle("is-offline", is);
  }
  window.addEventListener("offline", () => offline(true));
  window.addEventListener("online", () => offline(false));
  offline(!navigator.onLine);
  // navigator.onLine says nothing of a server that is down: ask it.
  fetch("/api/v1/me", { credentials: "same-origin" }).then(() => offline(false), () => offline(true));

  // base64url → bytes, for the VAPID key.
  function keyBytes(b64) {
    const s = atob(b64.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(s, (c) => c.charCodeAt(0));
  }

  // save posts the browser's subscription to the server (again on every
  // visit: the same endpoint updates, it is never doubled).
  async function save(sub) {
    const r = await fetch("/api/v1/push/subscriptions", {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(sub.toJSON ? sub.toJSON() : sub),
    });
    if (!r.ok) throw new Error("the server refused the subscription (" + r.status + ")");
    return r.json();
  }

  async function subscribe(reg) {
    const k = await fetch("/api/v1/push/vapid-public-key", { credentials: "same-origin" });
    if (!k.ok) throw new Error("Web Push is not available on this server");
    const { public_key } = await k.json();
    const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(public_key) });
    return save(sub);
  }

  async function enable(reg) {
    const btn = byId("push-enable");
    try {
      const perm = await Notification.requestPermission();
      if (perm !== "granted") { say("Notifications are blocked: pages reach this device only while the console is open."); return; }
      await subscribe(reg);
      say("Pages reach this device's lock screen, even with the console closed.");
      if (btn) btn.hidden = true;
    } catch (e) {
      say("Could not turn on lock-screen pages: " + e.message + ". Keep the console open.");
    }
  }

  async function start() {
    if (!("serviceWorker" in navigator)) { say("This browser cannot page you with the console closed: keep it open."); return; }
    const reg = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    window.NightcallPush = { registration: reg, save };
    navigator.serviceWorker.addEventListener("message", (ev) => {
      const m = ev.data || {};
      if (m.type === "nightcall-open" && m.escalation_id) {
        window.dispatchEvent(new CustomEvent("nightcall:open-case", { detail: { id: m.escalation_id } }));
      }
    });
    const btn = byId("push-enable");
    if (!("PushManager" in window) || !("Notification" in window)) {
      say("This browser has no Web Push (on iPhone and iPad: Share → Add to Home Screen, then open Nightcall from there).");
      return;
    }
    const ready = await navigator.serviceWorker.ready;
    const existing = await ready.pushManager.getSubscription();
    if (existing && Notification.permission === "granted") {
      save(existing).then(() => say("Pages reach this device's lock screen, even with the console closed."),
        () => say("Could not register this device for lock-screen pages; keep the console open."));
    } else if (btn) {
      btn.hidden = false;
      btn.addEventListener("click", () => enable(ready));
      say("Turn on lock-screen pages so a page reaches this device with the console closed.");
    }
    // Signing out ends this device's pages: the push service forgets the
    // endpoint, and the server drops it at the next page (410).
    const out = byId("signout");
    if (out) out.addEventListener("click", () => { ready.pushManager.getSubscription().then((s) => s && s.unsubscribe()).catch(() => {}); });
  }

  document.addEventListener("DOMContentLoaded", () => { start().catch((e) => say("Lock-screen pages are off: " + e.message)); });
})();
