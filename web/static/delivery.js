// What the care home is told while it waits (app.js calls in): who was
// paged, by name, and when each of their devices received and saw the page;
// then who accepted and when, with a "joining" clock that ticks until they
// have joined the video call.
"use strict";

window.NightcallDelivery = (() => {
  // time is HH:MM:SS in the service's --timezone (app.js's TZ).
  const time = (iso) => {
    const zone = typeof TZ === "string" ? TZ : undefined; // eslint-disable-line no-undef
    return new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }).format(new Date(iso));
  };
  const span = (ms) => { const s = Math.max(0, Math.floor(ms / 1000)); return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"); };

  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
  const CHANNEL = { push: "phone notification", pager: "open console" };

  // render lists every page: when it went, to whom by name, and for each of
  // their devices when it received and when it showed the page.
  function render(e, list) {
    const pages = (e.delivery && e.delivery.pages) || [];
    const items = [];
    for (const p of pages) {
      const what = p.reason === "join_overdue" ? "asked again: accepted but has not joined the call"
        : (p.round > 0 ? "asked again (level " + p.level + ")" : (p.level > 1 ? "asked, next on the rota" : "asked, first on call"));
      for (const c of p.consultants || []) {
        const li = el("li", "page");
        li.append(el("strong", "", c.name || c.username), document.createTextNode(": " + what + " at " + time(p.sent_at)));
        const devs = el("ul", "devices");
        if (!(c.devices || []).length) devs.append(el("li", "device", "No device has said it got the page yet."));
        for (const v of c.devices || []) {
          const parts = [CHANNEL[v.channel] || v.channel, v.received_at ? "received " + time(v.received_at) : "not received yet"];
          if (v.seen_at) parts.push("seen " + time(v.seen_at));
          devs.append(el("li", "device", parts.join(", ")));
        }
        if (p.timed_out_at && p.reason !== "join_overdue") devs.append(el("li", "device", "No answer by " + time(p.timed_out_at) + ", so Nightcall asked the next."));
        li.append(devs);
        items.push(li);
      }
    }
    if (!items.length) items.push(el("li", "", "Finding the consultant on call…"));
    list.classList.add("delivery");
    list.replaceChildren(...items);
  }

  let ticker = null;
  // joining writes "Dr Okafor has accepted: joining the video call (accepted
  // at 02:12:05). Waiting for them: 0:42" into target, or "… joined at …".
  function joining(e, target) {
    clearInterval(ticker);
    const who = (e.accepted_by && e.accepted_by.name) || "A consultant";
    const d = e.delivery || {};
    if (!e.accepted_at) return;
    const head = who + " has accepted: joining the video call (accepted at " + time(e.accepted_at) + ").";
    if (d.consultant_joined_at) { target.textContent = head + " Joined at " + time(d.consultant_joined_at) + "."; return; }
    const since = new Date(e.accepted_at).getTime();
    const draw = () => { target.textContent = head + " Waiting for them to join: " + span(Date.now() - since); };
    draw();
    ticker = setInterval(() => { if (document.body.contains(target) && !target.closest("[hidden]")) draw(); else clearInterval(ticker); }, 1000);
  }

  return { render, joining };
})();
