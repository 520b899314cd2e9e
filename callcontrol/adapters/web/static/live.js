// The live calls page (pages/live.py): the table kept current by server-sent events, and the
// in-page listen player: Web Audio fed by a WebSocket of signed 16-bit 8 kHz mono audio.
// Nothing is ever sent from this page into a call. window.ccListen is the player (its state,
// its AnalyserNode) for whoever wants to look, the tests among them.
"use strict";
(() => {
  const table = document.getElementById("live-calls");
  if (!table) return;
  const mayAct = table.dataset.mayAct === "yes";
  const csrf = table.dataset.csrf;
  const base = table.dataset.base;
  const tbody = table.tBodies[0];
  const $ = (id) => document.getElementById(id);

  // --- the table ---

  function td(tr, text, cls) {
    const cell = document.createElement("td");
    cell.textContent = text;
    if (cls) cell.className = cls;
    tr.appendChild(cell);
    return cell;
  }

  function el(tag, props) {
    return Object.assign(document.createElement(tag), props);
  }

  function newRow(call) {
    const tr = el("tr");
    tr.dataset.call = String(call.call_id);
    td(tr, String(call.call_id), "num");
    td(tr, call.cell);
    td(tr, call.prisoner);
    const number = td(tr, call.number);
    if (call.privileged) number.append(" ", el("strong", { textContent: "(privileged)" }));
    td(tr, call.answered_at);
    td(tr, call.seconds_left === null ? "" : String(call.seconds_left), "num");
    td(tr, call.recorded ? "yes" : "no");
    const acts = td(tr, "");
    const form = el("form", { method: "post", action: `${base}/${call.call_id}/cut` });
    form.className = "cut";
    form.append(
      el("input", { type: "hidden", name: "csrf_token", value: csrf }),
      el("input", { name: "reason", placeholder: "reason", required: true, maxLength: 2000,
                    disabled: !mayAct }),
      el("button", { type: "submit", className: "danger", textContent: "Cut", disabled: !mayAct }),
    );
    form.elements.reason.setAttribute("aria-label", `Reason to cut call ${call.call_id}`);
    const listen = el("button", { type: "button", className: "listen", textContent: "Listen",
                                  disabled: !mayAct || call.privileged });
    listen.dataset.call = String(call.call_id);
    acts.append(form, listen);
    return tr;
  }

  function render(data) {
    $("asterisk-down").hidden = data.asterisk_connected;
    // Rows of calls still live are kept as they are (with any reason being typed).
    const kept = new Map([...tbody.rows].map((tr) => [tr.dataset.call, tr]));
    tbody.replaceChildren(...data.calls.map((c) => {
      const tr = kept.get(String(c.call_id)) || newRow(c);
      tr.cells[5].textContent = c.seconds_left === null ? "" : String(c.seconds_left);
      return tr;
    }));
    $("no-calls").hidden = data.calls.length > 0;
  }

  // The seconds left count down between updates.
  setInterval(() => {
    for (const tr of tbody.rows) {
      const left = parseInt(tr.cells[5].textContent, 10);
      if (left > 0) tr.cells[5].textContent = String(left - 1);
    }
  }, 1000);

  const events = new EventSource(table.dataset.events);
  events.addEventListener("calls", (e) => render(JSON.parse(e.data)));
  events.onopen = () => { $("feed-state").textContent = "live"; };
  events.onerror = () => { $("feed-state").textContent = "reconnecting…"; };

  // --- the listen player ---

  let player = null;

  function setState(text) {
    if (player) player.state = text;
    $("listen-state").textContent = text;
  }

  function stop(why) {
    if (!player) return;
    const p = player;
    clearInterval(p.meter);
    if (p.ws && p.ws.readyState <= WebSocket.OPEN) p.ws.close();
    if (p.ctx.state !== "closed") p.ctx.close();
    setState(why);
  }

  function reasonOf(callId) {
    const row = tbody.querySelector(`tr[data-call="${CSS.escape(callId)}"]`);
    return row ? row.querySelector("input[name=reason]").value : "";
  }

  async function listen(callId) {
    stop("stopped");
    // Made in the click, so that the browser lets it play.
    const ctx = new AudioContext();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 4096;
    analyser.connect(ctx.destination);
    player = { callId, ctx, analyser, ws: null, state: "", frames: 0, meter: 0 };
    window.ccListen = player;
    $("player").hidden = false;
    $("listen-call").textContent = callId;
    setState("asking…");
    const body = new FormData();
    body.append("csrf_token", csrf);
    body.append("reason", reasonOf(callId));
    let answer;
    try {
      const reply = await fetch(`${base}/${callId}/listen`, { method: "POST", body,
                                                           credentials: "same-origin" });
      answer = reply.headers.get("Content-Type")?.startsWith("application/json")
        ? await reply.json() : { error: `refused (${reply.status})` };
      if (!reply.ok) throw new Error(answer.error || `refused (${reply.status})`);
    } catch (e) {
      stop(`not started: ${e.message}`);
      return;
    }
    const here = player;
    const address = new URL(answer.stream, location.href);
    address.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(address);
    ws.binaryType = "arraybuffer";
    here.ws = ws;
    let rate = 8000;
    let playAt = 0;
    setState("connecting");
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") {
        const message = JSON.parse(ev.data);
        if (message.rate) rate = message.rate;
        if (message.state === "ended") stop(`ended: ${message.reason}`);
        return;
      }
      const pcm = new Int16Array(ev.data);
      const buffer = ctx.createBuffer(1, pcm.length, rate);
      const samples = buffer.getChannelData(0);
      for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 32768;
      const source = ctx.createBufferSource();
      source.buffer = buffer;
      source.connect(analyser);
      const now = ctx.currentTime;
      // A small cushion against jitter; after a stall, catch up rather than lag behind.
      if (playAt < now + 0.02 || playAt > now + 1.0) playAt = now + 0.15;
      source.start(playAt);
      playAt += buffer.duration;
      here.frames += 1;
      if (here.state !== "listening") setState("listening");
    };
    ws.onclose = () => {
      if (player === here && !here.state.startsWith("ended")) stop("ended: the connection closed");
    };
    const wave = new Float32Array(analyser.fftSize);
    here.meter = setInterval(() => {
      analyser.getFloatTimeDomainData(wave);
      const rms = Math.sqrt(wave.reduce((sum, x) => sum + x * x, 0) / wave.length);
      $("listen-level").style.width = `${Math.min(100, Math.round(rms * 300))}%`;
    }, 200);
  }

  tbody.addEventListener("click", (ev) => {
    const button = ev.target.closest("button.listen");
    if (button && !button.disabled) listen(button.dataset.call);
  });
  $("listen-stop").addEventListener("click", () => stop("stopped"));
  window.addEventListener("pagehide", () => stop("stopped"));
})();
