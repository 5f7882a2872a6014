// Nightcall browser apps: sign-in, the care-home tablet page, the consultant
// console, administration and audit. Plain modern JavaScript, no framework,
// no inline script. NEWS2 is always scored by the server (/api/v1/news2).
"use strict";

const $ = (id) => document.getElementById(id);
const h = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k.nodeType ? k : String(k));
  return e;
};

class APIError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || "HTTP " + status);
    this.status = status; this.code = e.code; this.field = e.field; this.detail = e;
  }
}

async function api(method, path, body, headers = {}) {
  const opts = { method, headers: { ...headers }, credentials: "same-origin" };
  if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
  const r = await fetch(path, opts);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
  if (!r.ok) throw new APIError(r.status, data);
  return data;
}

async function me(roles) {
  try {
    const m = await api("GET", "/api/v1/me");
    if (roles && !roles.includes(m.role)) { location.href = landing(m.role); return null; }
    setTimezone(m.timezone);
    const who = $("who"); if (who) who.textContent = m.name;
    const so = $("signout"); if (so) so.addEventListener("click", async () => { await api("DELETE", "/api/v1/session").catch(() => {}); location.href = "/"; });
    return m;
  } catch (e) {
    if (e.status === 401) { location.href = "/"; return null; }
    throw e;
  }
}

function landing(role) {
  return { carehome: "/home", consultant: "/console", auditor: "/audit", admin: "/admin", gp: "/handover" }[role] || "/";
}

const RISK_TEXT = {
  low: "Low risk: continue routine observations; a nurse decides on more frequent monitoring.",
  "low-medium": "A single score of 3: the clinical team must review urgently.",
  medium: "Medium risk (5–6): urgent response; observe at least hourly.",
  high: "High risk (7 or more): emergency response.",
};
// news2Label is the score as people see it: "8", or "partial, at least 7"
// for an incomplete set, which never shows a total (CLINICAL.md, "Partial sets").
function news2Label(s) {
  if (!s) return "–";
  if (s.total !== null && s.total !== undefined) return String(s.total);
  const bound = s.at_least !== undefined && s.at_least !== null ? s.at_least
    : Object.values(s.subscores || {}).reduce((a, v) => a + v, 0);
  return "partial, at least " + bound;
}
// news2Bound orders a queue: the total, or a partial set's lower bound.
function news2Bound(s) {
  if (!s) return -1;
  if (s.total !== null && s.total !== undefined) return s.total;
  return s.at_least !== undefined && s.at_least !== null ? s.at_least : Object.values(s.subscores || {}).reduce((a, v) => a + v, 0);
}
// news2Risk is the band the response must meet: a partial set's is the band its bound reaches.
function news2Risk(s) { return s ? (s.risk || s.risk_at_least || null) : null; }
const SUB_LABELS = { respiration_rate: "Resp", spo2: "SpO2", air_or_oxygen: "Air/O2", systolic_bp: "BP", pulse: "Pulse", consciousness: "ACVPU", temperature: "Temp" };

// ---------------------------------------------------------------- times
// Every time is shown en-GB, 24-hour, in the service's --timezone (from
// /api/v1/me), never the device's; with the date when it is not today.
let TZ; // undefined until /api/v1/me answers: the device's zone
function setTimezone(tz) {
  try { new Intl.DateTimeFormat("en-GB", { timeZone: tz }); TZ = tz; } catch (e) { TZ = undefined; }
}
function zoneParts(d) {
  const p = {};
  for (const x of new Intl.DateTimeFormat("en-GB", { timeZone: TZ, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }).formatToParts(d)) p[x.type] = Number(x.value);
  return p;
}
function sameDay(a, b) { const x = zoneParts(a), y = zoneParts(b); return x.year === y.year && x.month === y.month && x.day === y.day; }
// fmtTime: "02:10" today, "30 Nov 2026 02:10" on another day.
function fmtTime(iso) {
  const d = iso instanceof Date ? iso : new Date(iso);
  if (isNaN(d)) return "—";
  const time = new Intl.DateTimeFormat("en-GB", { timeZone: TZ, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(d);
  if (sameDay(d, new Date())) return time;
  return new Intl.DateTimeFormat("en-GB", { timeZone: TZ, day: "numeric", month: "short", year: "numeric" }).format(d) + " " + time;
}
// fmtDay: a calendar date ("1938-04-12") as "12 April 1938".
function fmtDay(ymd) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(ymd || "");
  if (!m) return ymd || "—";
  return new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", day: "numeric", month: "long", year: "numeric" }).format(Date.UTC(+m[1], +m[2] - 1, +m[3]));
}
function ageOn(ymd, now) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(ymd || "");
  if (!m) return null;
  const t = zoneParts(now);
  return t.year - +m[1] - (t.month < +m[2] || (t.month === +m[2] && t.day < +m[3]) ? 1 : 0);
}
// zoneOffset is the --timezone's offset from UTC at instant ms, in ms.
function zoneOffset(ms) {
  const p = zoneParts(new Date(ms));
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(ms / 1000) * 1000;
}
// wallNow is the time now in --timezone as "HH:MM" (for a time input).
function wallNow() { const p = zoneParts(new Date()); return String(p.hour).padStart(2, "0") + ":" + String(p.minute).padStart(2, "0"); }
// wallTime turns "HH:MM" in --timezone into the instant it was last that
// time: today, or yesterday when today's is still to come.
function wallTime(hhmm) {
  const m = /^([01]?\d|2[0-3]):([0-5]\d)$/.exec((hhmm || "").trim());
  if (!m) return null;
  const now = Date.now(), p = zoneParts(new Date(now));
  for (const back of [0, 1]) {
    const guess = Date.UTC(p.year, p.month - 1, p.day - back, +m[1], +m[2]);
    let t = guess - zoneOffset(guess);
    t = guess - zoneOffset(t);
    if (t <= now + 60000) return new Date(t);
  }
  return null;
}
const STALE_MS = 60 * 60 * 1000; // observations older than this at the raise are flagged

// Observations as people read them: each value with its unit, and why a value was not taken.
const ABSENT_WORDS = {
  refused: "not taken: the resident refused", asleep: "not taken: the resident was asleep",
  no_equipment: "not taken: no equipment to measure it", not_trained: "not taken: nobody trained to take it was there",
};
const ACVPU_WORDS = { A: "A — alert", C: "C — new or worse confusion", V: "V — responds to voice", P: "P — responds to pain", U: "U — unresponsive" };
const PARAMS = [
  { key: "respiration_rate", sub: "respiration_rate", label: "Respiration rate", unit: "/min", normal: [12, 20], span: [8, 30] },
  { key: "spo2", sub: "spo2", label: "SpO2", unit: "%", normal: [96, 100], normal2: [88, 92], span: [85, 100] },
  { key: "on_oxygen", sub: "air_or_oxygen", label: "Air or oxygen", unit: "L/min" },
  { key: "systolic_bp", sub: "systolic_bp", label: "Systolic blood pressure", unit: "mmHg", normal: [111, 219], span: [80, 180] },
  { key: "pulse", sub: "pulse", label: "Pulse", unit: "/min", normal: [51, 90], span: [40, 130] },
  { key: "consciousness", sub: "consciousness", label: "Consciousness (ACVPU)" },
  { key: "temperature", sub: "temperature", label: "Temperature", unit: "°C", normal: [36.1, 38.0], span: [35, 39.5] },
];
function obsValue(o, p) {
  if (!o) return null;
  if (p.key === "on_oxygen") {
    if (o.on_oxygen === undefined || o.on_oxygen === null) return null;
    if (!o.on_oxygen) return "Air";
    return o.oxygen_litres_per_min !== undefined && o.oxygen_litres_per_min !== null ? "Oxygen, " + Number(o.oxygen_litres_per_min).toFixed(1) + " L/min" : "Oxygen (flow not given)";
  }
  const v = o[p.key];
  if (v === undefined || v === null) return null;
  if (p.key === "consciousness") return ACVPU_WORDS[v] || v;
  if (p.key === "temperature") return Number(v).toFixed(1) + " " + p.unit;
  return v + " " + p.unit;
}
function absentWords(o, p) {
  const r = o && o.absent ? o.absent[p.key] : undefined;
  return r ? (ABSENT_WORDS[r] || "not taken: " + r) : "not taken (no reason given)";
}

function fmtDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(s / 60);
  return m + ":" + String(s % 60).padStart(2, "0");
}

function showFieldErrors(e) {
  document.querySelectorAll(".error[id^='err-']").forEach((p) => { p.textContent = ""; });
  if (e && e.field) {
    const target = $("err-" + e.field) || $("err-" + e.field.replace(/\[\d+\]$/, ""));
    if (target) { target.textContent = e.message; return true; }
  }
  return false;
}

// ---------------------------------------------------------------- sign in
function signinPage() {
  api("GET", "/api/v1/me").then((m) => { location.href = landing(m.role); }).catch(() => {});
  $("signin").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("signin-error").textContent = "";
    try {
      await api("POST", "/api/v1/session", { username: $("username").value.trim(), password: $("password").value });
      const m = await api("GET", "/api/v1/me");
      location.href = landing(m.role);
    } catch (e) {
      $("signin-error").textContent = e.message;
    }
  });
}

// ---------------------------------------------------------------- care home
const SOFT_SIGNS = [
  ["breathless", "Breathing faster or more short of breath"], ["eating_drinking_less", "Eating or drinking less"],
  ["new_confusion", "New or worse confusion"], ["sleepier", "Sleeping more or more tired"],
  ["agitated", "Agitated, restless or distressed"], ["withdrawn", "Withdrawn"], ["off_legs", "Unsteady, less mobile, off legs"],
  ["skin_changes", "Pale, cold, clammy or mottled skin"], ["bowel_urine_change", "Change in bowels or urine"],
  ["new_pain", "New pain"], ["family_worried", "Family or carers worried"], ["not_themselves", "Not themselves"],
];
const ABSENT = [["", "Taken"], ["refused", "Refused"], ["asleep", "Asleep"], ["no_equipment", "No equipment"], ["not_trained", "Not trained"]];
const NUMERIC = ["respiration_rate", "spo2", "systolic_bp", "pulse", "temperature"];

function homePage() {
  let residents = [], current = null, escalation = null, poll = null, clock = null, scoring = 0, callStarted = false;
  const FALLBACK_KEY = "nightcall.fallback";

  function fallback(show, reason) {
    const phone = localStorage.getItem(FALLBACK_KEY) || "";
    $("fallback-phone").textContent = phone || "your usual out-of-hours number";
    $("fallback-phone").href = phone ? "tel:" + phone.replace(/\s/g, "") : "#";
    $("footer-phone").textContent = phone || "—";
    if (reason) $("fallback-reason").textContent = reason;
    $("fallback").hidden = !show;
  }
  function remember(phone) { if (phone) { localStorage.setItem(FALLBACK_KEY, phone); fallback(!$("fallback").hidden); } }
  window.addEventListener("offline", () => fallback(true, "This tablet has lost the network. Phone"));

  function show(view) {
    for (const v of ["raise-view", "wait-view", "call-view", "decision-view"]) $(v).hidden = v !== view;
  }

  function renderResidents() {
    const box = $("residents");
    box.replaceChildren(...residents.filter((r) => r.status === "active").map((r) =>
      h("label", { class: "resident" },
        h("input", { type: "radio", name: "resident", value: r.id, onchange: () => { current = r; score(); } }),
        h("span", { class: "name" }, r.name), h("span", {}, "Born " + fmtDay(r.date_of_birth)), h("span", {}, "Room " + r.room),
        overdue(r) ? h("span", { class: "flag" }, "Care plan: review overdue") : null)));
  }
  function overdue(r) { return !!(r.advance_care_plan && r.advance_care_plan.review_overdue); }

  // takenAt is when the observations were taken: the time field, which is
  // filled in when the nurse starts entering them.
  function takenAt() { return $("taken_at").value ? wallTime($("taken_at").value) : null; }
  function staleText() {
    const t = takenAt();
    if (!t || !anyObservation() || Date.now() - t.getTime() <= STALE_MS) return "";
    return "These observations were taken at " + fmtTime(t) + ", more than an hour ago. Take a fresh set if you can: the consultant will be told they are old.";
  }
  function showStale() { const text = staleText(); $("stale-warning").textContent = text; $("stale-warning").hidden = !text; }

  function observations() {
    const o = { absent: {} };
    for (const f of NUMERIC) {
      const reason = $("absent-" + f).value;
      const v = $(f).value.trim();
      if (reason) o.absent[f] = reason;
      else if (v !== "") o[f] = Number(v);
    }
    o.on_oxygen = $("on_oxygen").checked;
    const flow = $("oxygen_litres_per_min").value.trim();
    if (o.on_oxygen && flow !== "") o.oxygen_litres_per_min = Number(flow);
    if ($("consciousness").value) o.consciousness = $("consciousness").value;
    const t = takenAt();
    if (t) o.taken_at = t.toISOString();
    if (Object.keys(o.absent).length === 0) delete o.absent;
    return o;
  }

  function anyObservation() {
    return NUMERIC.some((f) => $(f).value.trim() !== "" || $("absent-" + f).value) || $("consciousness").value;
  }

  async function score() {
    const n = ++scoring;
    if (!$("taken_at").value && anyObservation()) $("taken_at").value = wallNow();
    $("oxygen_litres_per_min").disabled = !$("on_oxygen").checked;
    showStale();
    const o = observations();
    const complete = NUMERIC.every((f) => o[f] !== undefined || (o.absent && o.absent[f])) && (o.consciousness || (o.absent && o.absent.consciousness));
    if (!complete) {
      $("news2-total").textContent = "—"; $("news2-risk").textContent = "Fill in every value, or say why it was not taken.";
      $("score").className = "score"; $("news2-subscores").textContent = ""; $("news2-response").textContent = ""; $("emergency").hidden = true;
      return;
    }
    try {
      const s = await api("POST", "/api/v1/news2", { observations: o, spo2_scale: current ? current.spo2_scale : 1 });
      if (n !== scoring) return;
      showFieldErrors(null);
      const risk = news2Risk(s);
      $("news2-total").textContent = news2Label(s);
      $("news2-risk").textContent = s.risk ? "(" + s.risk + " risk)" : "(a value was not taken: the true score can only be higher" + (risk ? "; at least " + risk + " risk" : "") + ")";
      $("score").className = "score risk-" + (risk || "partial");
      $("news2-subscores").textContent = Object.entries(s.subscores).map(([k, v]) => SUB_LABELS[k] + " " + v).join(" · ");
      $("news2-response").textContent = risk ? RISK_TEXT[risk] : "";
      const emergency = risk === "high";
      $("emergency").hidden = !emergency;
      $("emergency").textContent = emergency ? "NEWS2 " + news2Label(s) + ": call 999 now unless the resident's advance care plan says otherwise. Raise this escalation too: the consultant is paged at the same time." : "";
    } catch (e) {
      if (n !== scoring) return;
      if (e.status >= 400 && e.status < 500) { showFieldErrors(e.detail); $("news2-total").textContent = "—"; $("news2-risk").textContent = ""; }
      else fallback(true, "Nightcall cannot be reached. Phone");
    }
  }

  let timer = null;
  function scoreSoon() { clearTimeout(timer); timer = setTimeout(score, 200); }

  // A raise is confirmed first: the nurse checks the resident's name and
  // date of birth (the wrong-resident guard) and sees any stale or overdue flag.
  function confirmRaise(ev) {
    ev.preventDefault();
    $("raise-error").textContent = "";
    showFieldErrors(null);
    if (!current) { $("err-resident_id").textContent = "Choose the resident."; $("residents").querySelector("input")?.focus(); return; }
    if ($("taken_at").value.trim() && !takenAt()) { $("err-observations.taken_at").textContent = "Give the time taken as HH:MM, 24-hour (for example 02:10)."; $("taken_at").focus(); return; }
    const age = ageOn(current.date_of_birth, new Date());
    $("raise-confirm-who").textContent = "You are asking for a consultant for " + current.name + ", born " + fmtDay(current.date_of_birth) +
      (age !== null ? " (aged " + age + ")" : "") + ", room " + current.room + ". Is this the right resident?";
    const flags = [];
    const stale = staleText();
    if (stale) flags.push(stale);
    if (overdue(current)) flags.push("Their advance care plan is past its review date (" + fmtDay(current.advance_care_plan.review_due) + "): review overdue. Tell the consultant what you know.");
    $("raise-confirm-flags").replaceChildren(...flags.map((f) => h("li", { class: "warning" }, f)));
    $("raise-confirm-yes").textContent = "Yes, this is " + current.name + " — ask now";
    $("raise-confirm").hidden = false;
    $("raise-confirm-yes").focus();
  }

  async function raise() {
    $("raise-confirm").hidden = true;
    $("raise-error").textContent = "";
    showFieldErrors(null);
    const body = {
      resident_id: current ? current.id : "",
      soft_signs: [...document.querySelectorAll("#soft-signs input:checked")].map((i) => i.value),
      sbard: { situation: $("situation").value, background: $("background").value, assessment: $("assessment").value, recommendation: $("recommendation").value },
    };
    if (anyObservation()) body.observations = observations();
    try {
      escalation = await api("POST", "/api/v1/escalations", body, { "Idempotency-Key": crypto.randomUUID() });
      remember(escalation.fallback_phone);
      waiting();
    } catch (e) {
      if (e.status === 503 || !e.status) {
        if (e.detail && e.detail.fallback_phone) remember(e.detail.fallback_phone);
        fallback(true, "Nightcall cannot record this now. Phone");
      }
      if (!showFieldErrors(e.detail)) $("raise-error").textContent = e.message;
      if (e.code === "escalation_open" && e.detail.escalation_id) { escalation = { id: e.detail.escalation_id }; waiting(); }
      if (e.code === "resident_inactive" || e.status === 404) {
        // Moved, left or died since this page loaded: show the list as it is now.
        current = null;
        residents = await api("GET", "/api/v1/residents").catch(() => residents);
        renderResidents();
      }
    }
  }

  function waiting() {
    show("wait-view");
    const started = escalation.raised_at ? new Date(escalation.raised_at) : new Date();
    clearInterval(clock);
    clock = setInterval(() => { $("clock").textContent = fmtDuration(Date.now() - started); }, 500);
    clearInterval(poll);
    poll = setInterval(refresh, 1500);
    refresh();
  }

  async function refresh() {
    try {
      const e = await api("GET", "/api/v1/escalations/" + encodeURIComponent(escalation.id));
      escalation = e;
      remember(e.fallback_phone);
      if (!navigator.onLine) return;
      $("wait-advice").textContent = e.advice ? e.advice.text : "";
      $("wait-advice").className = "advice " + (e.advice ? e.advice.level : "");
      $("wait-stale").hidden = !e.observations_stale;
      $("wait-stale").textContent = e.observations_stale && e.observations ? "The observations were taken at " + fmtTime(e.observations.taken_at) + ", more than an hour before you asked. If you can, take a fresh set and tell the consultant." : "";
      window.NightcallDelivery.render(e, $("paged")); // delivery.js: who was paged, by name, and what each device said
      if (e.status === "unanswered") fallback(true, "No consultant has answered yet. Phone now");
      else if (window.NightcallDelivery.joinOverdue(e)) fallback(true, "The consultant has not joined yet. Phone now");
      else fallback(false);
      if (e.status === "accepted") {
        show("call-view");
        window.NightcallDelivery.joining(e, $("accepted-by")); // who accepted and when, and the joining clock
        if (!callStarted) { callStarted = true; window.NightcallCall.start(e.id).catch((err) => { $("status").textContent = "Could not start the call: " + err.message; }); }
      }
      if (e.status === "decided" || e.status === "withdrawn") {
        clearInterval(poll); clearInterval(clock);
        if (callStarted) window.NightcallCall.finish("The call has ended.");
        if (e.status === "decided") decided(e); else reset();
      }
    } catch (err) {
      if (!err.status || err.status >= 500) fallback(true, "Nightcall cannot be reached. Phone");
    }
  }

  function decided(e) {
    show("decision-view");
    const d = e.decision;
    $("outcome").textContent = d.outcome === "admit" ? "Admit to hospital" : "Stay in the home with this plan";
    $("outcome").className = "outcome " + d.outcome;
    $("plan").textContent = d.plan || "—";
    $("rationale").textContent = d.rationale;
    $("decided-by").textContent = "Decided by " + (d.decided_by_name || d.decided_by) + " at " + fmtTime(d.decided_at);
  }

  function reset() {
    escalation = null; callStarted = false;
    show("raise-view");
    $("raise-form").reset();
    $("raise-confirm").hidden = true;
    score();
    loadFollowUps();
  }

  async function loadFollowUps() {
    try {
      const list = (await api("GET", "/api/v1/escalations?status=decided")).filter((e) => e.follow_up_needed);
      $("follow-ups").hidden = list.length === 0;
      $("follow-up-list").replaceChildren(...list.map((e) => {
        const r = residents.find((x) => x.id === e.resident_id);
        const li = h("li", {}, h("span", {}, (r ? r.name : e.resident_id) + " — stayed after the call at " + fmtTime(e.decision.decided_at) + ": "));
        for (const [status, label] of [["at_home", "Still at home"], ["admitted", "Went to hospital"], ["died", "Died"]]) {
          li.append(h("button", { type: "button", class: "secondary", onclick: async () => {
            await api("POST", "/api/v1/escalations/" + e.id + "/follow-up", { status, at: new Date().toISOString() }, { "Idempotency-Key": crypto.randomUUID() });
            li.remove();
          } }, label));
        }
        return li;
      }));
    } catch (e) { /* follow-ups are a prompt, not critical */ }
  }

  (async () => {
    const m = await me(["carehome"]);
    if (!m) return;
    fallback(false);
    try {
      const homes = await api("GET", "/api/v1/care-homes");
      if (homes[0]) remember(homes[0].fallback_phone);
    } catch (e) { fallback(true, "Nightcall cannot be reached. Phone"); }
    residents = await api("GET", "/api/v1/residents");
    renderResidents();
    $("soft-signs").replaceChildren(...SOFT_SIGNS.map(([code, label]) => h("label", {}, h("input", { type: "checkbox", value: code }), " " + label)));
    document.querySelectorAll("[data-absent]").forEach((s) => s.replaceChildren(...ABSENT.map(([v, l]) => h("option", { value: v }, l))));
    document.querySelectorAll("[data-obs], [data-absent]").forEach((i) => i.addEventListener("input", scoreSoon));
    document.querySelectorAll("[data-obs], [data-absent]").forEach((i) => i.addEventListener("change", scoreSoon));
    $("raise-form").addEventListener("submit", confirmRaise);
    $("raise-confirm-yes").addEventListener("click", raise);
    $("raise-confirm-no").addEventListener("click", () => { $("raise-confirm").hidden = true; $("raise-submit").focus(); });
    // Any change to the form takes the nurse back to check it again.
    $("raise-form").addEventListener("input", () => { $("raise-confirm").hidden = true; });
    setInterval(showStale, 30000);
    $("withdraw").addEventListener("click", async () => {
      await api("POST", "/api/v1/escalations/" + escalation.id + "/withdraw", { reason: "No longer needed" }, { "Idempotency-Key": crypto.randomUUID() });
      refresh();
    });
    $("print").addEventListener("click", () => window.print());
    $("new").addEventListener("click", reset);
    loadFollowUps();
    // Resume an open escalation after a reload.
    const open = await api("GET", "/api/v1/escalations?status=open");
    if (open.length) { escalation = open[0]; waiting(); }
    setInterval(async () => {
      // /readyz also fails when paging is stalled: then the home must phone.
      try { await api("GET", "/readyz"); if (!window.NightcallDelivery.needsFallback(escalation)) fallback(false); }
      catch (e) { fallback(true, e.status === 503 ? "Nightcall cannot page a consultant right now. Phone" : "Nightcall cannot be reached. Phone"); }
    }, 3000);
  })().catch(() => fallback(true, "Nightcall cannot be reached. Phone"));
}

// ---------------------------------------------------------------- consultant
function consolePage() {
  let current = null, ws = null, flash = null, audio = null;
  const residents = new Map();

  async function resident(id) {
    if (!residents.has(id)) residents.set(id, await api("GET", "/api/v1/residents/" + encodeURIComponent(id)).catch(() => null));
    return residents.get(id);
  }

  function beep() {
    try {
      audio = audio || new AudioContext();
      const o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = 880; o.connect(g); g.connect(audio.destination);
      g.gain.setValueAtTime(0.2, audio.currentTime);
      o.start(); o.stop(audio.currentTime + 0.6);
    } catch (e) { /* no audio device */ }
  }

  function flashTitle(text) {
    clearInterval(flash);
    let on = false;
    flash = setInterval(() => { document.title = (on = !on) ? "● " + text : "Nightcall — consultant"; }, 700);
  }
  function stopFlash() { clearInterval(flash); document.title = "Nightcall — consultant"; }

  function connectPager() {
    const device = localStorage.getItem("nightcall.device") || crypto.randomUUID();
    localStorage.setItem("nightcall.device", device);
    ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/v1/pager?device=" + device);
    ws.onopen = () => { $("pager-status").textContent = "Pager connected."; };
    ws.onclose = () => { $("pager-status").textContent = "Pager disconnected — reconnecting…"; setTimeout(connectPager, 2000); };
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type === "page") {
        ws.send(JSON.stringify({ type: "received", page_id: m.page_id }));
        const e = m.escalation;
        const text = "Page: " + e.resident.name + " at " + e.care_home.name + (e.news2 ? ", NEWS2 " + news2Label(e.news2) : "");
        $("alert").textContent = text; $("alert").hidden = false;
        beep(); flashTitle(text);
        if ("Notification" in window && Notification.permission === "granted") new Notification("Nightcall", { body: text, requireInteraction: true });
        const seen = () => { if (document.visibilityState === "visible") { ws.send(JSON.stringify({ type: "seen", page_id: m.page_id })); document.removeEventListener("visibilitychange", seen); } };
        document.addEventListener("visibilitychange", seen); seen();
        loadQueue();
      } else if (m.type === "page_cancelled") {
        stopFlash();
        $("alert").textContent = m.reason === "accepted_by_other" ? "Another consultant accepted." : (m.reason === "withdrawn" ? "The home withdrew the escalation." : "Accepted.");
        loadQueue();
      }
    };
  }

  async function loadQueue() {
    const list = await api("GET", "/api/v1/escalations?status=open");
    // Most urgent first: by NEWS2 (a partial set by its lower bound), then longest waiting.
    list.sort((a, b) => news2Bound(b.news2) - news2Bound(a.news2) || new Date(a.raised_at) - new Date(b.raised_at));
    $("queue-empty").hidden = list.length > 0;
    const rows = [];
    for (const e of list) {
      const r = await resident(e.resident_id);
      const risk = news2Risk(e.news2) || (e.advice ? e.advice.level : "routine");
      const total = news2Label(e.news2);
      rows.push(h("tr", { class: "risk-" + risk },
        h("td", {}, h("span", { class: "pill risk-" + risk }, total + " " + risk)),
        h("td", {}, r ? r.name : e.resident_id), h("td", {}, e.care_home_id),
        h("td", { "data-since": e.raised_at }, fmtDuration(Date.now() - new Date(e.raised_at))),
        h("td", {}, e.status, e.observations_stale ? " " : null, e.observations_stale ? h("span", { class: "flag" }, "observations over 1 h old") : null),
        h("td", {}, e.status === "accepted" ? h("button", { type: "button", class: "secondary", onclick: () => open(e.id) }, "Open")
          : h("button", { type: "button", onclick: () => accept(e.id) }, "Accept"))));
    }
    $("queue").replaceChildren(...rows);
  }

  async function accept(id) {
    try {
      await api("POST", "/api/v1/escalations/" + id + "/accept", undefined, { "Idempotency-Key": crypto.randomUUID() });
      stopFlash(); $("alert").hidden = true;
      open(id);
    } catch (e) { $("alert").textContent = e.message; $("alert").hidden = false; loadQueue(); }
  }

  function dl(el, pairs) {
    el.replaceChildren(...pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v === undefined || v === null || v === "" ? "—" : v)]));
  }

  async function open(id) {
    const e = await api("GET", "/api/v1/escalations/" + id);
    const r = await api("GET", "/api/v1/residents/" + e.resident_id);
    current = e;
    $("queue-view").hidden = true; $("case-view").hidden = false;
    $("case-title").textContent = r.name + " — " + e.care_home_id;
    dl($("resident"), [["Name", r.name], ["Born", fmtDay(r.date_of_birth)], ["Room", r.room], ["NHS number", r.nhs_number], ["SpO2 scale", r.spo2_scale], ["Allergies", (r.allergies || []).join(", ")]]);
    const s = e.news2;
    $("case-news2").replaceChildren(s ? h("p", { class: "score risk-" + (news2Risk(s) || "partial") }, "NEWS2 " + news2Label(s) + " " + (s.risk ? "(" + s.risk + " risk)" : (s.risk_at_least ? "(at least " + s.risk_at_least + " risk: a value was not taken, and can only add to the score)" : "")))
      : h("p", {}, "No observations: soft signs only."));
    observationTable(e, r);
    trend(r);
    $("sbard").replaceChildren(
      h("p", {}, h("strong", {}, "Soft signs: "), (e.soft_signs || []).join(", ") || "none"),
      ...[["Situation", e.sbard.situation], ["Background", e.sbard.background], ["Assessment", e.sbard.assessment], ["Recommendation", e.sbard.recommendation]]
        .map(([k, v]) => h("p", {}, h("strong", {}, k + ": "), v || "—")));
    const p = r.advance_care_plan || {};
    $("acp-overdue").hidden = !p.review_overdue;
    $("acp-overdue").textContent = p.review_overdue ? "Review overdue: this plan was due for review on " + fmtDay(p.review_due) + ". Check it with the home and the resident or their family." : "";
    dl($("acp"), [["ReSPECT form", p.has_respect_form ? "yes" : "no"], ["Focus of care", p.focus], ["Hospital admission", p.hospital_admission],
      ["CPR (separate from admission)", p.cpr === "do_not_attempt" ? "do not attempt CPR" : p.cpr], ["Summary", p.summary], ["Recorded", p.recorded_at ? fmtDay(p.recorded_at) : ""],
      ["Review due", p.review_due ? fmtDay(p.review_due) + (p.review_overdue ? " — review overdue" : "") : ""]]);
    $("history").replaceChildren(...(r.recent_escalations || []).filter((x) => x.id !== e.id).map((x) => h("li", {}, fmtTime(x.raised_at) + ": " + x.status + (x.outcome ? " (" + x.outcome + ")" : ""))));
    if (e.status === "accepted") window.NightcallCall.start(e.id).catch((err) => { $("status").textContent = "Could not start the call: " + err.message; });
  }

  // observationTable shows the set the escalation was raised on: each value
  // with its unit, when it was taken, its sub-score, and why any value is missing.
  function observationTable(e, r) {
    const o = e.observations, s = e.news2;
    $("case-stale").hidden = !e.observations_stale;
    if (!o) { $("case-stale").textContent = ""; $("observations").replaceChildren(h("p", {}, "None taken: raised on soft signs.")); return; }
    const taken = fmtTime(o.taken_at);
    const mins = Math.round((new Date(e.raised_at) - new Date(o.taken_at)) / 60000);
    $("case-stale").textContent = e.observations_stale ? "Stale: these observations were taken at " + taken + ", " + fmtMinutes(mins) + " before the raise at " + fmtTime(e.raised_at) + ". Ask the home for a fresh set." : "";
    const rows = PARAMS.map((p) => {
      const v = obsValue(o, p), sub = s && s.subscores ? s.subscores[p.sub] : undefined;
      const absent = v === null;
      return h("tr", { class: absent ? "absent" : null, "data-param": p.key },
        h("th", { scope: "row" }, p.label + (p.key === "spo2" ? " (scale " + (r.spo2_scale || 1) + ")" : "")),
        h("td", {}, absent ? absentWords(o, p) : v),
        h("td", {}, absent ? "—" : taken),
        h("td", { class: "sub" }, sub === undefined || sub === null ? (absent ? "not scored" : "—") : String(sub)));
    });
    $("observations").replaceChildren(h("table", { class: "obs-table" },
      h("caption", {}, "Taken at " + taken + "; raised at " + fmtTime(e.raised_at)),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Parameter"), h("th", { scope: "col" }, "Value"), h("th", { scope: "col" }, "Taken"), h("th", { scope: "col" }, "Score"))),
      h("tbody", {}, ...rows),
      h("tfoot", {}, h("tr", {}, h("th", { scope: "row" }, "NEWS2"), h("td", { colspan: "3" }, news2Label(s))))));
  }

  function fmtMinutes(m) { return m < 120 ? m + " minutes" : Math.floor(m / 60) + " h " + (m % 60) + " min"; }

  // trend draws each NEWS2 parameter over the last 72 hours as its own small
  // chart, with the band that scores 0 shaded, and the NEWS2 total (or a
  // partial set's lower bound) against the resident's usual score.
  function trend(r) {
    const svgNS = "http://www.w3.org/2000/svg";
    const el = (tag, attrs, ...kids) => { const x = document.createElementNS(svgNS, tag); for (const [k, v] of Object.entries(attrs || {})) x.setAttribute(k, v); x.append(...kids); return x; };
    const title = (text) => el("title", {}, text);
    const now = Date.now(), from = now - 72 * 3600 * 1000;
    const obs = (r.observations_72h || r.recent_observations || []).filter((x) => new Date(x.taken_at).getTime() >= from);
    if (!obs.length) { $("trend").replaceChildren(h("p", {}, "No observations recorded in the last 72 hours.")); return; }
    const W = 360, H = 78, L = 44, R = 8, T = 6, B = 18;
    const x = (t) => L + ((t - from) / (now - from)) * (W - L - R);
    // Local midnights in --timezone, as gridlines labelled with the date.
    const midnights = [];
    for (let t = from; t <= now; t += 3600 * 1000) {
      const p = zoneParts(new Date(t));
      if (p.hour === 0) midnights.push(t - p.minute * 60000 - p.second * 1000);
    }
    const dayLabel = (t) => new Intl.DateTimeFormat("en-GB", { timeZone: TZ, day: "numeric", month: "short" }).format(t);
    const charts = [];
    const series = [...PARAMS.map((p) => ({ ...p, read: readParam(p, r) })), { key: "news2", label: "NEWS2", read: readNEWS2 }];
    for (const p of series) {
      const pts = obs.map((o) => ({ t: new Date(o.taken_at).getTime(), at: o.taken_at, ...p.read(o) }));
      const vals = pts.filter((q) => q.v !== null).map((q) => q.v);
      let lo, hi, normal = null, ticks;
      if (p.key === "consciousness") { lo = 0; hi = 4; ticks = [[0, "A"], [4, "U"]]; normal = [0, 0]; }
      else if (p.key === "on_oxygen") { lo = 0; hi = 1; ticks = [[0, "air"], [1, "O2"]]; normal = [0, 0]; }
      else if (p.key === "news2") {
        const base = r.baseline ? r.baseline.news2_total : null;
        lo = 0; hi = Math.max(8, ...vals, base || 0); ticks = [[0, "0"], [hi, String(hi)]];
        if (base !== null && base !== undefined) p.baseline = base;
      } else {
        normal = r.spo2_scale === 2 && p.normal2 ? p.normal2 : p.normal;
        lo = Math.min(p.span[0], ...vals); hi = Math.max(p.span[1], ...vals);
        ticks = [[lo, String(lo)], [hi, String(hi)]];
      }
      const y = (v) => T + (1 - (v - lo) / (hi - lo || 1)) * (H - T - B);
      const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "trend-chart", "data-chart": p.key });
      const unit = p.unit && p.key !== "on_oxygen" ? " " + p.unit : "";
      const described = pts.map((q) => (q.v === null ? q.absent : q.text) + " at " + fmtTime(q.at)).join("; ");
      svg.setAttribute("aria-label", p.label + ", last 72 hours: " + described +
        (normal && p.key !== "consciousness" && p.key !== "on_oxygen" ? ". Scores 0 between " + normal[0] + " and " + normal[1] + unit : "") +
        (p.baseline !== undefined ? ". The resident's usual NEWS2 is " + p.baseline : ""));
      if (normal) {
        const top = y(Math.min(hi, normal[1])), bottom = y(Math.max(lo, normal[0]));
        svg.append(el("rect", { x: L, y: Math.min(top, bottom) - (top === bottom ? 2 : 0), width: W - L - R, height: Math.max(4, Math.abs(bottom - top)), class: "normal-band" }, title("scores 0")));
      }
      for (const m of midnights) svg.append(el("line", { x1: x(m), x2: x(m), y1: T, y2: H - B, class: "grid" }), el("text", { x: x(m) + 2, y: H - 4, class: "tick" }, dayLabel(m)));
      for (const [v, label] of ticks) svg.append(el("text", { x: L - 4, y: y(v) + 4, class: "tick", "text-anchor": "end" }, label));
      if (p.baseline !== undefined) svg.append(el("line", { x1: L, x2: W - R, y1: y(p.baseline), y2: y(p.baseline), class: "baseline" }, title("usual NEWS2 " + p.baseline)));
      const g = el("g", { class: "series", "data-series": p.key });
      let run = [];
      const flush = () => { if (run.length > 1) g.append(el("polyline", { points: run.join(" "), class: "trend" })); run = []; };
      for (const q of pts) {
        if (q.v === null) {
          flush();
          g.append(el("text", { x: x(q.t), y: H - B - 2, class: "absent-mark", "text-anchor": "middle" }, "×", title(q.absent + " at " + fmtTime(q.at))));
          continue;
        }
        run.push(x(q.t) + "," + y(q.v));
        g.append(el("circle", { cx: x(q.t), cy: y(q.v), r: 4, class: q.partial ? "point partial" : "point" }, title(q.text + " at " + fmtTime(q.at))));
      }
      flush();
      svg.append(g);
      charts.push(h("figure", { class: "trend-figure" }, h("figcaption", {}, p.key === "on_oxygen" ? p.label : p.label + (unit ? " (" + unit.trim() + ")" : "")), svg));
    }
    $("trend").replaceChildren(...charts,
      h("p", { class: "hint" }, "From " + fmtTime(new Date(from)) + " to " + fmtTime(new Date(now)) + ". Shaded: the range that scores 0; dashed: the resident's usual NEWS2; × a value not taken; a hollow point a partial set (at least that score)."));
  }

  // readParam reads one parameter of a recorded set for the trend.
  function readParam(p, r) {
    return (o) => {
      const obsSet = o.observations || {};
      const text = obsValue(obsSet, p);
      if (text === null) return { v: null, absent: absentWords(obsSet, p) };
      let v;
      if (p.key === "on_oxygen") v = obsSet.on_oxygen ? 1 : 0;
      else if (p.key === "consciousness") v = "ACVPU".indexOf(obsSet.consciousness);
      else v = Number(obsSet[p.key]);
      return { v, text: p.label + " " + text };
    };
  }
  function readNEWS2(o) {
    const s = o.news2;
    if (!s) return { v: null, absent: "not scored" };
    return { v: news2Bound(s), text: "NEWS2 " + news2Label(s), partial: s.total === null || s.total === undefined };
  }

  function bindDecision() {
    const value = (name) => { const c = document.querySelector(`input[name=${name}]:checked`); return c ? c.value : ""; };
    $("decision-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const d = { outcome: value("outcome"), counterfactual: value("counterfactual"), rationale: $("rationale").value, plan: $("plan").value };
      $("confirm-text").textContent = "Record: " + (d.outcome || "?") + "; without the call: " + (d.counterfactual || "?") + ". This cannot be changed afterwards.";
      $("confirm").hidden = false; $("confirm-yes").focus();
    });
    $("confirm-no").addEventListener("click", () => { $("confirm").hidden = true; });
    $("confirm-yes").addEventListener("click", async () => {
      const d = { outcome: value("outcome"), counterfactual: value("counterfactual"), rationale: $("rationale").value, plan: $("plan").value };
      try {
        showFieldErrors(null);
        await api("POST", "/api/v1/escalations/" + current.id + "/decision", d, { "Idempotency-Key": crypto.randomUUID() });
        $("confirm").hidden = true;
        $("decision-result").textContent = "Decision recorded. The home can see it now.";
        window.NightcallCall.finish("The call has ended.");
      } catch (e) {
        $("confirm").hidden = true;
        if (!showFieldErrors(e.detail)) $("decision-result").textContent = e.message;
      }
    });
    $("invite").addEventListener("click", async () => {
      try {
        const inv = await api("POST", "/api/v1/escalations/" + current.id + "/invites", { role: $("invite-role").value });
        $("invite-link").textContent = "Send this one-time link: " + location.origin + inv.url;
      } catch (e) { $("invite-link").textContent = e.message; }
    });
  }

  (async () => {
    const m = await me(["consultant"]);
    if (!m) return;
    $("oncall").textContent = m.on_call ? "On call" : "Not on call";
    $("notify").hidden = !("Notification" in window) || Notification.permission !== "default";
    $("notify").addEventListener("click", () => Notification.requestPermission().then(() => { $("notify").hidden = true; }));
    bindDecision();
    connectPager();
    await loadQueue();
    // Accept on a lock-screen notification opens the case (push.js, sw.js).
    window.addEventListener("nightcall:open-case", (ev) => { open(ev.detail.id).catch(() => {}); });
    const wanted = /^#case=([\w-]+)$/.exec(location.hash);
    if (wanted) open(wanted[1]).catch(() => {});
    setInterval(() => { if (!$("queue-view").hidden) loadQueue().catch(() => {}); }, 5000);
    setInterval(() => document.querySelectorAll("[data-since]").forEach((td) => { td.textContent = fmtDuration(Date.now() - new Date(td.dataset.since)); }), 1000);
  })();
}

// ---------------------------------------------------------------- admin
function adminPage() {
  async function load() {
    const [homes, residents, users, rota] = await Promise.all([api("GET", "/api/v1/care-homes"), api("GET", "/api/v1/residents"), api("GET", "/api/v1/users"), api("GET", "/api/v1/rota/now")]);
    $("homes").replaceChildren(...homes.map((x) => h("li", {}, x.name + " (" + x.id + ") — fallback " + x.fallback_phone + (x.active ? "" : " — inactive"))));
    $("residents-table").replaceChildren(...residents.map((r) => h("tr", {}, h("td", {}, r.id), h("td", {}, r.name), h("td", {}, r.care_home_id), h("td", {}, r.room), h("td", {}, r.status), h("td", {}, r.spo2_scale))));
    $("users").replaceChildren(...users.map((u) => h("li", {}, u.name + " — " + u.username + " (" + u.role + (u.care_home_id ? ", " + u.care_home_id : "") + ")")));
    $("rota").replaceChildren(...rota.levels.map((l, i) => h("li", {}, "Level " + (i + 1) + ": " + l.map((p) => p.name).join(", "))));
  }
  async function importCSV(dry) {
    const r = await fetch("/api/v1/residents/import" + (dry ? "?dry_run=true" : ""), { method: "POST", body: $("csv").value, headers: { "Content-Type": "text/csv" } });
    const rep = await r.json();
    if (!r.ok) { $("import-report").textContent = rep.error.message; return; }
    $("import-report").replaceChildren(h("p", {}, (dry ? "Dry run: " : "Imported " + rep.imported + ". ") + rep.valid + " good rows of " + rep.rows + "."),
      h("ul", {}, ...rep.errors.map((e) => h("li", {}, "Line " + e.row + ": " + (e.field ? e.field + " — " : "") + e.message))));
    if (!dry) load();
  }
  (async () => {
    if (!(await me(["admin"]))) return;
    await load();
    $("home-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try { await api("POST", "/api/v1/care-homes", { id: $("home-id").value, name: $("home-name").value, fallback_phone: $("home-phone").value }); $("home-error").textContent = ""; load(); }
      catch (e) { $("home-error").textContent = (e.field ? e.field + ": " : "") + e.message; }
    });
    $("user-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await api("POST", "/api/v1/users", { username: $("user-name").value, name: $("user-full").value, role: $("user-role").value, care_home_id: $("user-home").value, password: $("user-password").value });
        $("user-error").textContent = ""; $("user-password").value = ""; load();
      } catch (e) { $("user-error").textContent = (e.field ? e.field + ": " : "") + e.message; }
    });
    $("dry-run").addEventListener("click", () => importCSV(true));
    $("import").addEventListener("click", () => importCSV(false));
  })();
}

// ---------------------------------------------------------------- audit
function auditPage() {
  const svgNS = "http://www.w3.org/2000/svg";
  function bars(rows, keys, colours, label) {
    const W = 640, H = 200, pad = 30;
    const max = Math.max(1, ...rows.map((r) => keys.reduce((s, k) => s + (r[k] || 0), 0)));
    const svg = document.createElementNS(svgNS, "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${H + pad}`); svg.setAttribute("role", "img"); svg.setAttribute("aria-label", label);
    const bw = rows.length ? Math.min(60, (W - pad) / rows.length - 6) : 0;
    rows.forEach((r, i) => {
      let y = H;
      keys.forEach((k, j) => {
        const v = r[k] || 0, bh = (v / max) * (H - 10);
        const rect = document.createElementNS(svgNS, "rect");
        rect.setAttribute("x", pad + i * (bw + 6)); rect.setAttribute("y", y - bh); rect.setAttribute("width", bw); rect.setAttribute("height", bh);
        rect.setAttribute("class", colours[j]); svg.append(rect); y -= bh;
      });
      const t = document.createElementNS(svgNS, "text");
      t.setAttribute("x", pad + i * (bw + 6)); t.setAttribute("y", H + 18); t.textContent = r.label; svg.append(t);
    });
    return svg;
  }
  async function show(ev) {
    if (ev) ev.preventDefault();
    const q = new URLSearchParams({ window: $("window").value });
    if ($("from").value) q.set("from", new Date($("from").value).toISOString());
    if ($("to").value) q.set("to", new Date($("to").value).toISOString());
    $("csv-link").href = "/api/v1/audit/escalations.csv?" + q;
    try {
      const f = await api("GET", "/api/v1/audit/admissions-avoided?" + q);
      $("audit-error").textContent = "";
      const cells = [["Escalations", f.escalations], ["Admissions avoided", f.admissions_avoided], ["Stays unconfirmed", f.avoided_unconfirmed], ["Failed stays", f.failed_stays],
        ["Deaths in window", f.deaths_in_window], ["Window still open", f.pending_window], ["Admitted", f.admit], ["Withdrawn", f.withdrawn], ["Ever unanswered", f.ever_unanswered], ["Out of hours", f.out_of_hours]];
      $("headline").replaceChildren(...cells.map(([k, v]) => h("div", { class: "figure" }, h("span", { class: "n" }, String(v)), h("span", {}, k))));
      const months = f.by_month.map((m) => ({ label: m.month, admit: m.admit, avoided: m.admissions_avoided, unconfirmed: m.avoided_unconfirmed, other: m.stay - m.admissions_avoided - m.avoided_unconfirmed }));
      $("months").replaceChildren(bars(months, ["admit", "avoided", "unconfirmed", "other"], ["c-admit", "c-avoided", "c-unconfirmed", "c-other"], "Escalations by month and outcome"),
        h("p", { class: "legend" }, h("span", { class: "key c-admit" }), "admit ", h("span", { class: "key c-avoided" }), "admission avoided ", h("span", { class: "key c-unconfirmed" }), "stay unconfirmed ", h("span", { class: "key c-other" }), "other stays"));
      $("homes-table").replaceChildren(...f.by_care_home.map((c) => h("tr", {}, h("td", {}, c.care_home_id), h("td", {}, c.escalations), h("td", {}, c.admit), h("td", {}, c.stay), h("td", {}, c.admissions_avoided), h("td", {}, c.avoided_unconfirmed), h("td", {}, c.failed_stays), h("td", {}, c.deaths_in_window))));
      const csv = await (await fetch("/api/v1/audit/escalations.csv?" + q)).text();
      const lines = csv.trim().split("\n"), head = lines[0].split(","), col = head.indexOf("seconds_to_accept");
      const secs = lines.slice(1).map((l) => Number(l.split(",")[col])).filter((v) => !isNaN(v) && v > 0);
      const edges = [60, 120, 300, 600, 1800, Infinity], names = ["<1 min", "1–2", "2–5", "5–10", "10–30", "30+ min"];
      const hist = edges.map((e, i) => ({ label: names[i], n: secs.filter((s) => s < e && (i === 0 || s >= edges[i - 1])).length }));
      const p = f.seconds_to_accept;
      $("tta").replaceChildren(bars(hist, ["n"], ["c-avoided"], "Time to accept, distribution"),
        h("p", {}, "p50 " + (p.p50 === null ? "—" : Math.round(p.p50) + " s") + ", p90 " + (p.p90 === null ? "—" : Math.round(p.p90) + " s")));
    } catch (e) { $("audit-error").textContent = e.message; }
  }
  (async () => {
    if (!(await me(["auditor", "admin"]))) return;
    $("audit-form").addEventListener("submit", show);
    show();
  })();
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  ({ signin: signinPage, home: homePage, console: consolePage, admin: adminPage, audit: auditPage })[page]?.();
});
