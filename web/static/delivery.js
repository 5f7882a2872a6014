// What the care home is told while it waits (app.js calls in): who was
// paged, by name, when each of their devices received and saw the page, who
// accepted and when, and a clock while they join the call. If the consultant
// who accepted has not joined in time the home is shown its fallback number.
"use strict";

window.NightcallDelivery = (() => {
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
  // time is HH:MM:SS in the service's --timezone (app.js's TZ), to the second:
  // the gap between a page and its receipt is seconds.
  const time = (iso) => {
    if (!iso) return "";
    const zone = typeof TZ === "string" ? TZ : undefined; // eslint-disable-line no-undef
    return new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }).format(new Date(iso));
  };
  const span = (ms) => { const s = Math.max(0, Math.floor(ms / 1000)); return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"); };
  const CHANNEL = { push: "phone notification", pager: "open console" };

  function joinOverdue(e) {
    const d = e && e.delivery;
    return !!(e && e.status === "accepted" && d && d.join_overdue_at && !d.consultant_joined_at);
  }

  // render lists every page: when it went, to whom by name, and per device
  // when it was received and seen.
  function render(e, list) {
    const d = e.delivery || { pages: [] };
    const items = [];
    for (const p of d.pages) {
      const what = p.reason === "join_overdue" ? "Asked again to join" : (p.round > 0 ? "Asked again (level " + p.level + ")" : "Level " + p.level + " asked");
      for (const c of p.consultants) {
        const li = el("li", "page");
        li.append(el("strong", "", c.name || c.username), document.createTextNode(" — " + what + " at " + time(p.sent_at)));
        const devs = el("ul", "devices");
        if (!c.devices.length) devs.append(el("li", "device", "No device has said it got the page yet."));
        for (const v of c.devices) {
          const parts = [CHANNEL[v.channel] || v.channel];
          parts.push(v.received_at ? "received " + time(v.received_at) : "not received yet");
          if (v.seen_at) parts.push("seen " + time(v.seen_at));
          devs.append(el("li", "device", parts.join(", ")));
        }
        if (p.timed_out_at && p.reason !== "join_overdue") devs.append(el("li", "device", "No answer by " + time(p.timed_out_at) + ": the next consultant was asked."));
        li.append(devs);
        items.push(li);
      }
    }
    if (!items.length) items.push(el("li", "", "Finding the consultant on call…"));
    list.classList.add("delivery");
    list.replaceChildren(...items);
  }

  // joining writes "Dr Okafor accepted at 02:12:05. Joining the call: 0:42"
  // (or "… has joined") into target, the clock ticking every second.
  let ticker = null;
  function joining(e, target) {
    clearInterval(ticker);
    const who = (e.accepted_by && e.accepted_by.name) || "A consultant";
    const at = e.accepted_at ? new Date(e.accepted_at) : new Date();
    const d = e.delivery || {};
    if (d.consultant_joined_at) { target.textContent = who + " accepted at " + time(e.accepted_at) + " and joined the call at " + time(d.consultant_joined_at) + "."; return; }
    const draw = () => {
      target.textContent = who + " accepted at " + time(e.accepted_at) + ". Joining the video call: " + span(Date.now() - at.getTime()) +
        (joinOverdue(e) ? ". They have not joined yet: phone your fallback number." : "");
    };
    draw();
    ticker = setInterval(draw, 1000);
  }

  return {
    render, joining, joinOverdue,
    // needsFallback: the home should be phoning now.
    needsFallback: (e) => !!e && (e.status === "unanswered" || joinOverdue(e)),
  };
})();
