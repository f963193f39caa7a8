/* TrustFrame review page: upload files one at a time to POST v1/audit and show each Verdict
 * (schema trustframe.verdict/1) in plain language. No dependencies, no build step.
 * Everything that comes from a file or the server is inserted as text, never as HTML.
 * One file (about 750 lines) on purpose: the page loads it with one <script> tag and no build
 * step, and its parts (upload queue, card, blocks) share the small helpers at the top. */
"use strict";

(() => {
  const AUDIT_URL = "v1/audit";            // relative: works when the app is served under a prefix
  const HEATMAP_URL = "v1/detector/heatmap";
  const KEY_STORE = "trustframe.apiKey";   // sessionStorage: this tab only
  const THUMB_FRAMES = 4;
  const SEEK_TIMEOUT_MS = 15000;  // per thumbnail; a frame not ready by then is left out
  const SVG_NS = "http://www.w3.org/2000/svg";

  const LABELS = {
    "ai-generated": {
      title: "AI-generated",
      text: "Content Credentials from a trusted signer say this was made with generative AI.",
    },
    "likely-ai-generated": {
      title: "Likely AI-generated",
      text: "There are signs this was made with AI (the TrustFrame watermark, credentials from a signer " +
        "that is not on the trust list, or the detector), but no trusted credentials confirm it.",
    },
    "tampered": {
      title: "Tampered",
      text: "This file carries Content Credentials, but it was changed after it was signed, so they no " +
        "longer match its content. Do not rely on what they say about it.",
    },
    "no-evidence": {
      title: "No evidence",
      text: "Nothing we checked says this was made with AI. That is not proof that it is authentic: " +
        "many AI-made files carry no marks at all.",
    },
    "error": {
      title: "Could not check",
      text: "The file could not be read as an image or video, so nothing could be checked.",
    },
  };

  const SOURCE_TYPES = {
    trainedAlgorithmicMedia: "made by a generative AI model",
    compositeWithTrainedAlgorithmicMedia: "edited with generative AI (partly AI-made)",
    algorithmicMedia: "made by an algorithm",
    compositeSynthetic: "a composite that includes synthetic parts",
    digitalCapture: "captured by a camera",
    negativeFilm: "scanned from negative film",
    positiveFilm: "scanned from slide film",
    print: "scanned from a print",
    humanEdits: "edited by a person",
    composite: "a composite of other media",
    minorHumanEdits: "lightly edited by a person",
    screenCapture: "a screen capture",
    virtualRecording: "recorded in a virtual environment",
    digitalArt: "digital art made by a person",
    dataDrivenMedia: "made from data (e.g. a chart)",
  };

  const ACTIONS = {
    "c2pa.created": "created",
    "c2pa.edited": "edited",
    "c2pa.opened": "opened an existing file",
    "c2pa.placed": "placed another file into it",
    "c2pa.converted": "converted to another format",
    "c2pa.transcoded": "re-encoded",
    "c2pa.resized": "resized",
    "c2pa.cropped": "cropped",
    "c2pa.color_adjustments": "colours adjusted",
    "c2pa.filtered": "filtered",
    "c2pa.drawing": "drawn on",
    "c2pa.published": "published",
    "c2pa.watermarked": "watermarked",
    "c2pa.removed": "something removed",
    "c2pa.repackaged": "repackaged",
  };

  const FAILURES = {
    "assertion.dataHash.mismatch": "the image or video data changed after signing",
    "assertion.bmffHash.mismatch": "the video data changed after signing",
    "assertion.boxesHash.mismatch": "the file's data changed after signing",
    "assertion.hashedURI.mismatch": "part of the credentials changed after signing",
    "claimSignature.mismatch": "the signature does not match the credentials",
    "claimSignature.missing": "the credentials are not signed",
    "signingCredential.untrusted": "the signer is not on the trust list",
    "signingCredential.expired": "the signer's certificate had expired",
    "signingCredential.revoked": "the signer's certificate was revoked",
    "signingCredential.invalid": "the signer's certificate is not valid",
    "manifest.malformed": "the credentials are damaged",
    "claim.malformed": "the credentials are damaged",
  };

  const STATES = {
    trusted: "Trusted: the signature is valid and the signer is on the trust list",
    valid: "Valid, but the signer is not on the trust list",
    invalid: "Fails validation: the file or its credentials changed after signing",
  };

  const DETECTOR_LABELS = {
    "likely-ai": "Looks AI-generated",
    "uncertain": "Uncertain",
    "likely-real": "No sign of AI generation",
  };

  // ---------------------------------------------------------------------------------------------
  // Small helpers

  /** An element with attributes (`class`, `text`, on* handlers, others as attributes) and children. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function svg(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function setAttrs(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") el.textContent = String(v);
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k === "className" ? "class" : k, v === true ? "" : String(v));
    }
  }

  function append(el, children) {
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  let uid = 0;
  const newId = (p) => `${p}-${++uid}`;

  function sentence(s) {
    const t = String(s).trim();
    if (!t) return t;
    // Capitalise a plain first word ("no watermark" -> "No watermark"), never a file name.
    const word = t.split(/[\s:,]/)[0];
    const first = /^[a-z][a-z-]*$/.test(word) ? t[0].toUpperCase() + t.slice(1) : t;
    return /[.!?]$/.test(first) ? first : `${first}.`;
  }

  const SUPERSCRIPT = { "-": "\u207b", "0": "\u2070", "1": "\u00b9", "2": "\u00b2", "3": "\u00b3",
    "4": "\u2074", "5": "\u2075", "6": "\u2076", "7": "\u2077", "8": "\u2078", "9": "\u2079" };

  function formatP(p) {
    if (typeof p !== "number" || !isFinite(p)) return "unknown";
    if (p === 0) return "0";
    if (p >= 0.001) return String(Number(p.toPrecision(2)));
    const [m, e] = p.toExponential(1).split("e");
    const exp = String(Number(e)).replace(/./g, (ch) => SUPERSCRIPT[ch] || ch);
    return `${m} \u00d7 10${exp}`;
  }

  function formatBytes(n) {
    if (n < 1024) return `${n} bytes`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
  }

  const fmt2 = (x) => (typeof x === "number" ? x.toFixed(2) : "?");
  const seconds = (t) => `${t < 10 ? t.toFixed(2) : t.toFixed(1)} s`;

  function extension(name) {
    const i = name.lastIndexOf(".");
    return i < 0 ? "" : name.slice(i + 1).toLowerCase();
  }

  function kindOf(file) {
    const ext = extension(file.name);
    if (file.type.startsWith("video/") || ["mp4", "mov", "m4v", "webm"].includes(ext)) return "video";
    if (file.type.startsWith("image/") || ["png", "jpg", "jpeg", "webp", "gif"].includes(ext)) return "image";
    return "other";
  }

  // ---------------------------------------------------------------------------------------------
  // The API key: asked for on the first 401, kept in sessionStorage for this tab

  const keyForm = document.getElementById("key-form");
  const keyInput = document.getElementById("api-key");
  const keyError = document.getElementById("key-error");
  const keySaved = document.getElementById("key-saved");
  let keyWaiters = [];
  let memoryKey = null;  // used only when sessionStorage is unavailable

  function storedKey() {
    try { return sessionStorage.getItem(KEY_STORE); } catch { return null; }
  }

  function showKeySaved() {
    keySaved.hidden = !storedKey();
  }

  /** Show the key form and resolve once the reviewer submits a key. */
  function askForKey(rejected) {
    keyError.hidden = !rejected;
    keyError.textContent = rejected ? "That key was not accepted. Check it and try again." : "";
    keyForm.hidden = false;
    keySaved.hidden = true;
    keyInput.value = "";
    keyInput.focus();
    announce("This server needs an API key. Enter it in the form to continue.");
    return new Promise((resolve) => keyWaiters.push(resolve));
  }

  keyForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const key = keyInput.value.trim();
    if (!key) return;
    try { sessionStorage.setItem(KEY_STORE, key); } catch { memoryKey = key; /* storage disabled */ }
    keyForm.hidden = true;
    keyInput.value = "";
    showKeySaved();
    document.getElementById("file-input").focus();
    const waiters = keyWaiters;
    keyWaiters = [];
    waiters.forEach((w) => w());
  });

  const currentKey = () => storedKey() || memoryKey;

  document.getElementById("forget-key").addEventListener("click", () => {
    try { sessionStorage.removeItem(KEY_STORE); } catch { /* ignore */ }
    memoryKey = null;
    showKeySaved();
    announce("The API key was forgotten.");
  });

  // ---------------------------------------------------------------------------------------------
  // Requests

  /** POST `file` as multipart field `file`; resolves {status, type, body} (never rejects). */
  function post(url, file, { responseType = "text", onProgress = null } = {}) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.responseType = responseType;
      const key = currentKey();
      if (key) xhr.setRequestHeader("X-API-Key", key);
      if (onProgress) {
        xhr.upload.addEventListener("progress", (e) => {
          if (e.lengthComputable) onProgress(e.loaded / e.total);
        });
        xhr.upload.addEventListener("load", () => onProgress(1));
      }
      xhr.addEventListener("load", () => resolve({
        status: xhr.status, type: xhr.getResponseHeader("Content-Type") || "", body: xhr.response,
      }));
      const fail = (what) => () => resolve({ status: 0, type: "", body: null, failure: what });
      xhr.addEventListener("error", fail("the server could not be reached"));
      xhr.addEventListener("abort", fail("the upload was interrupted"));
      xhr.addEventListener("timeout", fail("the server took too long to answer"));
      const form = new FormData();
      form.append("file", file, file.name);
      xhr.send(form);
    });
  }

  /** POST, asking for the API key (and retrying) while the answer is 401. */
  async function postWithKey(item, url, options) {
    for (;;) {
      const res = await post(url, item.file, options);
      if (res.status !== 401) return res;
      const hadKey = Boolean(currentKey());
      if (hadKey) {
        try { sessionStorage.removeItem(KEY_STORE); } catch { /* ignore */ }
        memoryKey = null;
      }
      setStatus(item, "waiting", "Waiting for the API key…");
      await askForKey(hadKey);
      setStatus(item, "uploading", "Uploading…", 0);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The queue: files are uploaded and audited one at a time

  const queue = [];
  let running = false;
  let total = 0;
  let finished = 0;
  const results = document.getElementById("results");
  const announcer = document.getElementById("announcer");

  function announce(text) {
    announcer.textContent = "";
    // A fresh text node after a tick, so that repeating the same message is announced again.
    setTimeout(() => { announcer.textContent = text; }, 50);
  }

  function addFiles(files) {
    const list = Array.from(files || []);
    if (!list.length) return;
    document.getElementById("empty").hidden = true;
    for (const file of list) {
      const item = createCard(file);
      queue.push(item);
      total += 1;
    }
    announce(list.length === 1 ? `Added ${list[0].name}.` : `Added ${list.length} files; checking them one at a time.`);
    pump();
  }

  async function pump() {
    if (running) return;
    running = true;
    try {
      while (queue.length) {
        const item = queue.shift();
        try {
          await processItem(item);
        } catch (err) {
          showFailure(item, `the page failed: ${err && err.message ? err.message : err}`, null);
        }
        finished += 1;
        const label = item.card.dataset.label;
        const title = LABELS[label] ? LABELS[label].title : "failed";
        announce(`${item.file.name}: ${title}. ${finished} of ${total} files done.`);
      }
    } finally {
      running = false;
      document.getElementById("clear").hidden = false;
    }
  }

  async function processItem(item) {
    setStatus(item, "uploading", "Uploading… 0 %", 0);
    const res = await postWithKey(item, AUDIT_URL, {
      onProgress: (f) => {
        if (f >= 1) setStatus(item, "checking", "Uploaded; checking the file…", null);
        else setStatus(item, "uploading", `Uploading… ${Math.round(f * 100)} %`, f);
      },
    });
    if (res.status !== 200) {
      let problem = null;
      try { problem = JSON.parse(res.body); } catch { /* not JSON */ }
      const why = res.status === 0 ? res.failure
        : (problem && (problem.detail || problem.title)) || `HTTP ${res.status}`;
      showFailure(item, res.status ? `the server answered ${res.status}: ${why}` : why, problem);
      return;
    }
    let verdict;
    try {
      verdict = JSON.parse(res.body);
    } catch {
      showFailure(item, "the server's answer was not JSON", null);
      return;
    }
    renderVerdict(item, verdict);
    if (verdict.detector) {
      setStatus(item, "checking", "Fetching the detector's heat map…", null);
      const hm = await postWithKey(item, HEATMAP_URL, { responseType: "blob" });
      if (hm.status === 200 && hm.type.startsWith("image/png") && hm.body) showHeatmap(item, verdict, hm.body);
      else item.heatmapSlot.remove();
    }
    setStatus(item, "done", "Done", undefined);
  }

  // ---------------------------------------------------------------------------------------------
  // Cards

  function createCard(file) {
    const nameId = newId("file");
    const status = h("p", { class: "status", id: newId("status"), text: "Waiting in line" });
    const progress = h("progress", { max: "1", "aria-label": `Progress of ${file.name}` });
    const head = h("div", { class: "card-head" },
      h("h3", { class: "file-name", id: nameId, text: file.name }),
      h("p", { class: "file-meta", text: formatBytes(file.size) }),
      h("div", { class: "status-row" }, status, progress));
    const thumbs = h("div", { class: "thumbs", role: "group", "aria-label": `Preview of ${file.name}` });
    const details = h("div", { class: "details" });
    const card = h("li", { class: "card", "data-state": "queued" },
      h("article", { "aria-labelledby": nameId }, head, h("div", { class: "card-body" }, thumbs, details)));
    results.append(card);
    const item = { file, card, head, status, progress, thumbs, details, meta: head.querySelector(".file-meta"),
      urls: [] };
    card.trustframeItem = item;
    makeThumbnails(item);
    return item;
  }

  /** value: a fraction, null for "busy" (indeterminate), undefined to hide the bar. */
  function setStatus(item, state, text, value) {
    item.card.dataset.state = state;
    item.status.textContent = text;
    item.status.classList.toggle("failed", state === "failed");
    if (value === undefined) {
      item.progress.hidden = true;
    } else {
      item.progress.hidden = false;
      if (value === null) item.progress.removeAttribute("value");
      else item.progress.value = value;
    }
  }

  function labelBlock(item, label, explanation) {
    const info = LABELS[label] || { title: label, text: "" };
    item.card.dataset.label = label;
    const block = h("div", { class: "verdict" },
      h("span", { class: `label ${label}`, text: info.title }),
      h("p", { class: "explain" }, explanation || info.text, " ",
        h("code", { class: "raw-label", title: "the label in the verdict JSON", text: `(${label})` })));
    item.head.append(block);
  }

  function block(title, ...children) {
    const id = newId("sec");
    return h("section", { class: "block", "aria-labelledby": id }, h("h4", { id, text: title }), ...children);
  }

  /** A block that takes the whole width when the details are laid out in two columns. */
  function wide(el) {
    el.classList.add("wide");
    return el;
  }

  function facts(rows) {
    const dl = h("dl", { class: "facts" });
    for (const [k, v] of rows) {
      if (v === null || v === undefined || v === "" || (Array.isArray(v) && !v.length)) continue;
      dl.append(h("dt", { text: k }), h("dd", {}, v));
    }
    return dl;
  }

  const bullets = (items) => h("ul", {}, items.map((t) => h("li", {}, t)));

  function showFailure(item, message, problem) {
    labelBlock(item, "error", `The file was not checked: ${message}.`);
    setStatus(item, "failed", "Failed", undefined);
    if (problem) item.details.append(wide(jsonBlock(item, problem, "Raw JSON (error)")));
  }

  function renderVerdict(item, v) {
    const label = LABELS[v.label] ? v.label : "error";
    labelBlock(item, label);
    const meta = [formatBytes(item.file.size)];
    if (v.media_type) meta.push(v.media_type);
    item.meta.textContent = meta.join(" · ");

    const d = item.details;
    if (v.error) {
      d.append(wide(block("What went wrong", facts([
        ["Problem", sentence(v.error.message)], ["Code", h("code", { text: v.error.code })]]))));
    }
    if (v.reasons && v.reasons.length) {
      d.append(wide(block("Why", h("ul", { class: "reasons" }, v.reasons.map((r) => h("li", { text: sentence(r) }))))));
    }
    if (label !== "error" || v.provenance) d.append(credentialsBlock(v));
    if (label !== "error" || v.watermark) {
      const wm = watermarkBlock(v.watermark);
      d.append(v.recovered_provenance ? wide(wm) : wm);  // below the side-by-side credentials
    }
    if (v.detector) d.append(wide(detectorBlock(item, v.detector)));
    d.append(wide(jsonBlock(item, v, "Raw JSON (verdict)")));
  }

  // --- Content Credentials

  function credentialsBlock(v) {
    const p = v.provenance;
    const rp = v.recovered_provenance;
    const sec = block("Content Credentials (C2PA)");
    if (!p || !p.present) {
      sec.append(h("p", { text: "No Content Credentials in this file." }));
      return sec;
    }
    if (rp) {
      wide(sec);
      sec.append(h("div", { class: "altered", role: "note" },
        h("strong", { text: "This file was altered after signing." }),
        h("p", { text: "Its own credentials no longer match its content, but its invisible watermark " +
          "points to the original credentials, stored on this server when it was signed. Compare the two: " +
          "\u201cOriginal\u201d describes the file as it was when it was signed." })));
      sec.append(h("div", { class: "compare" },
        h("section", { class: "in-file" }, h("h5", { text: "In this file (fails validation)" }), provenanceFacts(p)),
        h("section", { class: "recovered" }, h("h5", { text: "Original, recovered through the watermark" }),
          provenanceFacts(rp))));
      return sec;
    }
    if (p.recovered) {
      sec.append(h("p", { class: "recovered-note", text: "Recovered through the watermark: this file carries " +
        "no credentials of its own (they were removed), but its invisible watermark led to these, stored on " +
        "this server when the original was signed." }));
    }
    sec.append(provenanceFacts(p));
    return sec;
  }

  function provenanceFacts(p) {
    let state;
    if (p.state) state = h("span", { class: `state ${p.state}`, text: STATES[p.state] || p.state });
    else if (p.remote_url) state = "Not checked: the credentials are stored at a remote address (not fetched)";
    const failures = (p.failures || []).map((c) => [h("code", { text: c }), FAILURES[c] ? ` (${FAILURES[c]})` : ""]);
    const declares = (p.digital_source_types || []).map((t) => {
      const kind = t.split("/").pop();
      return [SOURCE_TYPES[kind] ? sentence(SOURCE_TYPES[kind]).replace(/\.$/, "") : kind, " ",
        h("span", { class: "note", text: `(${kind})` })];
    });
    const actions = (p.actions || []).map((a) => (ACTIONS[a] ? `${ACTIONS[a]} (${a})` : a));
    const ingredients = (p.ingredients || []).map((i) => {
      const bits = [i.format, i.relationship].filter(Boolean).join(", ");
      return `${i.title || "untitled"}${bits ? ` (${bits})` : ""}`;
    });
    const bindings = (p.soft_bindings || []).map((b) => h("span", { class: "mono", text: `${b.alg}: ${b.value}` }));
    let ai = null;
    if (p.ai_generated === true) ai = "Yes, it declares generative AI";
    else if (p.ai_generated === false) ai = "No";
    return facts([
      ["Trust", state],
      ["Problems", failures.length ? bullets(failures) : null],
      ["Signed by", p.signer],
      ["Issued by", p.issuer],
      ["Declares", declares.length ? bullets(declares) : "No digital source type"],
      ["Made with AI?", ai],
      ["Actions", actions.length ? bullets(actions) : null],
      ["Ingredients", ingredients.length ? bullets(ingredients) : null],
      ["Soft bindings", bindings.length ? bullets(bindings) : null],
      ["Recovered", p.recovered ? "Yes, through the watermark" : null],
      ["Manifest", p.manifest_id ? h("span", { class: "mono", text: p.manifest_id }) : null],
      ["Remote URL", p.remote_url ? h("span", { class: "mono", text: `${p.remote_url} (not fetched)` }) : null],
    ]);
  }

  // --- Watermark

  function watermarkBlock(wm) {
    const sec = block("Invisible watermark");
    if (!wm) {
      sec.append(h("p", { text: "Not checked: this server has no watermark key." }));
      return sec;
    }
    const found = wm.detected
      ? h("span", { class: "yes state", text: "Detected" })
      : h("span", { class: "state", text: "Not detected" });
    const pText = wm.detected
      ? `p = ${formatP(wm.p_value)}: the chance of this much agreement in a file without the watermark`
      : `p = ${formatP(wm.p_value)}: no more agreement than chance`;
    let payload = null;
    if (wm.detected) {
      payload = wm.payload ? h("span", { class: "mono", text: wm.payload })
        : "Could not be read with confidence";
    }
    sec.append(facts([["Watermark", found], ["p-value", pText], ["Payload", payload],
      ["Algorithm", h("span", { class: "mono", text: wm.alg })]]));
    return sec;
  }

  // --- Detector

  function detectorBlock(item, det) {
    const sec = block("AI detector");
    const frames = det.frames || [];
    const top = frames.reduce((best, f) => (!best || f.score > best.score ? f : best), null);
    sec.append(facts([
      ["Score", `${fmt2(det.score)}: calibrated probability that the file is AI-generated`],
      ["Result", h("span", { class: `state det-${det.label}`, text: DETECTOR_LABELS[det.label] || det.label })],
      ["Threshold", `Flags at ${fmt2(det.threshold)} (set for ${Math.round((det.threshold_fpr || 0) * 100)} % ` +
        "false positives on real footage)"],
      ["Model", h("span", { class: "mono", text: det.model })],
      ["Compression", det.h264_qp !== null && det.h264_qp !== undefined
        ? `H.264 quantiser ${det.h264_qp}: the score is calibrated for this compression` : null],
      ["Highest frame", top ? `frame ${top.frame} at ${seconds(top.time_s)}: ${fmt2(top.score)}` : null],
    ]));
    if (frames.length >= 2) {
      sec.append(timeline(frames, det));
      sec.append(h("details", {}, h("summary", { text: "Scores per frame (table)" }),
        h("table", { class: "frame-table" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Time" }), h("th", { scope: "col", text: "Frame" }),
            h("th", { scope: "col", text: "Score" }))),
          h("tbody", {}, frames.map((f) => h("tr", {},
            h("td", { text: seconds(f.time_s) }), h("td", { text: f.frame }), h("td", { text: fmt2(f.score) })))))));
    }
    item.heatmapSlot = h("figure", { class: "heatmap-slot" }, h("p", { class: "note", text: "Loading the heat map…" }));
    sec.append(item.heatmapSlot);
    return sec;
  }

  function timeline(frames, det) {
    const W = 600, H = 190, L = 44, R = 14, T = 12, B = 34;
    const pw = W - L - R, ph = H - T - B;
    const t0 = frames[0].time_s, t1 = frames[frames.length - 1].time_s;
    const span = t1 - t0;
    const x = (f, i) => L + (span > 0 ? (f.time_s - t0) / span : i / (frames.length - 1)) * pw;
    const y = (s) => T + (1 - Math.max(0, Math.min(1, s))) * ph;
    const titleId = newId("plot-title"), descId = newId("plot-desc");
    const top = frames.reduce((b, f) => (f.score > b.score ? f : b), frames[0]);
    const plot = svg("svg", { class: "timeline", viewBox: `0 0 ${W} ${H}`, role: "img",
      "aria-labelledby": `${titleId} ${descId}` },
    svg("title", { id: titleId, text: "Detector score per frame" }),
    svg("desc", { id: descId, text: `${frames.length} frames from ${seconds(t0)} to ${seconds(t1)}; ` +
      `highest ${fmt2(top.score)} at ${seconds(top.time_s)} (frame ${top.frame}); flags at ${fmt2(det.threshold)}.` }));
    for (const s of [0, 0.5, 1]) {
      plot.append(svg("line", { class: "grid", x1: L, x2: W - R, y1: y(s), y2: y(s) }),
        svg("text", { x: L - 6, y: y(s) + 4, "text-anchor": "end", text: String(s) }));
    }
    plot.append(svg("line", { class: "axis", x1: L, x2: L, y1: T, y2: T + ph }),
      svg("line", { class: "axis", x1: L, x2: W - R, y1: T + ph, y2: T + ph }),
      svg("line", { class: "threshold", x1: L, x2: W - R, y1: y(det.threshold), y2: y(det.threshold) }),
      svg("text", { x: W - R, y: y(det.threshold) - 4, "text-anchor": "end", text: `flags at ${fmt2(det.threshold)}` }),
      svg("text", { x: L, y: H - 14, "text-anchor": "start", text: seconds(t0) }),
      svg("text", { x: W - R, y: H - 14, "text-anchor": "end", text: seconds(t1) }),
      svg("text", { x: L + pw / 2, y: H - 2, "text-anchor": "middle", text: "time" }),
      svg("polyline", { class: "line", points: frames.map((f, i) => `${x(f, i).toFixed(1)},${y(f.score).toFixed(1)}`).join(" ") }));
    frames.forEach((f, i) => {
      plot.append(svg("circle", { class: f === top ? "dot top" : "dot", cx: x(f, i).toFixed(1), cy: y(f.score).toFixed(1),
        r: f === top ? 4.5 : 3 }, svg("title", { text: `${seconds(f.time_s)}, frame ${f.frame}: ${fmt2(f.score)}` })));
    });
    return plot;
  }

  function showHeatmap(item, verdict, blob) {
    const url = URL.createObjectURL(blob);
    item.urls.push(url);
    const det = verdict.detector;
    const where = det.top_frame !== null && det.top_frame !== undefined ? `frame ${det.top_frame}` : "the top frame";
    item.heatmapSlot.replaceChildren(
      h("img", { class: "heatmap", src: url, alt: `Detector heat map of ${where}: areas the detector finds ` +
        "AI-like are painted red, more strongly the higher the probability." }),
      h("figcaption", { class: "caption", text: `Heat map of ${where}, the highest-scoring frame: red marks ` +
        "areas that look AI-generated (clear = 0, red = 1)." }));
  }

  // --- Raw JSON

  function jsonBlock(item, data, title) {
    const text = JSON.stringify(data, null, 2);
    const url = URL.createObjectURL(new Blob([text + "\n"], { type: "application/json" }));
    item.urls.push(url);
    const base = item.file.name.replace(/\.[^.]*$/, "") || "verdict";
    return h("section", { class: "block json" },
      h("div", { class: "json-actions" },
        h("a", { class: "button", href: url, download: `${base}.verdict.json`, text: "Download JSON" })),
      h("details", {}, h("summary", { text: `View ${title}` }), h("pre", { tabindex: "0", text })));
  }

  // ---------------------------------------------------------------------------------------------
  // Thumbnails, decoded here in the browser

  function noPreview(item, why) {
    item.thumbs.replaceChildren(h("p", { class: "no-preview", text: why }));
  }

  function makeThumbnails(item) {
    const kind = kindOf(item.file);
    if (kind === "other") {
      noPreview(item, "No preview for this kind of file.");
      return;
    }
    const url = URL.createObjectURL(item.file);
    item.urls.push(url);
    if (kind === "image") {
      const img = h("img", { src: url, alt: `Preview of ${item.file.name}` });
      img.addEventListener("error", () => noPreview(item, "No preview: the browser cannot display this file."));
      item.thumbs.append(h("figure", { class: "main" }, img));
      return;
    }
    videoThumbnails(item, url);
  }

  // Resolves true once the frame at t can be drawn. "seeked" alone is not enough: a busy machine
  // may fire it before the frame is decoded (readyState below HAVE_CURRENT_DATA), and drawing then
  // gives a blank canvas.
  function seek(video, t) {
    return new Promise((resolve) => {
      const ready = () => video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA;
      const events = ["seeked", "loadeddata", "canplay"];
      const check = () => { if (!video.seeking && ready()) finish(true); };
      const finish = (ok) => {
        clearTimeout(timer);
        for (const e of events) video.removeEventListener(e, check);
        resolve(ok);
      };
      const timer = setTimeout(() => finish(!video.seeking && ready()), SEEK_TIMEOUT_MS);
      for (const e of events) video.addEventListener(e, check);
      video.currentTime = t;
    });
  }

  function videoThumbnails(item, url) {
    const video = document.createElement("video");
    video.muted = true;
    video.preload = "auto";
    video.playsInline = true;
    const fail = () => noPreview(item, "No preview: the browser cannot decode this video.");
    video.addEventListener("error", fail, { once: true });
    video.addEventListener("loadeddata", async () => {
      const w = video.videoWidth, hgt = video.videoHeight;
      if (!w || !hgt) { fail(); return; }
      const d = isFinite(video.duration) && video.duration > 0 ? video.duration : 0;
      const times = d ? Array.from({ length: THUMB_FRAMES }, (_, i) => (d * (i + 0.5)) / THUMB_FRAMES) : [0];
      const cw = 240, ch = Math.max(1, Math.round((cw * hgt) / w));
      const note = h("p", { class: "caption", text: `${seconds(d)} video, ${w}×${hgt}` });
      item.thumbs.replaceChildren(note);
      let drawn = 0;
      for (const t of times) {
        if (!(await seek(video, t))) continue;  // never a blank frame: skip one the browser did not decode
        const canvas = h("canvas", { width: cw, height: ch, role: "img", "aria-label": `Frame at ${seconds(t)}` });
        canvas.getContext("2d").drawImage(video, 0, 0, cw, ch);
        item.thumbs.insertBefore(h("figure", { class: "frame" }, canvas, h("figcaption", { text: seconds(t) })), note);
        drawn += 1;
      }
      if (!drawn) note.textContent += " (no frame could be decoded for a preview)";
      video.removeAttribute("src");
      video.load();
    }, { once: true });
    video.src = url;
  }

  // ---------------------------------------------------------------------------------------------
  // Picking and dropping files

  const input = document.getElementById("file-input");
  const zone = document.getElementById("drop-zone");

  input.addEventListener("change", () => {
    addFiles(input.files);
    input.value = "";
  });

  const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files");
  let depth = 0;
  zone.addEventListener("dragenter", (e) => { if (hasFiles(e)) { depth += 1; zone.classList.add("over"); } });
  zone.addEventListener("dragleave", () => { depth = Math.max(0, depth - 1); if (!depth) zone.classList.remove("over"); });
  // Dropping anywhere on the page adds the files instead of making the browser open them.
  window.addEventListener("dragover", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
  });
  window.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    zone.classList.remove("over");
    addFiles(e.dataTransfer.files);
  });

  document.getElementById("clear").addEventListener("click", () => {
    for (const card of Array.from(results.children)) {
      const state = card.dataset.state;
      if (state !== "done" && state !== "failed") continue;
      card.trustframeItem.urls.forEach((u) => URL.revokeObjectURL(u));
      card.remove();
    }
    total = queue.length + (running ? 1 : 0);
    finished = 0;
    if (!results.children.length) {
      document.getElementById("empty").hidden = false;
      document.getElementById("clear").hidden = true;
    }
    document.getElementById("results-heading").focus();
  });

  // The legend
  const legend = document.getElementById("legend");
  for (const [label, info] of Object.entries(LABELS)) {
    legend.append(h("div", {}, h("dt", {}, h("span", { class: `label ${label}`, text: info.title }), " ",
      h("code", { class: "raw-label", text: label })),
      h("dd", { text: info.text })));
  }

  showKeySaved();
})();
