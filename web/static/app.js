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
// The table's labels on a phone (the full label stays for screen readers).
const SHORT_LABELS = { respiration_rate: "Resp. rate", spo2: "SpO2", on_oxygen: "Air/O2", systolic_bp: "Systolic BP", pulse: "Pulse", consciousness: "ACVPU", temperature: "Temp." };
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

// showFieldErrors shows an API error beside its field (err-<field>, inside
// root when given); it reports whether a field took it.
function showFieldErrors(e, root, prefix = "") {
  (root || document).querySelectorAll(".error[id^='err-" + prefix + "']").forEach((p) => { p.textContent = ""; });
  if (e && e.field) {
    const f = e.field;
    const target = $("err-" + prefix + f) || $("err-" + prefix + f.replace(/\[\d+\]$/, "")) || $("err-" + prefix + f.replace(/\[.*$/, "")) || $("err-" + prefix + f.split(".").pop());
    if (target) { target.textContent = e.message; return true; }
  }
  return false;
}

// The advance care plan in words (a DNACPR decision says nothing about admission).
const FOCUS_WORDS = { extend_life: "extending life", balance: "a balance of treatment and comfort", comfort: "comfort" };
const ADMISSION_WORDS = { wanted: "wants hospital admission if needed", not_wanted: "does not want hospital admission", discuss: "discuss before any admission" };
const CPR_WORDS = { attempt: "attempt CPR", do_not_attempt: "do not attempt CPR" };
function acpLine(p) {
  if (!p || (!p.hospital_admission && !p.cpr)) return "No advance care plan recorded.";
  return "Hospital: " + (ADMISSION_WORDS[p.hospital_admission] || p.hospital_admission || "not recorded") + ". CPR: " + (CPR_WORDS[p.cpr] || p.cpr || "not recorded") + "." +
    (p.review_overdue ? " Review overdue." : "");
}

const SOFT_SIGNS = [
  ["breathless", "Breathing faster or more short of breath"], ["eating_drinking_less", "Eating or drinking less"],
  ["new_confusion", "New or worse confusion"], ["sleepier", "Sleeping more or more tired"],
  ["agitated", "Agitated, restless or distressed"], ["withdrawn", "Withdrawn"], ["off_legs", "Unsteady, less mobile, off legs"],
  ["skin_changes", "Pale, cold, clammy or mottled skin"], ["bowel_urine_change", "Change in bowels or urine"],
  ["new_pain", "New pain"], ["family_worried", "Family or carers worried"], ["not_themselves", "Not themselves"],
];
const SOFT_SIGN_WORDS = Object.fromEntries(SOFT_SIGNS);
const STATUS_WORDS = { paging: "paging a consultant", unanswered: "no answer yet", accepted: "accepted", decided: "decided", withdrawn: "withdrawn by the home" };
const OUTCOME_WORDS = { stay: "stayed in the home", admit: "admitted to hospital" };

// fmtNHS groups an NHS number as people read it: "999 000 0018".
function fmtNHS(n) { const d = String(n || "").replace(/\s/g, ""); return /^\d{10}$/.test(d) ? d.slice(0, 3) + " " + d.slice(3, 6) + " " + d.slice(6) : (n || "not recorded"); }

// residentLine is who a resident is, for every screen and print: born,
// age, NHS number, home and room.
function residentLine(r, homeName) {
  if (!r) return "";
  const age = ageOn(r.date_of_birth, new Date());
  return "Born " + fmtDay(r.date_of_birth) + (age !== null ? " (aged " + age + ")" : "") + " · NHS number " + fmtNHS(r.nhs_number) +
    " · " + (homeName || r.care_home_id) + (r.room ? ", room " + r.room : "");
}
function whoBanner(el, r, homeName) {
  if (!el) return;
  el.replaceChildren(h("span", { class: "name" }, r ? r.name : ""), h("span", {}, residentLine(r, homeName)));
}

let audioCtx = null;
// beep sounds a short tone (a page; an acceptance).
function beep(freq = 880, secs = 0.6) {
  try {
    audioCtx = audioCtx || new AudioContext();
    const o = audioCtx.createOscillator(), g = audioCtx.createGain();
    o.frequency.value = freq; o.connect(g); g.connect(audioCtx.destination);
    g.gain.setValueAtTime(0.2, audioCtx.currentTime);
    o.start(); o.stop(audioCtx.currentTime + secs);
  } catch (e) { /* no audio device */ }
}

// zonedInstant is "YYYY-MM-DD" and "HH:MM" in --timezone as an instant.
function zonedInstant(ymd, hhmm) {
  const d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(ymd || ""), t = /^([01]?\d|2[0-3]):([0-5]\d)$/.exec((hhmm || "00:00").trim());
  if (!d || !t) return null;
  const guess = Date.UTC(+d[1], +d[2] - 1, +d[3], +t[1], +t[2]);
  let ms = guess - zoneOffset(guess);
  ms = guess - zoneOffset(ms);
  return new Date(ms);
}

// parseCSV reads RFC 4180 text (quoted fields may hold commas).
function parseCSV(text) {
  const rows = [];
  let row = [], field = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false; else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n" || c === "\r") { if (c === "\r" && text[i + 1] === "\n") i++; row.push(field); rows.push(row); row = []; field = ""; }
    else field += c;
  }
  if (field !== "" || row.length) { row.push(field); rows.push(row); }
  return rows;
}

// fmtSeconds: 95 → "1 min 35 s".
function fmtSeconds(s) {
  if (s === null || s === undefined || isNaN(s)) return "—";
  s = Math.round(s);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min" + (s % 60 ? " " + (s % 60) + " s" : "");
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}
function pct(n, d) { return d ? Math.round((100 * n) / d) + "%" : "—"; }

// ---------------------------------------------------------------- sign in
function signinPage() {
  api("GET", "/api/v1/me").then((m) => { location.href = landing(m.role); }).catch(() => {});
  // The fallback number this device last saw: sign-in may be what is failing.
  const phone = localStorage.getItem("nightcall.fallback");
  if (phone) {
    $("signin-fallback-text").textContent = "If you cannot sign in and a resident needs a doctor, phone the out-of-hours number this tablet last used, or 999 in an emergency:";
    $("signin-fallback-phone").textContent = phone;
    $("signin-fallback-phone").href = "tel:" + phone.replace(/[^+0-9]/g, "");
    $("signin-fallback-phone").hidden = false;
  }
  $("signin").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("signin-error").textContent = "";
    try {
      await api("POST", "/api/v1/session", { username: $("username").value.trim(), password: $("password").value });
      const m = await api("GET", "/api/v1/me");
      location.href = landing(m.role);
    } catch (e) {
      $("signin-error").textContent = e.status ? e.message : "Nightcall cannot be reached. Phone your out-of-hours number.";
    }
  });
}

// ---------------------------------------------------------------- care home
const ABSENT = [["", "Yes, taken"], ["refused", "No: the resident refused"], ["asleep", "No: the resident was asleep"], ["no_equipment", "No: no equipment to take it"], ["not_trained", "No: nobody trained to take it"]];
const NUMERIC = ["respiration_rate", "spo2", "systolic_bp", "pulse", "temperature"];
const NUMERIC_WORDS = { respiration_rate: "respiration rate", spo2: "SpO2", systolic_bp: "systolic blood pressure", pulse: "pulse", temperature: "temperature" };

function homePage() {
  let residents = [], current = null, escalation = null, following = 0, clock = null, scoring = 0, callStarted = false, home = null, acceptedSeen = false;
  let notReady = ""; // what /readyz/paging last said is wrong ("" when raises are paged)
  const FALLBACK_KEY = "nightcall.fallback";
  // Errors from pressing the button stay until their own field changes;
  // scoring never clears them (it has errors of its own).
  const submitErrors = new Map(), scoreErrors = new Map();

  function phone() { return localStorage.getItem(FALLBACK_KEY) || ""; }
  function fallback(show, reason) {
    const p = phone();
    $("fallback-phone").textContent = p || "your usual out-of-hours number";
    $("fallback-phone").href = p ? "tel:" + p.replace(/[^+0-9]/g, "") : "#";
    $("footer-phone").textContent = p || "—";
    if (reason) $("fallback-reason").textContent = reason;
    $("fallback").hidden = !show;
  }
  function remember(p) { if (p) { localStorage.setItem(FALLBACK_KEY, p); fallback(!$("fallback").hidden); } }

  // lost says, on the waiting screen itself, that the server cannot be
  // reached: nobody can tell whether a consultant is being paged.
  function lost(on) {
    const box = $("wait-lost");
    if (!on) { box.hidden = true; $("wait-advice").hidden = false; return; }
    const p = phone();
    box.replaceChildren(h("p", {}, "Nightcall has lost contact with its server: it cannot tell whether a consultant is being paged. Do not wait. Phone now:"),
      p ? h("a", { class: "phone target", href: "tel:" + p.replace(/[^+0-9]/g, "") }, p) : h("span", { class: "phone" }, "your usual out-of-hours number"),
      h("p", {}, "Call 999 if the resident is in immediate danger."));
    box.hidden = false;
    $("wait-advice").hidden = true;
  }
  window.addEventListener("offline", () => { fallback(true, "This tablet has lost the network. Phone"); if (escalation) lost(true); });

  function show(view) {
    for (const v of ["raise-view", "wait-view", "call-view", "decision-view"]) $(v).hidden = v !== view;
  }
  function homeName() { return home ? home.name : (current ? current.care_home_id : ""); }
  function named() {
    const r = current || (escalation && residents.find((x) => x.id === escalation.resident_id));
    for (const id of ["wait-who", "call-who", "decision-who"]) whoBanner($(id), r, homeName());
    return r;
  }

  function renderResidents() {
    const box = $("residents");
    box.replaceChildren(...residents.filter((r) => r.status === "active").map((r) =>
      h("label", { class: "resident" },
        h("input", { type: "radio", name: "resident", id: "resident-" + r.id, value: r.id, onchange: () => choose(r) }),
        h("span", { class: "name" }, r.name), h("span", {}, "Born " + fmtDay(r.date_of_birth)), h("span", {}, "Room " + r.room),
        h("span", { class: "chosen-mark" }, "✓ Chosen"),
        overdue(r) ? h("span", { class: "flag" }, "Care plan: review overdue") : null)));
  }
  function overdue(r) { return !!(r.advance_care_plan && r.advance_care_plan.review_overdue); }

  // choose makes the resident unmistakable: the card, a line under the
  // list, the SpO2 scale and the button all name them.
  function choose(r) {
    current = r;
    if (r) {
      $("chosen").textContent = "Chosen: " + r.name + ". " + residentLine(r, homeName()) + ".";
      $("chosen").hidden = false;
      $("raise-submit").textContent = "Ask for a consultant for " + r.name;
    } else {
      $("chosen").hidden = true;
      $("raise-submit").textContent = "Ask for a consultant";
      document.querySelectorAll("input[name=resident]").forEach((i) => { i.checked = false; });
    }
    scaleHint();
    score();
  }
  function scaleHint() {
    const r = current;
    $("spo2-scale").textContent = !r ? "Choose the resident first: their SpO2 scale decides the score."
      : r.spo2_scale === 2 ? r.name + " is scored on SpO2 Scale 2 (target 88–92%" + (r.spo2_scale_set_by ? ", set by " + r.spo2_scale_set_by : "") + "): 88–92% scores 0, and so does 93% or more on air."
        : "Scored on SpO2 Scale 1: 96% or more scores 0.";
  }

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

  // ------------------------------------------------------------ errors
  // The target a summary link moves to, for a field.
  function fieldTarget(field) {
    if (field === "resident_id") return document.querySelector("input[name=resident]");
    if (field === "soft_signs" || field === "observations") return document.querySelector("#soft-signs input") || $("respiration_rate");
    if (field === "sbard.situation") return $("situation");
    const m = /^observations\.(\w+)/.exec(field);
    if (m) return $(m[1]);
    return null;
  }
  function renderErrors(focus) {
    document.querySelectorAll("#raise-form .error[id^='err-']").forEach((p) => {
      const f = p.id.slice(4);
      p.textContent = scoreErrors.get(f) || submitErrors.get(f) || "";
    });
    const box = $("raise-errors");
    if (!submitErrors.size) { box.hidden = true; return; }
    $("raise-errors-list").replaceChildren(...[...submitErrors].map(([field, msg]) => {
      const target = fieldTarget(field);
      return h("li", {}, target ? h("a", { href: "#" + (target.id || ""), onclick: (ev) => { ev.preventDefault(); target.focus(); target.scrollIntoView({ block: "center" }); } }, msg) : msg);
    }));
    box.hidden = false;
    if (focus) box.focus();
  }
  // fieldOf names the API field an input belongs to.
  function fieldOf(el) {
    if (!el) return null;
    if (el.name === "resident") return "resident_id";
    if (el.closest("#soft-signs")) return "soft_signs";
    if (el.id === "situation") return "sbard.situation";
    if (el.dataset.absent) return "observations." + el.dataset.absent;
    if (el.hasAttribute("data-obs")) return "observations." + (el.id === "on_oxygen" ? "oxygen_litres_per_min" : el.id);
    return null;
  }
  function clearFor(el) {
    const f = fieldOf(el);
    if (!f) return;
    let changed = submitErrors.delete(f);
    // Observations or a soft sign answer "give one or the other".
    if ((f.startsWith("observations") || f === "soft_signs") && (submitErrors.delete("soft_signs") | submitErrors.delete("observations"))) changed = true;
    if (submitErrors.delete("_form")) changed = true;
    if (changed) renderErrors(false);
  }
  // check finds what would stop the raise, before it is sent.
  function check() {
    const errs = new Map();
    if (!current) errs.set("resident_id", "Choose the resident.");
    const signs = document.querySelectorAll("#soft-signs input:checked").length;
    const anyObs = anyObservation();
    if (!anyObs && !signs) errs.set("soft_signs", "Enter the observations, or tick at least one soft sign.");
    if (anyObs) {
      for (const f of NUMERIC) {
        const v = $(f).value.trim();
        if ($("absent-" + f).value) continue;
        if (v === "") errs.set("observations." + f, "Enter the " + NUMERIC_WORDS[f] + ", or say why it was not taken.");
        else if (isNaN(Number(v))) errs.set("observations." + f, "Give the " + NUMERIC_WORDS[f] + " as a number.");
      }
      if (!$("consciousness").value) errs.set("observations.consciousness", "Choose the level of consciousness (ACVPU).");
    }
    if ($("taken_at").value.trim() && !takenAt()) errs.set("observations.taken_at", "Give the time taken as HH:MM, 24-hour (for example 02:10).");
    if (!$("situation").value.trim()) errs.set("sbard.situation", "Describe the situation: what has changed, and when.");
    return errs;
  }

  // ------------------------------------------------------------ scoring
  function acpBeside(box, r) {
    if (!r) { box.hidden = true; return; }
    const p = r.advance_care_plan;
    box.replaceChildren(h("h3", {}, r.name + "'s advance care plan"),
      h("p", {}, acpLine(p)),
      p && p.summary ? h("p", {}, p.summary) : null,
      p && p.has_respect_form ? h("p", {}, "There is a ReSPECT form: follow it, and give it to the ambulance crew.") : null);
    box.hidden = false;
  }

  async function score() {
    const n = ++scoring;
    if (!$("taken_at").value && anyObservation()) $("taken_at").value = wallNow();
    $("oxygen_litres_per_min").disabled = !$("on_oxygen").checked;
    for (const f of NUMERIC) { const off = !!$("absent-" + f).value; $(f).disabled = off; if (off) $(f).value = ""; }
    showStale();
    const o = observations();
    const complete = NUMERIC.every((f) => o[f] !== undefined || (o.absent && o.absent[f])) && (o.consciousness || (o.absent && o.absent.consciousness));
    if (!complete) {
      $("news2-total").textContent = "—"; $("news2-risk").textContent = "Fill in every value, or say why it was not taken.";
      $("score").className = "score"; $("news2-subscores").textContent = ""; $("news2-response").textContent = ""; $("emergency").hidden = true; $("emergency-acp").hidden = true;
      return;
    }
    try {
      const s = await api("POST", "/api/v1/news2", { observations: o, spo2_scale: current ? current.spo2_scale : 1 });
      if (n !== scoring) return;
      scoreErrors.clear(); renderErrors(false);
      const risk = news2Risk(s);
      $("news2-total").textContent = news2Label(s);
      $("news2-risk").textContent = s.risk ? "(" + s.risk + " risk)" : "(a value was not taken: the true score can only be higher" + (risk ? "; at least " + risk + " risk" : "") + ")";
      $("score").className = "score risk-" + (risk || "partial");
      const scale = current ? current.spo2_scale || 1 : 1;
      $("news2-subscores").textContent = Object.entries(s.subscores).map(([k, v]) => SUB_LABELS[k] + (k === "spo2" ? " (Scale " + scale + ")" : "") + " " + v).join(" · ");
      $("news2-response").textContent = risk ? RISK_TEXT[risk] : "";
      const emergency = risk === "high";
      $("emergency").hidden = !emergency;
      $("emergency").textContent = emergency ? "NEWS2 " + news2Label(s) + ": call 999 now unless the resident's advance care plan says otherwise. Raise this escalation too: the consultant is paged at the same time." : "";
      if (emergency) acpBeside($("emergency-acp"), current); else $("emergency-acp").hidden = true;
    } catch (e) {
      if (n !== scoring) return;
      if (e.status >= 400 && e.status < 500) {
        scoreErrors.clear();
        if (e.field) scoreErrors.set(e.field, e.message);
        renderErrors(false);
        $("news2-total").textContent = "—"; $("news2-risk").textContent = "";
      } else fallback(true, "Nightcall cannot be reached. Phone");
    }
  }

  let timer = null;
  function scoreSoon() { clearTimeout(timer); timer = setTimeout(score, 200); }

  // A raise is checked, then confirmed: the nurse checks the resident's name
  // and date of birth (the wrong-resident guard) and sees any stale or overdue flag.
  function confirmRaise(ev) {
    ev.preventDefault();
    submitErrors.clear();
    for (const [f, m] of check()) submitErrors.set(f, m);
    if (submitErrors.size) { $("raise-confirm").hidden = true; renderErrors(true); return; }
    renderErrors(false);
    const age = ageOn(current.date_of_birth, new Date());
    $("raise-confirm-who").textContent = "You are asking for a consultant for " + current.name + ", born " + fmtDay(current.date_of_birth) +
      (age !== null ? " (aged " + age + ")" : "") + ", room " + current.room + ", NHS number " + fmtNHS(current.nhs_number) + ". Is this the right resident?";
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
    const body = {
      resident_id: current ? current.id : "",
      soft_signs: [...document.querySelectorAll("#soft-signs input:checked")].map((i) => i.value),
      sbard: { situation: $("situation").value, background: $("background").value, assessment: $("assessment").value, recommendation: $("recommendation").value },
    };
    if (anyObservation()) body.observations = observations();
    try {
      escalation = await api("POST", "/api/v1/escalations", body, { "Idempotency-Key": crypto.randomUUID() });
      remember(escalation.fallback_phone);
      submitErrors.clear(); renderErrors(false);
      waiting();
    } catch (e) {
      if (e.status === 503 || !e.status) {
        if (e.detail && e.detail.fallback_phone) remember(e.detail.fallback_phone);
        fallback(true, "Nightcall cannot record this now. Phone");
      }
      submitErrors.clear();
      submitErrors.set(e.field && document.getElementById("err-" + e.field) ? e.field : "_form", e.status ? e.message : "Nightcall cannot be reached. Phone the number at the top of the page.");
      renderErrors(true);
      if (e.code === "escalation_open" && e.detail.escalation_id) { escalation = { id: e.detail.escalation_id, resident_id: current && current.id }; waiting(); }
      if (e.code === "resident_inactive" || e.status === 404) {
        // Moved, left or died since this page loaded: show the list as it is now.
        residents = await api("GET", "/api/v1/residents").catch(() => residents);
        renderResidents();
        choose(null);
      }
    }
  }

  function waiting() {
    show("wait-view");
    named();
    acceptedSeen = false;
    $("withdraw-confirm").hidden = true; $("withdraw").hidden = false;
    const started = escalation.raised_at ? new Date(escalation.raised_at) : new Date();
    clearInterval(clock);
    clock = setInterval(() => { $("clock").textContent = fmtDuration(Date.now() - started); }, 500);
    follow();
  }

  // follow keeps the wait view up to date by long poll: each request names
  // the version the page shows (If-None-Match) and asks the server to wait
  // for a change (Prefer: wait); it is answered the moment the escalation
  // changes (the consultant's acceptance starts the call at once) or, with
  // nothing new, after 25 s (304). A request that fails is tried again
  // after 1.5 s, and the page says Nightcall cannot be reached meanwhile.
  function follow() {
    const mine = ++following;
    let tag = "";
    (async () => {
      while (mine === following && escalation) {
        const id = escalation.id;
        let gap = 0;
        const asked = Date.now();
        try {
          const r = await fetch("/api/v1/escalations/" + encodeURIComponent(id), {
            credentials: "same-origin", headers: tag ? { "If-None-Match": tag, "Prefer": "wait=25" } : {},
            // A wait the network lost (weak Wi-Fi) is given up and asked again.
            signal: AbortSignal.timeout(30000) });
          if (mine !== following || !escalation || escalation.id !== id) return;
          if (r.status === 304) {
            lost(false);
            // Answered at once (a proxy dropped the Prefer header): poll.
            if (Date.now() - asked < 1000) await new Promise((ok) => setTimeout(ok, 1500));
            continue;
          }
          const text = await r.text();
          let data = null;
          try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
          if (!r.ok) throw new APIError(r.status, data);
          tag = r.headers.get("ETag") || "";
          drawEscalation(data);
        } catch (err) {
          failed(err);
          tag = "";
          gap = 1500;
        }
        if (gap) await new Promise((ok) => setTimeout(ok, gap));
      }
    })();
  }

  // refresh reads the escalation once (after the home acts on it).
  async function refresh() {
    try { drawEscalation(await api("GET", "/api/v1/escalations/" + encodeURIComponent(escalation.id))); } catch (err) { failed(err); }
  }

  function failed(err) {
    if (!err.status || err.status >= 500) { fallback(true, "Nightcall cannot be reached. Phone"); lost(true); }
  }

  // pagedList says in plain words whom Nightcall has asked, and what
  // became of each page.
  function pagedList(e) {
    const pages = (e.delivery && e.delivery.pages) || [];
    if (pages.length) {
      return pages.map((p) => {
        const names = (p.consultants || []).map((c) => c.name || c.username).join(" and ") || "the consultant on call";
        const bits = [fmtTime(p.sent_at) + ": " + (p.reason === "join_overdue" ? "asked " + names + " again: they accepted but have not joined the call" : "asked " + names + (p.level > 1 ? " (next on the rota)" : " (first on call)"))];
        const devs = (p.consultants || []).flatMap((c) => c.devices || []);
        const got = devs.map((d) => d.received_at).filter(Boolean).sort()[0];
        const saw = devs.map((d) => d.seen_at).filter(Boolean).sort()[0];
        if (saw) bits.push("seen at " + fmtTime(saw));
        else if (got) bits.push("reached their phone at " + fmtTime(got));
        if (p.timed_out_at) bits.push("no answer by " + fmtTime(p.timed_out_at) + ", so Nightcall asked the next");
        return h("li", {}, bits.join("; "));
      });
    }
    const words = { "escalation.paged": "a consultant was paged", "escalation.page_received": "the page reached a consultant's phone", "escalation.unanswered": "nobody has answered yet" };
    return (e.timeline || []).filter((t) => words[t.type]).map((t) => h("li", {}, fmtTime(t.at) + ": " + words[t.type]));
  }

  // drawEscalation shows the escalation as the server has it.
  function drawEscalation(e) {
    escalation = e;
    remember(e.fallback_phone);
    lost(false);
    if (!navigator.onLine) return;
    const r = named();
    $("wait-advice").textContent = e.advice ? e.advice.text : "";
    $("wait-advice").className = "advice " + (e.advice ? e.advice.level : "");
    if (e.advice && e.advice.level === "emergency") acpBeside($("wait-acp"), r); else $("wait-acp").hidden = true;
    $("wait-stale").hidden = !e.observations_stale;
    $("wait-stale").textContent = e.observations_stale && e.observations ? "The observations were taken at " + fmtTime(e.observations.taken_at) + ", more than an hour before you asked. If you can, take a fresh set and tell the consultant." : "";
    // delivery.js (the paging work) draws who was paged, device by device.
    const delivery = window.NightcallDelivery || {};
    if (typeof delivery.render === "function") delivery.render(e, $("paged")); else $("paged").replaceChildren(...pagedList(e));
    const who = e.accepted_by ? e.accepted_by.name : "A consultant";
    const overdueJoin = e.status === "accepted" && e.delivery && e.delivery.join_overdue_at && !e.delivery.consultant_joined_at;
    if (e.status === "unanswered") fallback(true, "No consultant has answered yet. Phone now");
    else if (overdueJoin) fallback(true, who + " accepted but has not joined the call. Phone");
    else if (notReady) fallback(true, notReady);
    else fallback(false);
    if (e.status === "accepted") {
      show("call-view");
      if (!acceptedSeen) { acceptedSeen = true; beep(660, 0.25); setTimeout(() => beep(880, 0.35), 300); }
      // delivery.js (the paging work) keeps a "joining" clock in the same line.
      if (typeof delivery.joining === "function") delivery.joining(e, $("accepted-by"));
      else $("accepted-by").textContent = who + (e.delivery && e.delivery.consultant_joined_at ? " has accepted and joined the call." : " has accepted: joining the video call now.");
      window.NightcallCall.setPhone("If the video fails, phone", phone());
      if (!callStarted) { callStarted = true; window.NightcallCall.start(e.id).catch((err) => { $("status").textContent = "Could not start the call: " + err.message; }); }
    }
    if (e.status === "decided" || e.status === "withdrawn") {
      following++; clearInterval(clock);
      if (callStarted) window.NightcallCall.finish("The call has ended.", true);
      if (e.status === "decided") decided(e); else reset();
    }
  }

  function decided(e) {
    show("decision-view");
    named();
    const d = e.decision;
    $("outcome").textContent = d.outcome === "admit" ? "Admit to hospital" : "Stay in the home with this plan";
    $("outcome").className = "outcome " + d.outcome;
    $("plan").textContent = d.plan || "—";
    $("rationale").textContent = d.rationale;
    $("decided-by").textContent = "Decided by " + (d.decided_by_name || d.decided_by) + " at " + fmtTime(d.decided_at);
    stampPrint();
  }
  function stampPrint() { $("printed-at").textContent = "Printed " + fmtTime(new Date()) + " from Nightcall, " + homeName() + ". Escalation raised " + (escalation && escalation.raised_at ? fmtTime(escalation.raised_at) : "") + "."; }

  function reset() {
    escalation = null; callStarted = false;
    show("raise-view");
    $("raise-form").reset();
    $("raise-confirm").hidden = true;
    submitErrors.clear(); scoreErrors.clear(); renderErrors(false);
    choose(null);
    loadFollowUps();
  }

  async function loadFollowUps() {
    try {
      const list = (await api("GET", "/api/v1/escalations?status=decided")).filter((e) => e.follow_up_needed);
      $("follow-ups").hidden = list.length === 0;
      $("follow-up-list").replaceChildren(...list.map((e) => {
        const r = residents.find((x) => x.id === e.resident_id);
        const li = h("li", {}, h("span", { class: "grow" }, (r ? r.name : e.resident_id) + " — stayed after the call at " + fmtTime(e.decision.decided_at) + ": "));
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
      home = homes.find((x) => x.id === m.care_home_id) || homes[0] || null;
      if (home) remember(home.fallback_phone);
    } catch (e) { fallback(true, "Nightcall cannot be reached. Phone"); }
    residents = await api("GET", "/api/v1/residents");
    renderResidents();
    scaleHint();
    $("soft-signs").replaceChildren(...SOFT_SIGNS.map(([code, label]) => h("label", {}, h("input", { type: "checkbox", value: code, id: "sign-" + code }), " " + label)));
    document.querySelectorAll("[data-absent]").forEach((s) => s.replaceChildren(...ABSENT.map(([v, l]) => h("option", { value: v }, l))));
    document.querySelectorAll("[data-obs], [data-absent]").forEach((i) => i.addEventListener("input", scoreSoon));
    document.querySelectorAll("[data-obs], [data-absent]").forEach((i) => i.addEventListener("change", scoreSoon));
    $("raise-form").addEventListener("submit", confirmRaise);
    $("raise-confirm-yes").addEventListener("click", raise);
    $("raise-confirm-no").addEventListener("click", () => { $("raise-confirm").hidden = true; $("raise-submit").focus(); });
    // Any change to the form takes the nurse back to check it again, and
    // clears the error of the field that changed (and only that one).
    $("raise-form").addEventListener("input", (ev) => { $("raise-confirm").hidden = true; clearFor(ev.target); });
    $("raise-form").addEventListener("change", (ev) => clearFor(ev.target));
    setInterval(showStale, 30000);
    $("withdraw").addEventListener("click", () => {
      const r = named();
      $("withdraw-confirm-text").textContent = "Withdraw the request for " + (r ? r.name : "this resident") + "? The consultant will stop being paged. Only do this if they no longer need a doctor.";
      $("withdraw-confirm").hidden = false; $("withdraw").hidden = true;
      $("withdraw-no").focus();
    });
    $("withdraw-no").addEventListener("click", () => { $("withdraw-confirm").hidden = true; $("withdraw").hidden = false; $("withdraw").focus(); });
    $("withdraw-yes").addEventListener("click", async () => {
      try {
        await api("POST", "/api/v1/escalations/" + escalation.id + "/withdraw", { reason: "No longer needed" }, { "Idempotency-Key": crypto.randomUUID() });
        refresh();
      } catch (e) { $("withdraw-confirm-text").textContent = "It could not be withdrawn: " + e.message; }
    });
    $("print").addEventListener("click", () => { stampPrint(); window.print(); });
    window.addEventListener("beforeprint", stampPrint);
    $("new").addEventListener("click", reset);
    loadFollowUps();
    // Resume an open escalation after a reload.
    const open = await api("GET", "/api/v1/escalations?status=open");
    if (open.length) { escalation = open[0]; current = residents.find((x) => x.id === escalation.resident_id) || null; waiting(); }
    setInterval(async () => {
      // /readyz/paging fails while a raise would not be paged (the pager
      // stalled or still replaying the log): then the home must phone.
      // While an escalation is open, refresh() decides what the banner says.
      try { await api("GET", "/readyz/paging"); notReady = ""; if (!escalation || escalation.status === "decided" || escalation.status === "withdrawn") fallback(false); }
      catch (e) {
        notReady = e.status === 503 ? "Nightcall cannot page a consultant right now. Phone" : "Nightcall cannot be reached. Phone";
        fallback(true, notReady);
        if (escalation && !e.status) lost(true);
      }
    }, 3000);
  })().catch(() => fallback(true, "Nightcall cannot be reached. Phone"));
}

// ---------------------------------------------------------------- consultant
function consolePage() {
  let current = null, currentResident = null, ws = null, flash = null;
  const residents = new Map(), homes = new Map(), pending = new Map();

  async function resident(id) {
    if (!residents.has(id)) residents.set(id, await api("GET", "/api/v1/residents/" + encodeURIComponent(id)).catch(() => null));
    return residents.get(id);
  }
  function homeOf(id) { return homes.get(id) || { id, name: id, fallback_phone: "" }; }

  function flashTitle(text) {
    clearInterval(flash);
    let on = false;
    flash = setInterval(() => { document.title = (on = !on) ? "● " + text : "Nightcall — consultant"; }, 700);
  }
  function stopFlash() { clearInterval(flash); document.title = "Nightcall — consultant"; }

  // The page banner is itself the Accept button: one per page not yet
  // accepted, naming the home, the score and how long they have waited.
  let bannerNote = "";
  function renderBanner() {
    const box = $("alert");
    const kids = [...pending.values()].map((e) => h("button", { type: "button", class: "page-accept", "data-escalation": e.id, onclick: () => accept(e.id) },
      h("span", { class: "act" }, "Accept"),
      h("span", {}, "Page: " + e.resident.name + " at " + e.care_home.name + (e.news2 ? ", NEWS2 " + news2Label(e.news2) : "")),
      h("span", {}, "Waiting ", h("span", { "data-since": e.raised_at }, fmtDuration(Date.now() - new Date(e.raised_at))))));
    if (!kids.length && bannerNote) kids.push(h("p", {}, bannerNote));
    box.replaceChildren(...kids);
    box.hidden = kids.length === 0;
  }

  function connectPager() {
    const device = localStorage.getItem("nightcall.device") || crypto.randomUUID();
    localStorage.setItem("nightcall.device", device);
    ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/v1/pager?device=" + device);
    ws.onopen = () => { $("pager-status").textContent = "Pager connected."; };
    ws.onclose = (ev) => {
      // 4401: the session ended (signed out elsewhere, account disabled, timed out): sign in again.
      if (ev.code === 4401) { $("pager-status").textContent = "Your session has ended. Sign in again."; location.href = "/"; return; }
      $("pager-status").textContent = "Pager disconnected — reconnecting…"; setTimeout(connectPager, 2000);
    };
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type === "page") {
        ws.send(JSON.stringify({ type: "received", page_id: m.page_id }));
        const e = m.escalation;
        const text = "Page: " + e.resident.name + " at " + e.care_home.name + (e.news2 ? ", NEWS2 " + news2Label(e.news2) : "");
        if (current && current.id === e.id) return; // already open here
        pending.set(e.id, e); bannerNote = "";
        renderBanner();
        beep(); flashTitle(text);
        if ("Notification" in window && Notification.permission === "granted") new Notification("Nightcall", { body: text, requireInteraction: true });
        const seen = () => { if (document.visibilityState === "visible") { ws.send(JSON.stringify({ type: "seen", page_id: m.page_id })); document.removeEventListener("visibilitychange", seen); } };
        document.addEventListener("visibilitychange", seen); seen();
        loadQueue();
      } else if (m.type === "page_cancelled") {
        const e = pending.get(m.escalation_id);
        pending.delete(m.escalation_id);
        if (!pending.size) stopFlash();
        const who = e ? e.resident.name + " at " + e.care_home.name : "the escalation";
        bannerNote = m.reason === "accepted_by_other" ? "Another consultant accepted " + who + "." : (m.reason === "withdrawn" ? "The home withdrew " + who + "." : "");
        renderBanner();
        loadQueue();
      }
    };
  }

  async function loadQueue() {
    const list = await api("GET", "/api/v1/escalations?status=open");
    // Most urgent first: by NEWS2 (a partial set by its lower bound), then longest waiting.
    list.sort((a, b) => news2Bound(b.news2) - news2Bound(a.news2) || new Date(a.raised_at) - new Date(b.raised_at));
    $("queue-empty").hidden = list.length > 0;
    const cards = [];
    for (const e of list) {
      const r = await resident(e.resident_id);
      const risk = news2Risk(e.news2) || (e.advice ? e.advice.level : "routine");
      const partial = e.news2 && (e.news2.total === null || e.news2.total === undefined);
      const label = e.news2 ? "NEWS2 " + news2Label(e.news2) + (risk ? " · " + (partial ? "at least " : "") + risk + " risk" : "") : "Soft signs only · " + risk;
      const mine = e.status === "accepted";
      cards.push(h("li", { class: "card risk-" + risk, "data-escalation": e.id },
        h("p", { class: "name" }, r ? r.name : e.resident_id),
        h("p", {}, h("span", { class: "pill risk-" + risk }, label)),
        h("p", {}, homeOf(e.care_home_id).name + " · waiting ", h("span", { "data-since": e.raised_at }, fmtDuration(Date.now() - new Date(e.raised_at))), " · " + (STATUS_WORDS[e.status] || e.status)),
        e.observations_stale ? h("p", {}, h("span", { class: "flag" }, "observations over 1 h old")) : null,
        mine ? h("button", { type: "button", class: "secondary", onclick: () => open(e.id) }, "Open " + (r ? r.name : "the case"))
          : h("button", { type: "button", onclick: () => accept(e.id) }, "Accept" + (r ? ": " + r.name : ""))));
    }
    $("queue").replaceChildren(...cards);
  }

  async function accept(id) {
    performance.mark("nightcall:accept");
    // Accept is joining the video call: the camera starts with the accept
    // itself, not after its answer, and stops if the accept is refused.
    const cam = window.NightcallCall.camera();
    try {
      await api("POST", "/api/v1/escalations/" + id + "/accept", undefined, { "Idempotency-Key": crypto.randomUUID() });
    } catch (e) {
      cam.then((m) => m.getTracks().forEach((t) => t.stop()), () => {});
      bannerNote = e.message; renderBanner(); loadQueue();
      return;
    }
    performance.mark("nightcall:accepted");
    // The call first, and before anything that could throw: the camera is
    // the call's from here (it stops it when the call ends or fails), and
    // its socket starts while the case loads (open starts it too, which is
    // then a no-op).
    window.NightcallCall.start(id, cam).catch((err) => { $("status").textContent = "Could not start the call: " + err.message; });
    try {
      pending.delete(id); bannerNote = "";
      if (!pending.size) stopFlash();
      renderBanner();
      await open(id);
    } catch (e) { bannerNote = e.message; renderBanner(); loadQueue(); }
  }

  function dl(el, pairs) {
    el.replaceChildren(...pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v === undefined || v === null || v === "" ? "—" : v)]));
  }

  async function open(id) {
    const e = await api("GET", "/api/v1/escalations/" + id);
    const r = await api("GET", "/api/v1/residents/" + e.resident_id);
    current = e; currentResident = r;
    const home = homeOf(e.care_home_id);
    const homePhone = e.fallback_phone || home.fallback_phone || "";
    $("queue-view").hidden = true; $("case-view").hidden = false;
    document.body.classList.add("in-case");
    window.scrollTo(0, 0);
    const age = ageOn(r.date_of_birth, new Date());
    $("case-title").textContent = r.name + (age !== null ? ", " + age : "");
    $("case-who").textContent = "NHS " + fmtNHS(r.nhs_number) + " · " + home.name + (r.room ? ", room " + r.room : "") + (r.spo2_scale === 2 ? " · SpO2 Scale 2" : "");
    $("call-home").textContent = homePhone ? "Phone " + home.name : "No phone for the home";
    $("call-home").href = homePhone ? "tel:" + homePhone.replace(/[^+0-9]/g, "") : "#";
    $("call-home").setAttribute("aria-label", homePhone ? "Phone " + home.name + " on " + homePhone : "No phone number for the home");
    window.NightcallCall.setPhone("Phone " + home.name, homePhone);
    dl($("resident"), [["Name", r.name], ["Born", fmtDay(r.date_of_birth) + (age !== null ? " (aged " + age + ")" : "")], ["NHS number", fmtNHS(r.nhs_number)], ["Home", home.name + (r.room ? ", room " + r.room : "")],
      ["SpO2 scale", r.spo2_scale === 2 ? "Scale 2 (target 88–92%)" + (r.spo2_scale_set_by ? ", set by " + r.spo2_scale_set_by : "") : "Scale 1"], ["Usual NEWS2", r.baseline ? r.baseline.news2_total : ""],
      ["Allergies", (r.allergies || []).join(", ") || "none recorded"]]);
    const s = e.news2;
    $("case-news2").replaceChildren(s ? h("p", { class: "score risk-" + (news2Risk(s) || "partial") }, "NEWS2 " + news2Label(s) + " " + (s.risk ? "(" + s.risk + " risk)" : (s.risk_at_least ? "(at least " + s.risk_at_least + " risk: a value was not taken, and can only add to the score)" : "")) +
      (r.baseline && r.baseline.news2_total !== undefined ? "; usual " + r.baseline.news2_total : ""))
      : h("p", {}, "No observations: soft signs only."));
    observationTable(e, r);
    trend(r);
    $("sbard").replaceChildren(
      h("p", {}, h("strong", {}, "Soft signs: "), (e.soft_signs || []).map((c) => SOFT_SIGN_WORDS[c] || c).join("; ") || "none"),
      ...[["Situation", e.sbard.situation], ["Background", e.sbard.background], ["Assessment", e.sbard.assessment], ["Recommendation", e.sbard.recommendation]]
        .map(([k, v]) => h("p", {}, h("strong", {}, k + ": "), v || "—")));
    const p = r.advance_care_plan || {};
    $("acp-wishes").textContent = r.advance_care_plan && (p.hospital_admission || p.cpr)
      ? "Care plan: " + (ADMISSION_WORDS[p.hospital_admission] || "admission not recorded") + " · " + (CPR_WORDS[p.cpr] || "CPR not recorded") + (p.review_overdue ? " · review overdue" : "")
      : "No advance care plan recorded.";
    $("acp-overdue").hidden = !p.review_overdue;
    $("acp-overdue").textContent = p.review_overdue ? "Review overdue: this plan was due for review on " + fmtDay(p.review_due) + ". Check it with the home and the resident or their family." : "";
    dl($("acp"), [["ReSPECT form", p.has_respect_form ? "yes" : "no"], ["Focus of care", FOCUS_WORDS[p.focus] || p.focus], ["Hospital admission", p.hospital_admission ? p.hospital_admission + " (" + (ADMISSION_WORDS[p.hospital_admission] || "") + ")" : ""],
      ["CPR (separate from admission)", p.cpr === "do_not_attempt" ? "do not attempt CPR" : p.cpr], ["Summary", p.summary], ["Recorded", p.recorded_at ? fmtDay(p.recorded_at) : ""],
      ["Review due", p.review_due ? fmtDay(p.review_due) + (p.review_overdue ? " — review overdue" : "") : ""]]);
    $("history").replaceChildren(...(r.recent_escalations || []).filter((x) => x.id !== e.id).map((x) => h("li", {}, fmtTime(x.raised_at) + ": " + (x.outcome ? OUTCOME_WORDS[x.outcome] || x.outcome : STATUS_WORDS[x.status] || x.status))));
    if (!$("history").children.length) $("history").replaceChildren(h("li", {}, "None in the record."));
    resetDecision(e, r);
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
        h("th", { scope: "row" }, h("span", { class: "long" }, p.label + (p.key === "spo2" ? " (scale " + (r.spo2_scale || 1) + ")" : "")),
          h("span", { class: "short", "aria-hidden": "true" }, (SHORT_LABELS[p.key] || p.label) + (p.key === "spo2" ? " S" + (r.spo2_scale || 1) : ""))),
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

  // ------------------------------------------------------------ decision
  const CF_WORDS = { ed: "gone to A&E or called 999", gp: "needed a GP", none: "stayed anyway" };
  function decisionControls() { return [...$("decision-form").querySelectorAll("input, textarea, button")].filter((x) => x.id !== "back-to-queue"); }
  function resetDecision(e, r) {
    $("decision-form").reset();
    decisionControls().forEach((x) => { x.disabled = false; });
    $("confirm").hidden = true; $("review").hidden = false; $("back-to-queue").hidden = true;
    $("decision-result").textContent = ""; $("decision-result").className = "";
    showFieldErrors(null, $("decision-form"));
    $("cf-legend").textContent = "Without this call, " + r.name + " would have";
    if (e.status === "decided" && e.decision) lockDecision(e.decision);
  }
  // sentence is the decision in plain words, naming the resident and the home.
  function sentence(d) {
    const r = currentResident, home = homeOf(current.care_home_id).name;
    const what = d.outcome === "stay" ? r.name + " stays at " + home : r.name + " is admitted to hospital from " + home;
    return what + "; without this call they would have " + (CF_WORDS[d.counterfactual] || d.counterfactual) + ".";
  }
  function lockDecision(d) {
    decisionControls().forEach((x) => { x.disabled = true; });
    for (const [name, v] of [["outcome", d.outcome], ["counterfactual", d.counterfactual]]) {
      const c = document.querySelector(`input[name=${name}][value=${v}]`); if (c) c.checked = true;
    }
    $("rationale").value = d.rationale || ""; $("plan").value = d.plan || "";
    $("review").hidden = true; $("confirm").hidden = true;
    $("decision-result").className = "locked";
    $("decision-result").textContent = "Decision recorded at " + fmtTime(d.decided_at || new Date()) + ": " + sentence(d) + " The home can see it now; it cannot be changed.";
    $("back-to-queue").hidden = false;
  }

  function bindDecision() {
    const value = (name) => { const c = document.querySelector(`input[name=${name}]:checked`); return c ? c.value : ""; };
    const read = () => ({ outcome: value("outcome"), counterfactual: value("counterfactual"), rationale: $("rationale").value, plan: $("plan").value });
    $("decision-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const d = read();
      showFieldErrors(null, $("decision-form"));
      const errs = [];
      if (!d.outcome) errs.push(["outcome", "Choose Stay in the home or Admit to hospital.", document.querySelector("input[name=outcome]")]);
      if (!d.counterfactual) errs.push(["counterfactual", "Say what would have happened without this call.", document.querySelector("input[name=counterfactual]")]);
      if (!d.rationale.trim()) errs.push(["rationale", "Give the reason for the decision.", $("rationale")]);
      if (d.outcome === "stay" && !d.plan.trim()) errs.push(["plan", "A stay needs a plan: what to do, when to re-check, when to call again.", $("plan")]);
      for (const [f, msg] of errs) $("err-" + f).textContent = msg;
      if (errs.length) { $("confirm").hidden = true; errs[0][2].focus(); return; }
      $("confirm-text").textContent = sentence(d);
      $("confirm").hidden = false; $("confirm-yes").focus();
    });
    $("decision-form").addEventListener("change", () => { $("confirm").hidden = true; });
    $("confirm-no").addEventListener("click", () => { $("confirm").hidden = true; $("review").focus(); });
    $("confirm-yes").addEventListener("click", async () => {
      const d = read();
      try {
        showFieldErrors(null, $("decision-form"));
        const e = await api("POST", "/api/v1/escalations/" + current.id + "/decision", d, { "Idempotency-Key": crypto.randomUUID() });
        current = e;
        lockDecision(e.decision || d);
        $("back-to-queue").focus();
        window.NightcallCall.finish("The call has ended.", true);
      } catch (e) {
        $("confirm").hidden = true;
        if (!showFieldErrors(e.detail, $("decision-form"))) $("decision-result").textContent = e.message;
      }
    });
    $("back-to-queue").addEventListener("click", () => {
      current = null; currentResident = null;
      $("case-view").hidden = true; $("queue-view").hidden = false;
      document.body.classList.remove("in-case");
      window.scrollTo(0, 0);
      loadQueue().catch(() => {});
      $("queue-title").setAttribute("tabindex", "-1"); $("queue-title").focus();
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
    try { for (const x of await api("GET", "/api/v1/care-homes")) homes.set(x.id, x); } catch (e) { /* names fall back to ids */ }
    // A tap on a lock-screen page (push.js): open the case if it is ours,
    // else bring its Accept banner to the top.
    window.addEventListener("nightcall:open-case", async (ev) => {
      try {
        const e = await api("GET", "/api/v1/escalations/" + encodeURIComponent(ev.detail.id));
        if (e.status === "accepted" && e.accepted_by && e.accepted_by.username === m.username) { await open(e.id); return; }
        await loadQueue();
        window.scrollTo(0, 0);
        const b = document.querySelector('#alert button[data-escalation="' + e.id + '"]') || document.querySelector('#queue li[data-escalation="' + e.id + '"] button');
        if (b) b.focus();
      } catch (err) { /* the queue still shows it */ }
    });
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
const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
function adminPage() {
  let homes = [], residents = [], users = [], rota = null, editing = null, resetting = null;

  // fieldError shows an API error at its field in the form whose error ids
  // start with err-<prefix>-; otherwise in the form's own error line.
  function fieldError(prefix, e) {
    if (!showFieldErrors(e.detail || e, null, prefix + "-")) $("err-" + prefix + "-form").textContent = e.message;
  }
  function clearErrors(prefix) { showFieldErrors(null, null, prefix + "-"); const s = $(prefix + "-saved"); if (s) s.textContent = ""; }
  function saved(prefix, text) { clearErrors(prefix); $(prefix + "-saved").textContent = text; }
  const homeName = (id) => (homes.find((x) => x.id === id) || { name: id }).name;

  // load re-reads everything after each save; saves can follow one another
  // faster than the reads answer, so only the newest load may draw (an older
  // one answering late would put the state from before a save back).
  let loads = 0;
  async function load() {
    const n = ++loads;
    const got = await Promise.all([api("GET", "/api/v1/care-homes"), api("GET", "/api/v1/residents"), api("GET", "/api/v1/users"), api("GET", "/api/v1/rota")]);
    if (n !== loads) return;
    [homes, residents, users, rota] = got;
    $("homes").replaceChildren(...homes.map((x) => h("li", {}, h("span", { class: "grow" }, x.name + " (" + x.id + ") — fallback " + x.fallback_phone + (x.active === false ? " — inactive" : "")))));
    $("residents-table").replaceChildren(...residents.map((r) => h("tr", {}, h("td", {}, r.name), h("td", {}, r.id), h("td", {}, homeName(r.care_home_id)), h("td", {}, r.room), h("td", {}, r.status),
      h("td", {}, r.spo2_scale === 2 ? "Scale 2" : "Scale 1"),
      h("td", {}, r.status === "active" ? h("button", { type: "button", class: "secondary", "data-edit": r.id, onclick: () => editResident(r.id) }, "Edit " + r.name) : "—"))));
    $("move-home").replaceChildren(...homes.filter((x) => x.active !== false).map((x) => h("option", { value: x.id }, x.name)));
    renderUsers();
    renderRota();
    const now = await api("GET", "/api/v1/rota/now");
    if (n !== loads) return;
    $("rota").replaceChildren(...now.levels.map((l, i) => h("li", {}, "Level " + (i + 1) + ": " + l.map((p) => p.name).join(", "))));
  }

  // ------------------------------------------------------------ residents
  async function editResident(id) {
    const r = await api("GET", "/api/v1/residents/" + encodeURIComponent(id));
    editing = r;
    for (const p of ["move", "acp", "scale", "baseline"]) clearErrors(p);
    $("resident-edit-title").textContent = "Edit " + r.name + " (" + r.id + ")";
    $("resident-edit-who").textContent = residentLine(r, homeName(r.care_home_id));
    $("move-home").value = r.care_home_id; $("move-room").value = r.room || "";
    const p = r.advance_care_plan || {};
    $("acp-respect").checked = !!p.has_respect_form; $("acp-focus").value = p.focus || ""; $("acp-hospital").value = p.hospital_admission || "";
    $("acp-cpr").value = p.cpr || ""; $("acp-summary").value = p.summary || ""; $("acp-recorded").value = p.recorded_at || ""; $("acp-review").value = p.review_due || "";
    $("scale-value").value = String(r.spo2_scale || 1); $("scale-by").value = r.spo2_scale_set_by || "";
    $("baseline-total").value = r.baseline ? String(r.baseline.news2_total) : ""; $("baseline-notes").value = r.baseline ? r.baseline.notes || "" : "";
    $("resident-edit").hidden = false;
    $("resident-edit-title").focus();
  }
  async function change(prefix, what, body, done) {
    clearErrors(prefix);
    try {
      const r = await api("POST", "/api/v1/residents/" + encodeURIComponent(editing.id) + "/" + what, body, { "Idempotency-Key": crypto.randomUUID() });
      editing = r;
      saved(prefix, done(r));
      load();
    } catch (e) { fieldError(prefix, e); }
  }

  // ------------------------------------------------------------ people
  function renderUsers() {
    $("users").replaceChildren(...users.map((u) => h("li", { "data-user": u.username },
      h("span", { class: "grow" }, u.name + " — " + u.username + " (" + u.role + (u.care_home_id ? ", " + homeName(u.care_home_id) : "") + ")", u.disabled ? h("span", { class: "status-disabled" }, " — disabled: cannot sign in") : null),
      h("button", { type: "button", class: "secondary", onclick: () => setDisabled(u, !u.disabled) }, (u.disabled ? "Enable " : "Disable ") + u.username),
      h("button", { type: "button", class: "secondary", onclick: () => startReset(u) }, "Reset password for " + u.username))));
  }
  async function setDisabled(u, disable) {
    $("users-status").textContent = "";
    try {
      await api("POST", "/api/v1/users/" + encodeURIComponent(u.username) + (disable ? "/disable" : "/enable"), undefined, { "Idempotency-Key": crypto.randomUUID() });
      $("users-status").textContent = u.username + (disable ? " is disabled: signed out everywhere, and cannot sign in." : " is enabled again.");
      users = await api("GET", "/api/v1/users"); renderUsers();
    } catch (e) { $("users-status").textContent = e.message; }
  }
  function startReset(u) {
    resetting = u;
    clearErrors("password");
    $("password-title").textContent = "New password for " + u.name + " (" + u.username + ")";
    $("new-password").value = "";
    $("password-panel").hidden = false;
    $("new-password").focus();
  }

  // ------------------------------------------------------------ rota
  const names = (level) => level.map((u) => { const x = users.find((y) => y.username === u); return x ? x.name + " (" + u + ")" : u; }).join(", ");
  function renderRota() {
    $("standing").replaceChildren(...(rota.standing || []).map((l, i) => h("li", {}, "Level " + (i + 1) + ": " + names(l))));
    if (!(rota.standing || []).length) $("standing").replaceChildren(h("li", {}, "No standing levels."));
    $("shifts").replaceChildren(...(rota.shifts || []).map((s) => h("li", {},
      h("span", { class: "grow" }, (s.name || s.id) + " (" + s.id + "): " + (s.days || []).join(", ") + " " + s.start + "–" + s.end + "; " + (s.levels || []).map((l, i) => "level " + (i + 1) + " " + names(l)).join("; ")),
      h("button", { type: "button", class: "secondary", onclick: () => editShift(s) }, "Change " + (s.name || s.id)),
      h("button", { type: "button", class: "secondary", onclick: () => removeRota("shifts", s.id) }, "Remove " + (s.name || s.id)))));
    if (!(rota.shifts || []).length) $("shifts").replaceChildren(h("li", {}, "No shifts: the standing levels apply at all times."));
    $("overrides").replaceChildren(...(rota.overrides || []).map((o) => h("li", {},
      h("span", { class: "grow" }, names([o.by]) + " covers " + names([o.covered]) + " from " + fmtTime(o.from) + " to " + fmtTime(o.to)),
      h("button", { type: "button", class: "secondary", onclick: () => removeRota("overrides", o.id) }, "Remove cover"))));
    if (!(rota.overrides || []).length) $("overrides").replaceChildren(h("li", {}, "No cover arranged."));
    const consultants = users.filter((u) => u.role === "consultant" && !u.disabled);
    for (const id of ["override-covered", "override-by"]) $(id).replaceChildren(h("option", { value: "" }, "Choose…"), ...consultants.map((u) => h("option", { value: u.username }, u.name + " (" + u.username + ")")));
  }
  function editShift(s) {
    clearErrors("shift");
    $("shift-id").value = s.id; $("shift-name").value = s.name || ""; $("shift-start").value = s.start; $("shift-end").value = s.end;
    DAYS.forEach((d) => { $("shift-day-" + d).checked = (s.days || []).includes(d); });
    $("shift-levels").value = (s.levels || []).map((l) => l.join(", ")).join("\n");
    $("shift-id").focus();
  }
  async function removeRota(kind, id) {
    $("rota-status").textContent = "";
    try {
      await api("DELETE", "/api/v1/rota/" + kind + "/" + encodeURIComponent(id), undefined, { "Idempotency-Key": crypto.randomUUID() });
      $("rota-status").textContent = kind === "shifts" ? "Shift " + id + " removed." : "Cover removed.";
      load();
    } catch (e) { $("rota-status").textContent = e.message; }
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
    $("shift-days").replaceChildren(...DAYS.map((d) => h("label", {}, h("input", { type: "checkbox", id: "shift-day-" + d, value: d }), " " + d[0].toUpperCase() + d.slice(1))));
    await load();
    $("home-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors("home");
      try { await api("POST", "/api/v1/care-homes", { id: $("home-id").value, name: $("home-name").value, fallback_phone: $("home-phone").value }); saved("home", "Home added."); load(); }
      catch (e) { fieldError("home", e); }
    });
    $("user-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors("user");
      try {
        await api("POST", "/api/v1/users", { username: $("user-name").value, name: $("user-full").value, role: $("user-role").value, care_home_id: $("user-home").value, password: $("user-password").value });
        $("user-password").value = ""; saved("user", "Person added."); load();
      } catch (e) { fieldError("user", e); }
    });
    $("move-form").addEventListener("submit", (ev) => { ev.preventDefault(); change("move", "move", { care_home_id: $("move-home").value, room: $("move-room").value }, (r) => "Moved to " + homeName(r.care_home_id) + (r.room ? ", room " + r.room : "") + "."); });
    $("acp-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      change("acp", "advance-care-plan", { has_respect_form: $("acp-respect").checked, focus: $("acp-focus").value, hospital_admission: $("acp-hospital").value, cpr: $("acp-cpr").value,
        summary: $("acp-summary").value, recorded_at: $("acp-recorded").value, review_due: $("acp-review").value }, (r) => "Care plan saved: " + acpLine(r.advance_care_plan));
    });
    $("scale-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      change("scale", "spo2-scale", { spo2_scale: Number($("scale-value").value), set_by: $("scale-by").value, set_at: new Date().toISOString() }, (r) => "Now scored on SpO2 Scale " + r.spo2_scale + ".");
    });
    $("baseline-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const v = $("baseline-total").value.trim();
      if (v === "" || isNaN(Number(v))) { clearErrors("baseline"); $("err-baseline-news2_total").textContent = "Give the resident's usual NEWS2 as a number, 0 to 20."; $("baseline-total").focus(); return; }
      change("baseline", "baseline", { news2_total: Number(v), notes: $("baseline-notes").value }, (r) => "Usual NEWS2 saved: " + r.baseline.news2_total + ".");
    });
    $("resident-edit-close").addEventListener("click", () => { $("resident-edit").hidden = true; editing = null; });
    $("password-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors("password");
      try {
        // No Idempotency-Key: setting the same password twice is harmless.
        await api("POST", "/api/v1/users/" + encodeURIComponent(resetting.username) + "/password", { password: $("new-password").value });
        $("new-password").value = "";
        saved("password", "Password changed for " + resetting.username + ": they are signed out everywhere and sign in with the new one.");
      } catch (e) { fieldError("password", e); }
    });
    $("password-close").addEventListener("click", () => { $("password-panel").hidden = true; resetting = null; });
    $("shift-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors("shift");
      const id = $("shift-id").value.trim();
      if (!id) { $("err-shift-id").textContent = "Give the shift an id (for example weeknights)."; $("shift-id").focus(); return; }
      const levels = $("shift-levels").value.split("\n").map((l) => l.split(",").map((u) => u.trim()).filter(Boolean)).filter((l) => l.length);
      try {
        await api("PUT", "/api/v1/rota/shifts/" + encodeURIComponent(id), { name: $("shift-name").value, days: DAYS.filter((d) => $("shift-day-" + d).checked), start: $("shift-start").value.trim(), end: $("shift-end").value.trim(), levels },
          { "Idempotency-Key": crypto.randomUUID() });
        saved("shift", "Shift " + id + " saved."); load();
      } catch (e) { fieldError("shift", e); }
    });
    $("override-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors("override");
      const from = zonedInstant($("override-from-date").value, $("override-from-time").value), to = zonedInstant($("override-to-date").value, $("override-to-time").value);
      if (!from) { $("err-override-from").textContent = "Give the start: a date and a 24-hour time (HH:MM)."; $("override-from-date").focus(); return; }
      if (!to) { $("err-override-to").textContent = "Give the end: a date and a 24-hour time (HH:MM)."; $("override-to-date").focus(); return; }
      try {
        await api("POST", "/api/v1/rota/overrides", { from: from.toISOString(), to: to.toISOString(), covered: $("override-covered").value, by: $("override-by").value }, { "Idempotency-Key": crypto.randomUUID() });
        saved("override", "Cover arranged."); load();
      } catch (e) { fieldError("override", e); }
    });
    $("dry-run").addEventListener("click", () => importCSV(true));
    $("import").addEventListener("click", () => importCSV(false));
  })();
}

// ---------------------------------------------------------------- audit
function auditPage() {
  const svgNS = "http://www.w3.org/2000/svg";
  const el = (tag, attrs, ...kids) => { const x = document.createElementNS(svgNS, tag); for (const [k, v] of Object.entries(attrs || {})) x.setAttribute(k, v); x.append(...kids); return x; };
  let homes = new Map();

  // niceMax rounds a maximum up to 1, 2 or 5 × 10^n for the axis.
  function niceMax(v) {
    if (v <= 5) return 5;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }
  // bars draws stacked bars with a y axis (ticks and a title), a labelled
  // x axis, each segment's value inside it and each bar's total above it.
  function bars(rows, keys, colours, names, label, yTitle, xTitle) {
    const W = 640, H = 260, L = 48, R = 12, T = 18, B = 54;
    const total = (r) => keys.reduce((s, k) => s + (r[k] || 0), 0);
    const max = niceMax(Math.max(1, ...rows.map(total)));
    const y = (v) => T + (1 - v / max) * (H - T - B);
    const step = rows.length ? (W - L - R) / rows.length : 0, bw = Math.min(64, step * 0.7);
    const described = rows.map((r) => r.label + ": " + keys.map((k, j) => names[j] + " " + (r[k] || 0)).join(", ")).join("; ");
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart", "aria-label": label + ". " + (described || "No escalations.") });
    const ticks = 5;
    for (let i = 0; i <= ticks; i++) {
      const v = (max / ticks) * i;
      svg.append(el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: i ? "gridline" : "axis" }),
        el("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, String(Math.round(v * 10) / 10)));
    }
    svg.append(el("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }),
      el("text", { x: 12, y: (T + H - B) / 2, transform: `rotate(-90 12 ${(T + H - B) / 2})`, "text-anchor": "middle" }, yTitle),
      el("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle" }, xTitle));
    rows.forEach((r, i) => {
      const x = L + i * step + (step - bw) / 2;
      let acc = 0;
      keys.forEach((k, j) => {
        const v = r[k] || 0;
        if (!v) return;
        const top = y(acc + v), bottom = y(acc);
        svg.append(el("rect", { x, y: top, width: bw, height: bottom - top, class: colours[j] }, el("title", {}, r.label + ": " + names[j] + " " + v)));
        if (bottom - top >= 16 && keys.length > 1) svg.append(el("text", { x: x + bw / 2, y: (top + bottom) / 2 + 4, "text-anchor": "middle", class: "inbar" }, String(v)));
        acc += v;
      });
      svg.append(el("text", { x: x + bw / 2, y: y(acc) - 4, "text-anchor": "middle", class: "value" }, String(acc)),
        el("text", { x: x + bw / 2, y: H - B + 16, "text-anchor": "middle" }, r.label));
    });
    return svg;
  }

  function monthLabel(ym) {
    const m = /^(\d{4})-(\d{2})$/.exec(ym || "");
    return m ? new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", month: "short", year: "numeric" }).format(Date.UTC(+m[1], +m[2] - 1, 1)) : ym;
  }
  const WINDOW_WORDS = { "72h": "72 hours", "7d": "7 days", "28d": "28 days" };

  const TERMS = [
    ["Escalation", "a request from a care home for a consultant, counted by when it was raised."],
    ["Admission avoided", "the consultant decided the resident should stay, said that without the call they would have gone to A&E or 999, and the home confirmed at the end of the follow-up window that they were still at home."],
    ["Stay unconfirmed", "as for an admission avoided, but the home has not confirmed where the resident was at the end of the window."],
    ["Failed stay", "a decision to stay followed by an unplanned admission or A&E attendance inside the follow-up window."],
    ["Death in window", "a resident who stayed and died inside the window; never counted as an admission avoided."],
    ["Window still open", "a stay whose follow-up window has not ended yet, with nothing recorded so far: it counts as nothing until the window ends."],
    ["Ever unanswered", "every consultant on the rota was paged and none accepted in time at least once; the home was shown its fallback number."],
    ["Out of hours", "raised 18:30–08:00 on a weekday, at the weekend or on a bank holiday in England and Wales."],
    ["Time to accept", "from the home pressing the button to a consultant accepting. Median: half were faster. p90: nine in ten were faster."],
  ];

  async function show(ev) {
    if (ev) ev.preventDefault();
    const q = new URLSearchParams({ window: $("window").value });
    const from = $("from").value ? zonedInstant($("from").value, "00:00") : null, to = $("to").value ? zonedInstant($("to").value, "00:00") : null;
    if (from) q.set("from", from.toISOString());
    if (to) q.set("to", to.toISOString());
    $("csv-link").href = "/api/v1/audit/escalations.csv?" + q;
    try {
      const f = await api("GET", "/api/v1/audit/admissions-avoided?" + q);
      $("audit-error").textContent = "";
      $("period").textContent = "Escalations raised " + (f.from ? "from " + fmtTime(f.from) : "since the first record") + (f.to ? " up to (not including) " + fmtTime(f.to) : " up to now") +
        " (" + (TZ || "device time") + "). Follow-up window " + (WINDOW_WORDS[f.window] || f.window) + " after each decision. Figures as of " + fmtTime(f.as_of) + ".";
      const rows = parseCSV(await (await fetch("/api/v1/audit/escalations.csv?" + q)).text()).filter((r) => r.length > 1);
      const head = rows.shift() || [];
      const col = (name) => head.indexOf(name);
      const edStays = rows.filter((r) => r[col("outcome")] === "stay" && r[col("counterfactual")] === "ed").length;
      const p = f.seconds_to_accept || {};
      // rate: "25% of 4 stays", or plainly none when there is nothing to divide by.
      const rate = (n, d, what) => d ? pct(n, d) + " of " + d + " " + what : "no " + what + " in the period";
      const cells = [
        ["Escalations", f.escalations, "raised in the period", "Escalation"],
        ["Admissions avoided", f.admissions_avoided, rate(f.admissions_avoided, edStays, "stays that would otherwise have gone to A&E"), "Admission avoided"],
        ["Stays unconfirmed", f.avoided_unconfirmed, rate(f.avoided_unconfirmed, edStays, "stays that would otherwise have gone to A&E"), "Stay unconfirmed"],
        ["Failed stays", f.failed_stays, rate(f.failed_stays, f.stay, "stays"), "Failed stay"],
        ["Deaths in window", f.deaths_in_window, rate(f.deaths_in_window, f.stay, "stays"), "Death in window"],
        ["Window still open", f.pending_window, rate(f.pending_window, f.stay, "stays"), "Window still open"],
        ["Admitted", f.admit, rate(f.admit, f.decided, "decisions"), null],
        ["Withdrawn", f.withdrawn, rate(f.withdrawn, f.escalations, "escalations"), null],
        ["Ever unanswered", f.ever_unanswered, rate(f.ever_unanswered, f.escalations, "escalations"), "Ever unanswered"],
        ["Out of hours", f.out_of_hours, rate(f.out_of_hours, f.escalations, "escalations"), "Out of hours"],
        ["Time to accept", fmtSeconds(p.p50), "median; p90 " + fmtSeconds(p.p90), "Time to accept"],
      ];
      const define = Object.fromEntries(TERMS);
      $("headline").replaceChildren(...cells.map(([k, v, rate, term]) => h("div", { class: "figure" }, h("span", { class: "n" }, String(v)), h("span", {}, h("strong", {}, k)),
        h("span", { class: "rate" }, rate), term ? h("span", { class: "def" }, define[term]) : null)));
      const months = (f.by_month || []).map((m) => ({ label: monthLabel(m.month), admit: m.admit, avoided: m.admissions_avoided, unconfirmed: m.avoided_unconfirmed, other: Math.max(0, m.stay - m.admissions_avoided - m.avoided_unconfirmed) }));
      const names = ["admitted", "admission avoided", "stay unconfirmed", "other stays"];
      $("months").replaceChildren(bars(months, ["admit", "avoided", "unconfirmed", "other"], ["c-admit", "c-avoided", "c-unconfirmed", "c-other"], names, "Decisions by month and outcome", "Decisions", "Month raised"),
        h("p", { class: "legend" }, ...names.flatMap((n, i) => [h("span", { class: "key " + ["c-admit", "c-avoided", "c-unconfirmed", "c-other"][i] }), n + " "])));
      $("homes-table").replaceChildren(...(f.by_care_home || []).map((c) => h("tr", {}, h("th", { scope: "row" }, (homes.get(c.care_home_id) || {}).name || c.care_home_id), h("td", {}, c.escalations),
        h("td", {}, c.admit + " (" + pct(c.admit, c.decided) + ")"), h("td", {}, c.stay), h("td", {}, c.admissions_avoided), h("td", {}, c.avoided_unconfirmed),
        h("td", {}, c.failed_stays + " (" + pct(c.failed_stays, c.stay) + " of stays)"), h("td", {}, c.deaths_in_window))));
      const secs = rows.map((r) => r[col("seconds_to_accept")]).filter((v) => v !== undefined && v !== "").map(Number).filter((v) => !isNaN(v) && v >= 0);
      const edges = [60, 120, 300, 600, 1800, Infinity], labels = ["< 1 min", "1–2 min", "2–5 min", "5–10 min", "10–30 min", "30 min +"];
      const hist = edges.map((e, i) => ({ label: labels[i], n: secs.filter((s) => s < e && (i === 0 || s >= edges[i - 1])).length }));
      $("tta").replaceChildren(bars(hist, ["n"], ["c-tta"], ["escalations"], "Time from raise to accept", "Escalations", "Time from raise to accept"),
        h("p", {}, "Median " + fmtSeconds(p.p50) + "; p90 " + fmtSeconds(p.p90) + " (" + secs.length + " accepted escalations)."));
    } catch (e) { $("audit-error").textContent = e.message; }
  }
  (async () => {
    if (!(await me(["auditor", "admin"]))) return;
    try { for (const x of await api("GET", "/api/v1/care-homes")) homes.set(x.id, x); } catch (e) { /* ids instead of names */ }
    $("terms").replaceChildren(...TERMS.flatMap(([t, d]) => [h("dt", {}, t), h("dd", {}, d)]));
    $("audit-form").addEventListener("submit", show);
    show();
  })();
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  ({ signin: signinPage, home: homePage, console: consolePage, admin: adminPage, audit: auditPage })[page]?.();
});
