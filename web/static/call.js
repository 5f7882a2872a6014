// Nightcall call page: joins the escalation's call through the signalling
// websocket. The server makes every offer; its first offer has receive slots
// for our microphone and camera.
"use strict";

const Call = (() => {
  const el = (id) => document.getElementById(id);
  let pc, ws, local, ended = false, callId = "";
  const remotes = new Map();
  const roles = new Map(); // stream id → participant role

  function escalationId() {
    const m = location.pathname.match(/^\/call\/(?:invite\/)?([^/]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  function say(text) { const s = el("status"); if (s) s.textContent = text; }

  function send(msg) { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg)); }

  function attach(stream) {
    let tile = remotes.get(stream.id);
    if (!tile) {
      tile = document.createElement("div");
      tile.className = "tile";
      const v = document.createElement("video");
      v.autoplay = true; v.playsInline = true;
      v.setAttribute("aria-label", "Remote participant");
      if (v.requestVideoFrameCallback) v.requestVideoFrameCallback(() => mark("first-frame"));
      tile.appendChild(v);
      el("remotes").appendChild(tile);
      remotes.set(stream.id, tile);
      // The SFU renegotiates a leaver's tracks away: drop the tile at once.
      stream.addEventListener("removetrack", () => { if (!stream.getTracks().some((t) => t.readyState === "live")) drop(stream.id); });
    }
    tile.querySelector("video").srcObject = stream;
    if (roles.has(stream.id)) tile.dataset.role = roles.get(stream.id);
  }

  // notice shows what happened in the call (a photo taken, someone
  // continuing by phone) in a live region under the status line.
  function notice(text) {
    let box = el("call-notices");
    if (!box) {
      box = document.createElement("ul");
      box.id = "call-notices";
      box.className = "notices";
      box.setAttribute("aria-live", "polite");
      const status = el("status");
      if (status) status.after(box); else document.body.appendChild(box);
    }
    const li = document.createElement("li");
    li.textContent = new Date().toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }) + " " + text;
    box.appendChild(li);
  }

  // drop removes one remote tile (a participant who left).
  function drop(id) {
    const tile = remotes.get(id);
    if (tile) { tile.remove(); remotes.delete(id); }
  }

  // clearRemotes removes every remote tile (the call ended, or we rejoin).
  function clearRemotes() {
    for (const id of [...remotes.keys()]) drop(id);
  }

  // tell shows a line about the call's people ("Dr Okafor left the call").
  function tell(text) {
    const n = el("call-notice");
    if (!n) { say(text); return; }
    n.textContent = text;
    n.hidden = !text;
  }

  // seen is the last participants list; a name gone from it left the call.
  let seen = null;
  function participantsChanged(list) {
    const key = (p) => p.role + "\u0000" + p.name;
    if (seen) {
      const now = list.map(key);
      const gone = [], back = [];
      const before = seen.map(key);
      for (const p of seen) { const i = now.indexOf(key(p)); if (i < 0) gone.push(p); else now.splice(i, 1); }
      for (const p of list) { const i = before.indexOf(key(p)); if (i < 0) back.push(p); else before.splice(i, 1); }
      if (gone.length) tell(gone.map((p) => p.name).join(" and ") + " left the call. They can rejoin; if the video fails, phone.");
      else if (back.length) {
        const text = back.map((p) => p.name).join(" and ") + " joined the call.";
        tell(text);
        setTimeout(() => { const n = el("call-notice"); if (n && n.textContent === text) tell(""); }, 8000);
      }
    }
    seen = list;
    // Tiles of streams no longer in the call go at once: by stream id when
    // the server names them, and all of them when we are alone.
    const ids = list.map((p) => p.stream_id).filter(Boolean);
    if (ids.length) for (const id of [...remotes.keys()]) { if (!ids.includes(id)) drop(id); }
    if (list.length <= 1) clearRemotes();
  }

  // phone is the other side's number for when the video fails (set by the page).
  let phone = null;
  function setPhone(label, number) { phone = number ? { label, number } : null; }
  function trouble(text) {
    const box = el("call-trouble");
    if (!box) return;
    if (!text) { box.hidden = true; box.replaceChildren(); return; }
    const p = document.createElement("p");
    p.textContent = text;
    box.replaceChildren(p);
    if (phone) {
      const a = document.createElement("a");
      a.className = "phone target"; a.href = "tel:" + phone.number.replace(/[^+0-9]/g, ""); a.textContent = phone.number;
      const q = document.createElement("p");
      q.append(phone.label + ": ", a);
      box.append(q);
    }
    box.hidden = false;
  }
  function showRejoin(on) {
    const r = el("rejoin"), l = el("leave");
    if (r) r.hidden = !on;
    if (l) l.hidden = on;
  }

  // mark notes a step of joining on the page's performance timeline
  // (nightcall:…), the first time it happens: how long a call takes to
  // start, step by step, is there for the developer tools and the benchmark.
  function mark(step) {
    const name = "nightcall:" + step;
    if (performance.getEntriesByName(name, "mark").length === 0) performance.mark(name);
  }

  async function onMessage(ev) {
    const m = JSON.parse(ev.data);
    switch (m.type) {
      case "offer": {
        // Bound to the connection it came for: the call can end (Leave,
        // the camera refused) during any of these awaits.
        const conn = pc;
        mark("offer");
        await conn.setRemoteDescription({ type: "offer", sdp: m.sdp });
        if (pc !== conn) return;
        await claimSlots(conn, m.sdp);
        if (pc !== conn) return;
        const answer = await conn.createAnswer();
        await conn.setLocalDescription(answer);
        if (pc !== conn) return;
        send({ type: "answer", sdp: conn.localDescription.sdp });
        mark("answer");
        break;
      }
      case "candidate":
        try { await pc.addIceCandidate(m.candidate); } catch (e) { /* a late candidate for a closed m-line */ }
        break;
      case "participants":
        (m.participants || []).forEach((p) => {
          if (!p.stream_id) return;
          roles.set(p.stream_id, p.role);
          const tile = remotes.get(p.stream_id);
          if (tile) tile.dataset.role = p.role;
        });
        participantsChanged(m.participants || []);
        const ul = el("participants");
        ul.replaceChildren(...(m.participants || []).map((p) => {
          const li = document.createElement("li");
          li.textContent = p.name + " (" + p.role + ")";
          return li;
        }));
        break;
      case "notice":
        notice(m.message || "");
        break;
      case "bye":
        finish("The call has ended.", m.message === "the decision was recorded");
        break;
      case "error":
        say("Problem: " + m.message);
        break;
    }
  }

  // finish ends our side of the call; unless it is over for good (the
  // decision was recorded) Rejoin is offered.
  function finish(text, final) {
    if (ended) return;
    ended = true;
    say(text);
    tell("");
    clearRemotes();
    seen = null;
    showRejoin(!final);
    if (!final) trouble(null);
    forgetLost(); // a device being started again is no longer this call's
    if (pc) pc.close();
    if (local) local.getTracks().forEach((t) => t.stop());
    if (ws) ws.close();
    pc = null; ws = null; senders = null; media = null; qualityNow = null;
    showQuality(null);
    document.dispatchEvent(new CustomEvent("nightcall:call-ended"));
  }

  let bound = false;
  function bindControls() {
    if (bound) return;
    bound = true;
    el("mute").addEventListener("click", (e) => toggle(e.currentTarget, "Mute microphone", "Unmute microphone"));
    el("camera").addEventListener("click", (e) => toggle(e.currentTarget, "Turn camera off", "Turn camera on"));
    el("audio-only").addEventListener("click", (e) => { autoAudioOnly = false; toggle(e.currentTarget, "Audio only", "Video back on"); });
    el("leave").addEventListener("click", () => { send({ type: "bye" }); finish("You left the call. Press Rejoin to go back in."); });
    if (el("rejoin")) el("rejoin").addEventListener("click", () => start(callId).catch((e) => say("Could not rejoin: " + e.message)));
    const controls = el("leave").parentElement;
    const guest = location.pathname.startsWith("/call/invite/");
    if (!guest && !el("phone-fallback")) {
      const b = document.createElement("button");
      b.id = "phone-fallback"; b.type = "button"; b.className = "secondary";
      b.textContent = "Continue by phone";
      b.addEventListener("click", () => continueByPhone().catch((e) => say("Problem: " + e.message)));
      controls.appendChild(b);
    }
    if (!guest) addPhotoButton(controls).catch(() => { /* no button without a consultant's session */ });
  }

  // addPhotoButton offers the accepting consultant "Take photo" (on the
  // console's case, or on the call page to a consultant).
  async function addPhotoButton(controls) {
    if (el("take-photo")) return;
    if (document.body.dataset.page !== "console") {
      const r = await fetch("/api/v1/me", { credentials: "same-origin" });
      if (!r.ok || (await r.json()).role !== "consultant") return;
      if (el("take-photo")) return;
    }
    const b = document.createElement("button");
    b.id = "take-photo"; b.type = "button"; b.className = "secondary";
    b.textContent = "Take photo";
    b.title = "Take a still of the home's video and attach it to the escalation";
    b.addEventListener("click", () => takePhoto().catch((e) => say("Could not take the photo: " + e.message)));
    controls.appendChild(b);
  }

  async function apiError(r, fallback) {
    try { return (await r.json()).error.message || fallback; } catch (e) { return fallback; }
  }

  // continueByPhone records that this side gives up on the video and shows
  // the other side's number in large type.
  async function continueByPhone() {
    const r = await fetch("/api/v1/escalations/" + encodeURIComponent(callId) + "/phone-fallback", { method: "POST", credentials: "same-origin" });
    if (!r.ok) throw new Error(await apiError(r, "It could not be recorded."));
    const v = await r.json();
    let box = el("phone-number");
    if (!box) {
      box = document.createElement("p");
      box.id = "phone-number";
      box.className = "fallback-phone";
      box.setAttribute("role", "alert");
      el("leave").parentElement.after(box);
    }
    const whom = v.call === "carehome" ? "the care home" : "the consultant";
    if (v.phone) {
      box.textContent = "";
      box.append("Phone " + (v.name || whom) + ": ");
      const a = document.createElement("a");
      a.href = "tel:" + v.phone.replace(/[^+0-9]/g, "");
      a.textContent = v.phone;
      a.className = "phone";
      box.appendChild(a);
    } else {
      box.textContent = "No phone number is on record for " + whom + ". They have been told you will continue by phone.";
    }
  }

  // homeVideo is the care home's video: the tile of the participant with
  // role carehome, or else the first remote video showing a picture.
  function homeVideo() {
    const videos = [...remotes.values()];
    const home = videos.find((t) => t.dataset.role === "carehome") || videos.find((t) => t.querySelector("video").videoWidth > 0);
    return home ? home.querySelector("video") : null;
  }

  // takePhoto grabs the frame on screen from the home's video and attaches
  // it to the escalation as a JPEG.
  async function takePhoto() {
    const v = homeVideo();
    if (!v || !v.videoWidth) throw new Error("there is no picture from the home yet.");
    const canvas = document.createElement("canvas");
    canvas.width = v.videoWidth; canvas.height = v.videoHeight;
    canvas.getContext("2d").drawImage(v, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
    if (!blob) throw new Error("the picture could not be encoded.");
    const r = await fetch("/api/v1/escalations/" + encodeURIComponent(callId) + "/snapshots",
      { method: "POST", headers: { "Content-Type": "image/jpeg" }, body: blob, credentials: "same-origin" });
    if (!r.ok) throw new Error(await apiError(r, "it was not stored."));
    const sn = await r.json();
    let list = el("snapshots");
    if (!list) {
      list = document.createElement("ul");
      list.id = "snapshots";
      list.className = "snapshots";
      el("leave").parentElement.after(list);
    }
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = "/api/v1/escalations/" + encodeURIComponent(callId) + "/snapshots/" + encodeURIComponent(sn.id);
    a.target = "_blank"; a.rel = "noopener";
    const img = document.createElement("img");
    img.src = a.href; img.alt = "Photo taken at " + new Date(sn.taken_at).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }); img.width = 160;
    a.appendChild(img);
    li.appendChild(a);
    list.appendChild(li);
    say("Photo attached to the escalation.");
    return sn;
  }

  // fetchICEServers gets this call's STUN/TURN servers with a fresh,
  // short-lived TURN credential (only those who may join get one).
  async function fetchICEServers(id) {
    const r = await fetch("/api/v1/calls/" + encodeURIComponent(id) + "/ice-servers", { credentials: "same-origin" });
    if (!r.ok) {
      let msg = "This call cannot be joined now.";
      try { msg = (await r.json()).error.message || msg; } catch (e) { /* not JSON */ }
      throw new Error(msg);
    }
    return r.json();
  }

  // restartICE asks the server for an ICE restart (it makes every offer)
  // with a fresh TURN credential, when the connection stalls or the device
  // changes network: the call goes on on the new address. At most one every
  // 5 seconds; the server bounds them too.
  let lastRestart = 0;
  async function restartICE() {
    if (!pc || ended || Date.now() - lastRestart < 5000) return;
    lastRestart = Date.now();
    try { pc.setConfiguration({ ...pc.getConfiguration(), iceServers: await fetchICEServers(callId) }); } catch (e) { /* keep the old servers */ }
    send({ type: "restart" });
  }
  window.addEventListener("online", () => restartICE());
  if (navigator.connection) navigator.connection.addEventListener("change", () => restartICE());

  // Simulcast. The server makes every offer; its first has a receive slot
  // for our camera that asks for three layers (rids q, h and f). The
  // transceiver the browser makes for that slot carries those three
  // encodings, and the camera goes on it with each layer's size and
  // bitrate: for the answering side, the equivalent of
  // addTransceiver(track, {direction: "sendonly", sendEncodings: [...]}).
  // The server forwards each participant the layer its connection can take.
  const layers = {
    q: { scaleResolutionDownBy: 4, maxBitrate: 150000 },
    h: { scaleResolutionDownBy: 2, maxBitrate: 500000 },
    f: { scaleResolutionDownBy: 1, maxBitrate: 1500000 },
  };
  // senders are the senders our microphone and camera go on, by kind, once
  // the first offer's slots are claimed; media is the camera's stream once
  // it has started.
  let senders = null, media = null;

  // slotOf is the mid of the offer's first m-line of kind (audio, video)
  // the server receives on: recvonly, or sendrecv when the server already
  // sends another participant's track on it (Pion's AddTrack reuses a
  // receive-only transceiver, so whoever joins after the others' audio
  // flows is offered its microphone's slot as sendrecv).
  function slotOf(sdp, kind) {
    for (const section of sdp.split(/\r\n(?=m=)/)) {
      if (!section.startsWith("m=" + kind) || !/\r\na=(recvonly|sendrecv)/.test(section)) continue;
      const m = section.match(/\r\na=mid:(\S+)/);
      if (m) return m[1];
    }
    return null;
  }

  // claimSlots takes the first offer's receive slots for our microphone and
  // camera (sending, our stream, the layers' sizes) whether or not the
  // camera has started: the answer goes at once, and the connection is made
  // while the camera starts. Its tracks go on the slots by replaceTrack,
  // which needs no renegotiation (fillSlots).
  async function claimSlots(conn, sdp) {
    if (pc !== conn || senders) return;
    // Built aside and published whole: a camera that starts during the
    // await below finds no slots yet, and is put on by the fillSlots at the end.
    const claimed = {};
    for (const kind of ["audio", "video"]) {
      const mid = slotOf(sdp, kind);
      const tr = mid === null ? null : conn.getTransceivers().find((t) => t.mid === mid);
      if (!tr) continue; // the server receives no such kind: nothing is sent of it
      // sendrecv, as addTrack makes it: the server may later send the
      // others' media on this same m-line (Pion reuses a receive-only
      // transceiver for a track it adds), and a sendonly slot would answer
      // that offer by refusing it: the other side's audio taken off its
      // stream, and the tile with it.
      tr.direction = "sendrecv";
      if (tr.sender.setStreams) tr.sender.setStreams(local);
      if (kind === "video") {
        const params = tr.sender.getParameters();
        if (params.encodings && params.encodings.some((e) => e.rid)) {
          params.encodings.forEach((e) => Object.assign(e, layers[e.rid] || {}));
          try { await tr.sender.setParameters(params); } catch (e) { /* the browser keeps its own sizes */ }
        }
      }
      claimed[kind] = tr.sender;
    }
    if (pc !== conn) return; // the call ended during the await
    senders = claimed;
    await fillSlots();
  }

  // fillSlots puts the camera's tracks on the claimed slots, once both are there.
  async function fillSlots() {
    if (!pc || !senders || !media) return;
    for (const track of media.getTracks()) {
      // A track replaced while an earlier turn awaited is not put back.
      if (!media || track.readyState === "ended" || !media.getTracks().includes(track)) continue;
      // Only the server offers, so a track on no claimed slot would never
      // be negotiated: such a kind is not sent.
      const s = senders && senders[track.kind];
      if (s && s.track !== track) await s.replaceTrack(track);
    }
  }

  // camera starts the camera and microphone (720p where the camera has it:
  // the browser sends three simulcast layers only from a picture that large).
  // Its promise's failure is left to whoever awaits it.
  const wanted = { audio: true, video: { width: { ideal: 1280 }, height: { ideal: 720 } } };
  function camera() {
    const p = navigator.mediaDevices.getUserMedia(wanted);
    p.catch(() => { /* reported by start */ });
    return p;
  }

  // watch takes note of a camera or microphone that stops by itself during
  // the call (unplugged, taken by another app, the system revoking it):
  // its track ends without our stopping it, and the others would be left
  // with a frozen picture or silence and no word of it.
  function watch(track) {
    track.addEventListener("ended", () => { deviceLost(track).catch(() => { /* said by deviceLost */ }); });
  }
  // deviceLost starts the lost kind of device again and puts its new track
  // on the same slot (replaceTrack: no new negotiation); failing that, it
  // says what the others now miss, and the call goes on with the rest.
  // lost is what each lost kind of device has to say (by kind); the box
  // shows them together, and a kind that recovers takes only its own words
  // away. lostShown is what the box was last given of them, so nothing
  // else said there meanwhile is cleared.
  let lost = {}, lostShown = null;
  function showLost() {
    const text = Object.values(lost).filter(Boolean).join(" ");
    const box = el("call-trouble");
    const shows = box && !box.hidden && box.firstChild && box.firstChild.textContent === lostShown;
    if (text) { trouble(text); lostShown = text; } else if (shows) { trouble(null); lostShown = null; }
  }
  function forgetLost() { lost = {}; showLost(); }
  async function deviceLost(track) {
    const mine = () => !ended && media && media.getTracks().includes(track);
    if (!mine()) return; // stopped by us (the call ended) or already replaced
    const kind = track.kind;
    const what = kind === "video" ? "camera" : "microphone";
    const miss = kind === "video" ? "cannot see you (they can still hear you)" : "cannot hear you";
    lost[kind] = "Your " + what + " stopped. Starting it again…";
    showLost();
    let fresh;
    try {
      fresh = (await navigator.mediaDevices.getUserMedia({ [kind]: wanted[kind] })).getTracks()[0];
      if (!fresh) throw new Error("no " + what);
    } catch (e) {
      if (mine()) {
        lost[kind] = "Your " + what + " stopped and could not be started again (" + ((e && e.message) || "no " + what) + "): the others " + miss + ". Plug it back in, then press Leave and Rejoin, or phone.";
        showLost();
      }
      return;
    }
    if (!mine()) { fresh.stop(); return; }
    media.removeTrack(track); media.addTrack(fresh);
    local.removeTrack(track); local.addTrack(fresh);
    watch(fresh);
    applyToggles();
    await fillSlots();
    lost[kind] = null;
    showLost();
    notice("Your " + what + " stopped and was started again.");
  }
  function stopTracks(stream) { stream.getTracks().forEach((t) => t.stop()); }
  // cameraTrouble says in words why the camera or microphone did not start.
  function cameraTrouble(e) {
    const why = {
      NotAllowedError: "they were not allowed (the browser's camera permission)",
      NotFoundError: "this device has none",
      NotReadableError: "another app is using them",
      OverconstrainedError: "this device's camera cannot give a picture",
    }[e && e.name] || (e && e.message) || "of an unknown error";
    return "Your camera and microphone could not be started, because " + why + ": the other side cannot see or hear you. Allow them and press Rejoin, or phone.";
  }

  // applyToggles gives tracks that arrive after a button was pressed (mute,
  // camera off, audio only) the state the buttons show.
  function applyToggles() {
    const pressed = (id) => { const b = el(id); return !!b && b.getAttribute("aria-pressed") === "true"; };
    local.getAudioTracks().forEach((t) => { t.enabled = !pressed("mute"); });
    local.getVideoTracks().forEach((t) => { t.enabled = !pressed("camera") && !pressed("audio-only"); });
  }

  // The quality indicator: what this side receives, graded good, fair or
  // poor from getStats every 2 seconds (packet loss, jitter, round-trip
  // time, frames per second and the size of the picture, which tells the
  // layer the server sends us). The grade is in words, not colour only.
  let lastQuality = null, qualityNow = null;
  function pictureLayer(height) {
    if (!height) return "";
    return height >= 540 ? "high" : height >= 270 ? "medium" : "low";
  }
  function grade(q) {
    const video = q.videos > 0;
    if (q.loss > 0.08 || q.rttMs > 800 || q.jitterMs > 100 || (video && q.fps < 5)) return "poor";
    if (q.loss > 0.02 || q.rttMs > 300 || q.jitterMs > 30 || (video && (q.fps < 15 || q.layer === "low"))) return "fair";
    return "good";
  }
  async function measureQuality() {
    if (!pc || pc.connectionState !== "connected") return null;
    const stats = await pc.getStats();
    const now = {};
    const q = { loss: 0, jitterMs: 0, rttMs: 0, fps: 0, width: 0, height: 0, videos: 0, layer: "" };
    let fps = null;
    stats.forEach((r) => {
      if (r.type === "inbound-rtp") {
        now[r.id] = { recv: r.packetsReceived || 0, lost: Math.max(0, r.packetsLost || 0) };
        q.jitterMs = Math.max(q.jitterMs, (r.jitter || 0) * 1000);
        if (r.kind === "video" && (r.framesDecoded || 0) > 0) {
          q.videos++;
          fps = fps === null ? (r.framesPerSecond || 0) : Math.min(fps, r.framesPerSecond || 0);
          if (!q.height || (r.frameHeight || 0) < q.height) { q.height = r.frameHeight || 0; q.width = r.frameWidth || 0; }
        }
      }
      if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded" && typeof r.currentRoundTripTime === "number") q.rttMs = r.currentRoundTripTime * 1000;
    });
    let recv = 0, lost = 0;
    for (const [id, v] of Object.entries(now)) {
      const before = (lastQuality && lastQuality[id]) || { recv: 0, lost: 0 };
      recv += Math.max(0, v.recv - before.recv);
      lost += Math.max(0, v.lost - before.lost);
    }
    lastQuality = now;
    q.loss = recv + lost > 0 ? lost / (recv + lost) : 0;
    q.fps = fps || 0;
    q.layer = pictureLayer(q.height);
    q.grade = grade(q);
    return q;
  }
  function showQuality(q) {
    let box = el("call-quality");
    if (!box) {
      box = document.createElement("p");
      box.id = "call-quality";
      box.className = "call-quality";
      // Over the video, taking no room from what is beside and below it.
      const videos = document.querySelector(".videos");
      const anchor = el("call-notice") || el("status");
      if (videos) videos.appendChild(box); else if (anchor) anchor.after(box); else return;
    }
    if (!q) { box.hidden = true; return; }
    const parts = ["Connection " + q.grade];
    if (q.videos) parts.push("picture " + q.layer + " (" + q.width + "×" + q.height + ", " + Math.round(q.fps) + " fps)");
    parts.push("loss " + Math.round(q.loss * 100) + " %", "delay " + Math.round(q.rttMs) + " ms", "jitter " + Math.round(q.jitterMs) + " ms");
    box.textContent = parts.join(" · ");
    box.dataset.level = q.grade;
    box.hidden = false;
  }
  setInterval(async () => {
    try { qualityNow = await measureQuality(); } catch (e) { qualityNow = null; }
    if (pc || qualityNow === null) showQuality(qualityNow);
  }, 2000);

  // start joins the escalation's call. early is the camera's promise when
  // it was started already (by the consultant's Accept, which is joining
  // the call), else the camera starts here.
  async function start(given, early) {
    const id = given || escalationId();
    // A call is joined or being joined while its socket is open (finish and
    // a failed start close it): Rejoin works as soon as the last one ended.
    if (pc || ws) { if (early) early.then(stopTracks, () => {}); return; }
    callId = id;
    ended = false;
    clearRemotes();
    seen = null;
    showRejoin(false);
    trouble(null);
    bindControls();
    say("Connecting…");
    mark("start");
    // The signalling socket, the ICE servers and the camera start at once,
    // and nothing waits for the camera: the peer connection is made with
    // the ICE servers, answers the server's offer and connects while the
    // camera starts; the camera's tracks go on when they come (fillSlots).
    // Messages wait for the peer connection and are handled one at a time,
    // in order (an ICE candidate never overtakes the offer it belongs to).
    const cam = early || camera();
    local = new MediaStream();
    media = null;
    // Not the last call's stopped camera: the preview fills as this one starts.
    if (el("local")) el("local").srcObject = local;
    senders = null;
    let ready = null;
    let queue = Promise.resolve();
    const socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/v1/calls/" + encodeURIComponent(id) + "/signal");
    ws = socket;
    socket.onopen = () => mark("signal-open");
    socket.onmessage = (ev) => {
      queue = queue.then(() => ready).then(() => { if (ws === socket) return onMessage(ev); })
        .catch((e) => say("Problem: " + e.message));
    };
    socket.onclose = () => {
      if (ended || ws !== socket) return;
      finish("Disconnected from the Nightcall server.", false);
      trouble("Nightcall's server cannot be reached, so the video has stopped. Press Rejoin to try again, or phone.");
    };
    ready = (async () => {
      const iceServers = await fetchICEServers(id);
      if (ended || ws !== socket) throw new Error("the call ended while it started");
      pc = new RTCPeerConnection({ iceServers });
      lastQuality = null;
      pc.ontrack = (e) => { mark("track-" + e.track.kind); attach(e.streams[0] || new MediaStream([e.track])); };
      pc.onicecandidate = (e) => { if (e.candidate) send({ type: "candidate", candidate: e.candidate.toJSON() }); };
      pc.onconnectionstatechange = () => {
        if (!pc) return;
        if (pc.connectionState === "connected") { mark("connected"); say(media ? "Connected." : "Connected. Waiting for your camera and microphone (the others cannot see or hear you yet)…"); trouble(null); }
        if (pc.connectionState === "disconnected") { trouble("The video has stalled. It may come back by itself; if not, press Rejoin or phone."); restartICE(); }
        if (pc.connectionState === "failed") { finish("The connection failed.", false); trouble("The video connection failed. Press Rejoin, or phone."); }
      };
    })();
    const started = (async () => {
      const m = await cam;
      if (ended || ws !== socket) { stopTracks(m); throw new Error("the call ended while the camera started"); }
      mark("media");
      m.getTracks().forEach((t) => { local.addTrack(t); watch(t); });
      applyToggles();
      media = m;
      if (pc && pc.connectionState === "connected") say("Connected.");
      await ready;
      await fillSlots();
    })();
    // The call is started once its peer connection is made; the camera
    // comes when it comes. Its failure (refused, none, in use) ends the
    // call we joined, after it connected too: the other side would see a
    // picture that never comes and hear nothing, so the page says why and
    // offers Rejoin and the phone instead.
    started.catch((e) => {
      if (ended || ws !== socket) return; // the call ended meanwhile: nothing to report
      finish("Left the call: no camera or microphone.", false);
      trouble(cameraTrouble(e));
    });
    try {
      await ready;
    } catch (e) {
      // Ended meanwhile (Leave, the camera refused: the page says why) or
      // already rejoined: nothing of this start to report.
      if (ws !== socket) return;
      // No ICE servers (the store down, the call no longer open): leave
      // the call we joined without them, say why, and offer Rejoin and
      // the phone, as any other end of a call does.
      finish("Could not join the video call: " + e.message, false);
      trouble("The video call could not be joined (" + e.message + "). Press Rejoin to try again, or phone.");
    }
  }

  // Audio only when bandwidth is poor: below 150 kbit/s available to send
  // for two checks in a row the camera is paused; above 400 kbit/s for three
  // it comes back, unless the person chose audio only themselves.
  let poor = 0, good = 0, autoAudioOnly = false;
  function adapt(bitrate) {
    const button = el("audio-only");
    if (!local || !button) return false;
    const manual = button.getAttribute("aria-pressed") === "true" && !autoAudioOnly;
    if (manual) return false;
    if (bitrate < 150000) { poor++; good = 0; } else if (bitrate > 400000) { good++; poor = 0; } else { poor = 0; good = 0; }
    if (!autoAudioOnly && poor >= 2) {
      autoAudioOnly = true;
      button.setAttribute("aria-pressed", "true"); button.textContent = "Video back on";
      applyToggles();
      say("Poor connection: audio only for now.");
    } else if (autoAudioOnly && good >= 3) {
      autoAudioOnly = false;
      button.setAttribute("aria-pressed", "false"); button.textContent = "Audio only";
      applyToggles();
      say("Connection better: video is back.");
    }
    return autoAudioOnly;
  }
  setInterval(async () => {
    if (!pc) return;
    let rate = null;
    (await pc.getStats()).forEach((r) => {
      if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded" && r.availableOutgoingBitrate) rate = r.availableOutgoingBitrate;
    });
    if (rate !== null) adapt(rate);
  }, 3000);

  function toggle(button, onText, offText) {
    if (!local) return;
    const on = button.getAttribute("aria-pressed") !== "true";
    button.setAttribute("aria-pressed", String(on));
    button.textContent = on ? offText : onText;
    // The tracks follow every button at once: the camera stays off after
    // "Video back on" while "Turn camera on" is still pressed.
    applyToggles();
  }

  // stats reports inbound video for tests and the quality indicator.
  async function stats() {
    const out = [];
    if (!pc) return out;
    (await pc.getStats()).forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "video") out.push({ framesDecoded: r.framesDecoded || 0, packetsLost: r.packetsLost || 0 });
    });
    return out;
  }

  // A guest's invite link shows a Join button: opening the link spends
  // nothing (link previews open links too); Join redeems it, once.
  async function joinAsGuest() {
    const button = el("join");
    button.disabled = true;
    say("Joining…");
    const r = await fetch(location.pathname, { method: "POST", credentials: "same-origin" });
    if (!r.ok) {
      let msg = "This invitation cannot be used.";
      try { msg = (await r.json()).error.message || msg; } catch (e) { /* not JSON */ }
      say(msg);
      return;
    }
    el("guest-join").hidden = true;
    await start();
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (!document.body.classList.contains("call")) return;
    if (location.pathname.startsWith("/call/invite/")) {
      el("guest-join").hidden = false;
      say("You have been invited to a video call about a care-home resident.");
      el("join").addEventListener("click", () => joinAsGuest().catch((e) => say("Could not join: " + e.message)));
      return;
    }
    start().catch((e) => say("Could not start the call: " + e.message));
  });

  // report summarises every RTP stream, for the quality indicator and support.
  async function report() {
    const out = [];
    if (!pc) return out;
    (await pc.getStats()).forEach((r) => {
      if (r.type === "inbound-rtp" || r.type === "outbound-rtp") {
        out.push({ type: r.type, kind: r.kind, packets: r.packetsReceived || r.packetsSent || 0, frames: r.framesDecoded || r.framesEncoded || 0, codec: r.codecId || "" });
      }
    });
    return { state: pc.connectionState, transceivers: pc.getTransceivers().map((t) => t.mid + ":" + t.direction + ":" + t.currentDirection), streams: out };
  }

  // selectedPair says how the media flows: the local candidate's type and,
  // for a relay, the transport to the TURN server ("relay/tcp", "host/udp").
  async function selectedPair() {
    if (!pc) return "";
    const stats = await pc.getStats();
    const describe = (pair) => {
      const local = pair && stats.get(pair.localCandidateId);
      if (!local) return "";
      return local.candidateType + "/" + (local.candidateType === "relay" ? (local.relayProtocol || local.protocol) : local.protocol);
    };
    // The transport names the pair in use; failing that (before the first
    // report names it), a nominated pair that succeeded.
    let out = "";
    stats.forEach((r) => {
      if (r.type === "transport" && r.selectedCandidatePairId) out = out || describe(stats.get(r.selectedCandidatePairId));
    });
    stats.forEach((r) => {
      if (!out && r.type === "candidate-pair" && r.nominated && r.state === "succeeded") out = describe(r);
    });
    return out;
  }

  // quality is the last grade of what this side receives (null before
  // the call is connected), for tests and support.
  function quality() { return qualityNow; }

  return { stats, report, start, camera, finish, adapt, takePhoto, continueByPhone, setPhone, trouble, restartICE, selectedPair, quality };
})();
window.NightcallCall = Call;
