// The "joining" clock on the care home's call screen (app.js calls in):
// who accepted and when, and how long the home has been waiting for them to
// join the video call, ticking every second until they have joined.
"use strict";

window.NightcallDelivery = (() => {
  // time is HH:MM:SS in the service's --timezone (app.js's TZ).
  const time = (iso) => {
    const zone = typeof TZ === "string" ? TZ : undefined; // eslint-disable-line no-undef
    return new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }).format(new Date(iso));
  };
  const span = (ms) => { const s = Math.max(0, Math.floor(ms / 1000)); return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"); };

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

  return { joining };
})();
