/* qualflow review: keyboard decisions, code picker, selection -> exact character offsets.
   Served from the package (no CDN). Offsets are Unicode code points into the stored source text,
   like Python's str indices; every transcript span carries data-start/data-end. */
"use strict";
(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";
  const statusEl = document.getElementById("status");
  const picker = document.getElementById("picker");
  const transcript = document.getElementById("transcript");

  function say(msg, kind) {
    if (!statusEl) return;
    statusEl.textContent = msg;
    statusEl.className = "status" + (kind ? " " + kind : "");
  }

  async function post(url, body) {
    const r = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try { data = await r.json(); } catch (e) { data = {}; }
    return { ok: r.ok, status: r.status, data: data };
  }

  /* ---------------------------------------------------------------- code picker */
  function pickCode() {
    return new Promise(function (resolve) {
      if (!picker) { resolve(null); return; }
      const filter = document.getElementById("picker-filter");
      const buttons = Array.from(picker.querySelectorAll(".code-choice"));
      let done = false;
      filter.value = "";
      buttons.forEach(function (b) { b.parentElement.hidden = false; });
      function visible() { return buttons.filter(function (b) { return !b.parentElement.hidden; }); }
      function finish(value) {
        if (done) return;
        done = true;
        picker.removeEventListener("click", onClick);
        filter.removeEventListener("input", onInput);
        filter.removeEventListener("keydown", onKey);
        picker.removeEventListener("close", onClose);
        if (picker.open) picker.close();
        resolve(value);
      }
      function onClick(e) {
        const b = e.target.closest(".code-choice");
        if (b) finish(b.dataset.code);
      }
      function onInput() {
        const q = filter.value.trim().toLowerCase();
        buttons.forEach(function (b) {
          const hay = (b.dataset.code + " " + (b.title || "")).toLowerCase();
          b.parentElement.hidden = q !== "" && hay.indexOf(q) < 0;
        });
      }
      function onKey(e) {
        if (e.key === "Enter") {
          e.preventDefault();
          const first = visible()[0];
          if (first) finish(first.dataset.code);
        }
      }
      function onClose() { finish(null); }
      picker.addEventListener("click", onClick);
      filter.addEventListener("input", onInput);
      filter.addEventListener("keydown", onKey);
      picker.addEventListener("close", onClose);
      picker.showModal();
      filter.focus();
    });
  }

  /* ---------------------------------------------------------------- suggestions (queue and transcript) */
  const items = function () { return Array.from(document.querySelectorAll("#items .item")); };
  let current = 0;
  const undoStack = [];

  function highlight(item, scroll) {
    if (!transcript) return;
    transcript.querySelectorAll(".hl").forEach(function (s) { s.classList.remove("hl"); });
    if (!item || item.dataset.start === undefined) return;
    const a = Number(item.dataset.start), b = Number(item.dataset.end);
    let first = null;
    transcript.querySelectorAll("span[data-start]").forEach(function (s) {
      if (Number(s.dataset.start) < b && Number(s.dataset.end) > a) {
        s.classList.add("hl");
        if (!first) first = s;
      }
    });
    if (first && scroll !== false) first.scrollIntoView({ block: "nearest" });
  }

  function select(i, scroll) {
    const all = items();
    if (!all.length) return;
    current = Math.max(0, Math.min(i, all.length - 1));
    all.forEach(function (el, j) { el.classList.toggle("current", j === current); });
    if (scroll !== false) all[current].scrollIntoView({ block: "nearest" });
    highlight(all[current], scroll);
  }

  function nextPending() {
    const all = items();
    for (let j = current + 1; j < all.length; j++) {
      if (!all[j].dataset.state || all[j].dataset.state === "pending") { select(j); return; }
    }
    select(current + 1);
  }

  async function act(item, action) {
    if (!item) return;
    const body = { action: action, revision: Number(item.dataset.rev) };
    if (action === "recode") {
      const code = await pickCode();
      if (!code) { say("recode cancelled"); return; }
      body.new_code = code;
    }
    const res = await post("/api/suggestions/" + item.dataset.id + "/decide", body);
    const stateEl = item.querySelector(".state");
    if (res.data.revision !== undefined) item.dataset.rev = res.data.revision;
    if (res.data.state) {
      item.dataset.state = res.data.state;
      item.classList.remove("st-pending", "st-accepted", "st-rejected", "st-recoded");
      item.classList.add("st-" + res.data.state);
      if (stateEl) stateEl.textContent = res.data.state === "pending" ? "" : res.data.state + (body.new_code ? " → " + body.new_code : "");
    }
    if (res.ok) {
      const what = action === "undo" ? "undone" : res.data.state;
      say("#" + item.dataset.id + " " + item.dataset.code + ": " + what + (body.new_code ? " → " + body.new_code : ""), "ok");
      if (action !== "undo") { undoStack.push(item); nextPending(); }
    } else {
      say(res.data.message || res.data.error || ("error " + res.status), "error");
    }
  }

  function undoLast() {
    const item = undoStack.pop() || items()[current];
    if (item) { select(items().indexOf(item)); act(item, "undo"); }
  }

  document.addEventListener("click", function (e) {
    const btn = e.target.closest("#items .item button[data-act]");
    if (btn) {
      const item = btn.closest(".item");
      select(items().indexOf(item));
      if (btn.dataset.act === "undo") act(item, "undo"); else act(item, btn.dataset.act);
      return;
    }
    const it = e.target.closest("#items .item");
    if (it) select(items().indexOf(it));
  });

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) return;
    if (picker && picker.open) return;
    if (!items().length) return;
    const item = items()[current];
    const keys = { j: function () { select(current + 1); }, k: function () { select(current - 1); },
      a: function () { act(item, "accept"); }, r: function () { act(item, "reject"); },
      c: function () { act(item, "recode"); }, u: undoLast };
    const f = keys[e.key];
    if (f) { e.preventDefault(); f(); }
  });

  if (items().length) select(0, false);

  /* ---------------------------------------------------------------- selection -> offsets */
  function codePoints(s) { return Array.from(s).length; }

  function pointOffset(spans, node, offset, isEnd) {
    if (node.nodeType === Node.TEXT_NODE) {
      const span = node.parentElement && node.parentElement.closest("span[data-start]");
      if (span && transcript.contains(span)) {
        return Number(span.dataset.start) + codePoints(node.data.slice(0, offset));
      }
    }
    const r = document.createRange();
    r.setStart(node, offset);
    r.collapse(true);
    if (isEnd) {
      let best = null;  /* last span that ends at or before the point */
      spans.forEach(function (sp) { if (r.comparePoint(sp, sp.childNodes.length) <= 0) best = sp; });
      return best ? Number(best.dataset.end) : null;
    }
    for (const sp of spans) {  /* first span that starts at or after the point */
      if (r.comparePoint(sp, 0) >= 0) return Number(sp.dataset.start);
    }
    return null;
  }

  function selectionOffsets() {
    const sel = window.getSelection();
    if (!sel || sel.rangeCount === 0 || sel.isCollapsed) return null;
    const range = sel.getRangeAt(0);
    if (!transcript.contains(range.commonAncestorContainer)) return null;
    const spans = Array.from(transcript.querySelectorAll("span[data-start]"));
    const start = pointOffset(spans, range.startContainer, range.startOffset, false);
    const end = pointOffset(spans, range.endContainer, range.endOffset, true);
    if (start === null || end === null || end <= start) return null;
    return { start: start, end: end, text: sel.toString() };
  }

  if (transcript) {
    const box = document.getElementById("selbox");
    let chosen = null;
    transcript.addEventListener("mouseup", function () {
      const off = selectionOffsets();
      if (!off) return;
      chosen = off;
      document.getElementById("sel-range").textContent = off.start + "–" + off.end;
      document.getElementById("sel-text").textContent = off.text;
      box.dataset.start = off.start;
      box.dataset.end = off.end;
      box.hidden = false;
    });
    transcript.addEventListener("click", function (e) {
      const sp = e.target.closest("span[data-suggestions]");
      if (!sp || !window.getSelection().isCollapsed) return;
      const id = sp.dataset.suggestions.split(" ")[0];
      const idx = items().findIndex(function (el) { return el.dataset.id === id; });
      if (idx >= 0) select(idx);
    });
    document.getElementById("sel-cancel").addEventListener("click", function () { box.hidden = true; chosen = null; });
    document.getElementById("sel-code").addEventListener("click", async function () {
      if (!chosen) return;
      const code = await pickCode();
      if (!code) return;
      const memo = document.getElementById("sel-memo").value;
      const res = await post("/api/codings", {
        source: transcript.dataset.source, start: chosen.start, end: chosen.end, code: code, memo: memo || null,
      });
      if (res.ok) { say("coded " + chosen.start + "–" + chosen.end + " as " + code, "ok"); window.location.reload(); }
      else say(res.data.error || ("error " + res.status), "error");
    });
    document.querySelectorAll("button[data-memo]").forEach(function (b) {
      b.addEventListener("click", async function () {
        const ta = b.parentElement.querySelector("textarea.memo");
        const res = await post("/api/codings/" + b.dataset.memo + "/memo", { memo: ta.value });
        say(res.ok ? "memo saved" : (res.data.error || "error"), res.ok ? "ok" : "error");
      });
    });
    document.querySelectorAll("button[data-retract]").forEach(function (b) {
      b.addEventListener("click", async function () {
        const res = await post("/api/codings/" + b.dataset.retract + "/retract", {});
        if (res.ok) window.location.reload(); else say(res.data.error || "error", "error");
      });
    });
    document.querySelectorAll(".coding[data-start]").forEach(function (li) {
      li.addEventListener("mouseenter", function () { highlight(li); });
    });
  }
})();
