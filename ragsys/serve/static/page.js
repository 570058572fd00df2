"use strict";
// The ragsys page: streams an answer, opens cited pages, sends feedback.
// Everything from the server is inserted as text (textContent / append of strings),
// never parsed as HTML, so an answer or a document cannot inject markup or script.
(() => {
  const $ = (id) => document.getElementById(id);
  const JSON_HEADERS = { "Content-Type": "application/json" };
  const state = { answer: null, viewer: null, imageUrl: null, openSeq: 0, opener: null,
                  token: sessionStorage.getItem("ragsys-token") || "" };

  async function api(path, options = {}) {
    const headers = Object.assign({}, options.headers || {});
    if (state.token) headers.Authorization = "Bearer " + state.token;
    const response = await fetch(path, Object.assign({}, options, { headers }));
    if (response.status === 401) $("token-form").hidden = false;
    return response;
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      return body.detail || response.statusText;
    } catch {
      return `${response.status} ${response.statusText}`;
    }
  }

  function setStatus(el, text, isError = false) {
    el.textContent = text;
    el.classList.toggle("error", isError);
  }

  const docName = (doc) => doc.split(/[\\/]/).pop() || doc;
  const pages = (c) => (c.page_start === c.page_end ? `p. ${c.page_start}` : `pp. ${c.page_start}-${c.page_end}`);
  const snippet = (text) => { const t = text.replace(/\s+/g, " ").trim(); return t.length > 220 ? t.slice(0, 220) + "…" : t; };

  // ---- asking: POST /ask/stream answers in NDJSON lines (text pieces, then "done")
  async function ask(question) {
    state.answer = null;
    const section = $("answer-section");
    section.hidden = false;
    delete section.dataset.state;
    $("answer").textContent = "";
    $("answer").setAttribute("aria-busy", "true");
    $("passages").textContent = "";
    resetFeedback(true);
    $("ask-button").disabled = true;
    setStatus($("status"), "Searching and writing an answer…");
    try {
      const body = JSON.stringify({ question });
      const response = await api("/ask/stream", { method: "POST", headers: JSON_HEADERS, body });
      if (!response.ok) return setStatus($("status"), await errorText(response), true);
      await readEvents(response);
    } catch (e) {
      setStatus($("status"), "The request failed: " + e.message, true);
    } finally {
      $("ask-button").disabled = false;
      $("answer").setAttribute("aria-busy", "false");
    }
  }

  async function readEvents(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.trim()) handleEvent(JSON.parse(line));
      }
    }
  }

  function handleEvent(event) {
    if (event.event === "text") $("answer").append(event.text);
    else if (event.event === "done") showAnswer(event.result);
    else if (event.event === "error") setStatus($("status"), event.detail, true);
  }

  function showAnswer(result) {
    state.answer = result;
    renderAnswerText(result);
    renderPassages(result);
    resetFeedback(false);
    const summary = `${result.citations.length} citation(s), ${result.contexts.length} passage(s)`;
    setStatus($("status"), result.abstained ? `The model abstained (${summary}).` : `Answer ready: ${summary}.`);
    $("answer-section").dataset.state = "done";
  }

  // [n] markers become buttons that open passage n; the rest stays plain text.
  function renderAnswerText(result) {
    const box = $("answer");
    box.textContent = "";
    const byN = new Map(result.contexts.map((c) => [c.n, c]));
    for (const part of result.answer.split(/(\[\d+\])/)) {
      const m = /^\[(\d+)\]$/.exec(part);
      const ctx = m && byN.get(Number(m[1]));
      if (!ctx) { box.append(part); continue; }
      const b = document.createElement("button");
      b.type = "button";
      b.className = "cite";
      b.textContent = part;
      b.setAttribute("aria-label", `Open passage ${ctx.n}: ${docName(ctx.doc)}, ${pages(ctx)}`);
      b.addEventListener("click", () => openPassage(ctx));
      box.append(b);
    }
  }

  function renderPassages(result) {
    const cited = new Set(result.citations.map((c) => c.n));
    const list = $("passages");
    list.textContent = "";
    for (const ctx of result.contexts) {
      const li = document.createElement("li");
      li.id = "passage-" + ctx.n;
      const b = document.createElement("button");
      b.type = "button";
      b.className = "open-passage";
      b.textContent = `[${ctx.n}] ${docName(ctx.doc)}, ${pages(ctx)}`;
      b.addEventListener("click", () => openPassage(ctx));
      li.append(b);
      if (cited.has(ctx.n)) {
        li.classList.add("cited");
        const tag = document.createElement("strong");
        tag.textContent = " cited";
        li.append(tag);
      }
      const p = document.createElement("p");
      p.className = "snippet";
      p.textContent = snippet(ctx.text);
      li.append(p);
      list.append(li);
    }
  }

  // ---- the page viewer: text from the index, the PNG render when the source is a PDF
  async function openPassage(ctx) {
    for (const li of document.querySelectorAll("#passages li.current")) li.classList.remove("current");
    const li = $("passage-" + ctx.n);
    if (li) li.classList.add("current");
    state.opener = document.activeElement;
    await openPage(ctx.doc, ctx.page_start, ctx.text);
  }

  async function openPage(doc, page, passage) {
    const seq = ++state.openSeq;  // a later click wins over a slower earlier one
    const base = "/documents/" + encodeURIComponent(doc) + "/pages/" + page;
    const response = await api(base);
    if (seq !== state.openSeq) return;
    if (!response.ok) return setStatus($("status"), await errorText(response), true);
    const info = await response.json();
    state.viewer = { doc, page: info.page, pages: info.pages };
    const viewer = $("viewer");
    delete viewer.dataset.state;
    viewer.hidden = false;
    $("viewer-heading").textContent = `${info.name}, page ${info.page} of ${info.pages}`;
    showText(info.text, passage);
    $("prev-page").disabled = info.page <= 1;
    $("next-page").disabled = info.page >= info.pages;
    await showImage(info.has_image ? base + ".png" : null, info, seq);
    if (seq !== state.openSeq) return;
    viewer.dataset.state = "open";
    $("viewer-heading").focus();
  }

  function showText(text, passage) {
    const pre = $("page-text");
    pre.textContent = "";
    const wanted = (passage || "").trim();
    const at = wanted ? text.indexOf(wanted.slice(0, 40)) : -1;
    if (at < 0) { pre.textContent = text; return; }
    const end = Math.min(text.length, at + wanted.length);
    const mark = document.createElement("mark");
    mark.textContent = text.slice(at, end);
    pre.append(text.slice(0, at), mark, text.slice(end));
  }

  async function showImage(url, info, seq) {
    const img = $("page-image");
    if (state.imageUrl) URL.revokeObjectURL(state.imageUrl);
    state.imageUrl = null;
    img.hidden = true;
    img.removeAttribute("src");
    if (!url) return;
    const response = await api(url);
    if (seq !== state.openSeq) return;
    if (!response.ok) return setStatus($("status"), await errorText(response), true);
    state.imageUrl = URL.createObjectURL(await response.blob());
    img.alt = `Page ${info.page} of ${info.name}, rendered`;
    await new Promise((resolve) => { img.onload = img.onerror = resolve; img.src = state.imageUrl; });
    img.hidden = false;
  }

  // ---- feedback: thumbs up sends at once; thumbs down opens the edit box (the revision)
  function resetFeedback(disabled) {
    for (const id of ["thumbs-up", "thumbs-down"]) {
      $(id).disabled = disabled;
      $(id).setAttribute("aria-pressed", "false");
    }
    $("revision-form").hidden = true;
    delete $("answer-section").dataset.feedback;
    setStatus($("feedback-status"), "");
  }

  async function sendFeedback(fields) {
    const body = JSON.stringify(Object.assign({ answer_id: state.answer.answer_id }, fields));
    const response = await api("/feedback", { method: "POST", headers: JSON_HEADERS, body });
    if (!response.ok) {
      setStatus($("feedback-status"), "Feedback not saved: " + (await errorText(response)), true);
      return;
    }
    const ack = await response.json();
    $("thumbs-up").disabled = $("thumbs-down").disabled = true;
    $("revision-form").hidden = true;
    setStatus($("feedback-status"), `Thank you: feedback saved (${ack.rating}, id ${ack.id.slice(0, 8)}).`);
    $("answer-section").dataset.feedback = ack.id;
    $("feedback-status").focus();
  }

  function wire() {
    $("question").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        $("ask-form").requestSubmit();
      }
    });
    $("ask-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const question = $("question").value.trim();
      if (question) ask(question);
    });
    $("token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      state.token = $("token").value.trim();
      sessionStorage.setItem("ragsys-token", state.token);
      $("token-form").hidden = true;
      setStatus($("status"), "Token set for this tab; ask again.");
      $("question").focus();
    });
    $("thumbs-up").addEventListener("click", () => {
      $("thumbs-up").setAttribute("aria-pressed", "true");
      sendFeedback({ rating: "up" });
    });
    $("thumbs-down").addEventListener("click", () => {
      $("thumbs-down").setAttribute("aria-pressed", "true");
      $("revision-form").hidden = false;
      $("revision").value = state.answer.answer;
      $("revision").focus();
    });
    $("revision-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const fields = { rating: "down" };
      const revised = $("revision").value.trim();
      if (revised && revised !== state.answer.answer.trim()) fields.revision = revised;
      const comment = $("comment").value.trim();
      if (comment) fields.comment = comment;
      sendFeedback(fields);
    });
    $("cancel-feedback").addEventListener("click", () => {
      $("revision-form").hidden = true;
      $("thumbs-down").setAttribute("aria-pressed", "false");
      $("thumbs-down").focus();
    });
    $("prev-page").addEventListener("click", () => openPage(state.viewer.doc, state.viewer.page - 1, null));
    $("next-page").addEventListener("click", () => openPage(state.viewer.doc, state.viewer.page + 1, null));
    $("close-viewer").addEventListener("click", () => {
      $("viewer").hidden = true;
      if (state.opener && document.contains(state.opener)) state.opener.focus();
    });
  }

  async function showMeta() {
    try {
      const health = await (await fetch("/health")).json();
      $("meta").textContent = `pipeline ${health.pipeline} · ${health.documents} document(s)`;
    } catch {
      // the page still works without the header line
    }
  }

  wire();
  showMeta();
})();
