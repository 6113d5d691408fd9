// digest preview: follows the server's event stream and shows each new render without a page
// reload. Everything that comes from the edition is set with textContent, never as HTML: content
// can never become script here. The email itself lives in a sandboxed frame (no scripts).
"use strict";

(function () {
  const WIDTHS = { desktop: 1024, mobile: 390 };
  const PREFS_KEY = "digest-preview";
  const byId = (id) => document.getElementById(id);

  const prefs = Object.assign(
    { tab: "email", width: "desktop", customWidth: null, scheme: "light" },
    readPrefs()
  );
  let shownEmailVersion = -1;
  let serverInstance = null;
  let pendingFrame = null;
  let frameShows = null; // the document the frame shows: "/email.html" or "/web.html"

  function readPrefs() {
    try {
      return JSON.parse(localStorage.getItem(PREFS_KEY) || "{}") || {};
    } catch (_) {
      return {};
    }
  }

  function savePrefs() {
    try {
      localStorage.setItem(PREFS_KEY, JSON.stringify(prefs));
    } catch (_) {
      /* private mode: the choice lasts for this page only */
    }
  }

  function setText(id, text) {
    byId(id).textContent = text == null ? "" : String(text);
  }

  // ---- view choices: tab, width, scheme ---------------------------------------------------

  function frameWidth() {
    if (prefs.width === "custom" && prefs.customWidth) return prefs.customWidth;
    return WIDTHS[prefs.width] || WIDTHS.desktop;
  }

  function applyPrefs() {
    for (const button of document.querySelectorAll("[data-tab]")) {
      button.setAttribute("aria-selected", String(button.dataset.tab === prefs.tab));
    }
    // The web edition shares the email's frame (and its width and scheme controls).
    byId("panel-email").hidden = prefs.tab !== "email" && prefs.tab !== "web";
    byId("panel-text").hidden = prefs.tab !== "text";
    byId("panel-source").hidden = prefs.tab !== "source";
    for (const button of document.querySelectorAll("[data-width]")) {
      button.setAttribute("aria-pressed", String(button.dataset.width === prefs.width));
    }
    byId("frame-box").style.width = frameWidth() + "px";
    for (const button of document.querySelectorAll("[data-scheme]")) {
      button.setAttribute("aria-pressed", String(button.dataset.scheme === prefs.scheme));
    }
    byId("stage").classList.toggle("dark", prefs.scheme === "dark");
    updateReadout();
  }

  function updateReadout() {
    const width = Math.round(byId("frame-box").getBoundingClientRect().width) - 2; // borders
    setText("width-readout", width > 0 ? width + " px" : "");
  }

  function choose(change) {
    const schemeChanged = change.scheme && change.scheme !== prefs.scheme;
    const framed = change.tab === "email" || change.tab === "web";
    const pageChanged = framed && frameDocument(change.tab) !== frameShows;
    Object.assign(prefs, change);
    savePrefs();
    applyPrefs();
    if ((schemeChanged || pageChanged) && shownEmailVersion >= 0) loadFrame(shownEmailVersion);
  }

  // ---- the email frame: double-buffered so the scroll position survives a reload ----------

  function frameDocument(tab) {
    return tab === "web" ? "/web.html" : "/email.html";
  }

  function loadFrame(version) {
    const current = byId("email-frame");
    if (pendingFrame) pendingFrame.remove();
    const next = document.createElement("iframe");
    next.className = "email-frame loading";
    next.title = prefs.tab === "web" ? "The web edition" : "The email";
    frameShows = frameDocument(prefs.tab);
    next.setAttribute("sandbox", current.getAttribute("sandbox"));
    next.id = "email-frame-next";
    pendingFrame = next;
    next.addEventListener(
      "load",
      () => {
        if (pendingFrame !== next) return;
        const old = byId("email-frame");
        try {
          const from = old.contentWindow;
          next.contentWindow.scrollTo(from.scrollX, from.scrollY);
        } catch (_) {
          /* first load: nothing to keep */
        }
        old.remove();
        next.id = "email-frame";
        next.classList.remove("loading");
        pendingFrame = null;
      },
      { once: true }
    );
    next.src =
      frameDocument(prefs.tab) +
      "?v=" +
      encodeURIComponent(version) +
      "&scheme=" +
      encodeURIComponent(prefs.scheme);
    byId("frame-box").appendChild(next);
  }

  // ---- state from the server ---------------------------------------------------------------

  function showErrors(errors, hasEmail) {
    const list = byId("overlay-errors");
    list.replaceChildren();
    for (const error of errors) {
      const item = document.createElement("li");
      item.textContent = error.text;
      list.appendChild(item);
    }
    byId("overlay-note").textContent = hasEmail
      ? "Showing the last good render underneath. Fix and save: the preview recovers by itself."
      : "Nothing could be rendered yet. Fix and save: the preview updates by itself.";
    byId("overlay").hidden = errors.length === 0;
  }

  function showChecks(checks) {
    const list = byId("check-list");
    list.replaceChildren();
    for (const check of checks) {
      const item = document.createElement("li");
      item.className = check.level;
      const title = document.createElement("span");
      title.className = "title";
      const level = document.createElement("span");
      level.className = "level";
      level.textContent = check.level;
      title.append(level, document.createTextNode(check.title));
      const detail = document.createElement("span");
      detail.className = "detail";
      detail.textContent = check.detail;
      item.append(title, detail);
      if (check.items && check.items.length) {
        const sub = document.createElement("ul");
        for (const text of check.items) {
          const li = document.createElement("li");
          li.textContent = text;
          sub.appendChild(li);
        }
        item.appendChild(sub);
      }
      list.appendChild(item);
    }
  }

  function showEmail(email, version) {
    const sender = email.from.replace(/\s*<[^>]*>\s*$/, "").replace(/^"|"$/g, "") || email.from;
    setText("inbox-sender", sender);
    setText("inbox-subject", email.subject);
    setText("inbox-preheader", email.preheader);
    setText("hdr-from", email.from);
    setText("hdr-to", email.to);
    setText("hdr-subject", email.subject);
    setText("hdr-preheader", email.preheader || "(none)");
    setText("plain-text", email.text);
    setText("html-source", email.html_source);
    showChecks(email.checks);
    setText("render-time", "Rendered in " + email.render_ms + " ms at " + new Date().toLocaleTimeString());
    document.title = email.subject + " · digest preview";
    if (version !== shownEmailVersion) {
      shownEmailVersion = version;
      loadFrame(version);
    }
  }

  function showState(state) {
    if (state.instance !== serverInstance) {
      // The server was restarted: its version numbers start again.
      serverInstance = state.instance;
      shownEmailVersion = -1;
    }
    setText("edition-path", state.edition);
    if (state.email && state.email_version !== shownEmailVersion) {
      showEmail(state.email, state.email_version);
    }
    showErrors(state.errors || [], Boolean(state.email));
    document.body.dataset.version = String(state.version);
  }

  function connect() {
    const status = byId("status");
    const source = new EventSource("/events");
    source.addEventListener("open", () => {
      status.textContent = "live";
      status.className = "status live";
    });
    source.addEventListener("error", () => {
      status.textContent = "reconnecting…";
      status.className = "status down";
    });
    source.addEventListener("state", (event) => showState(JSON.parse(event.data)));
  }

  // ---- controls ----------------------------------------------------------------------------

  function wireControls() {
    for (const button of document.querySelectorAll("[data-tab]")) {
      button.addEventListener("click", () => choose({ tab: button.dataset.tab }));
    }
    for (const button of document.querySelectorAll("[data-width]")) {
      button.addEventListener("click", () => choose({ width: button.dataset.width }));
    }
    for (const button of document.querySelectorAll("[data-scheme]")) {
      button.addEventListener("click", () => choose({ scheme: button.dataset.scheme }));
    }
    // Dragging the frame's edge (CSS resize) makes a custom width, kept like the others.
    const box = byId("frame-box");
    let dragging = false;
    box.addEventListener("pointerdown", () => (dragging = true));
    window.addEventListener("pointerup", () => {
      if (!dragging) return;
      dragging = false;
      const width = Math.round(box.getBoundingClientRect().width) - 2;
      if (width !== frameWidth()) choose({ width: "custom", customWidth: width });
    });
    new ResizeObserver(updateReadout).observe(box);
    document.addEventListener("keydown", (event) => {
      if (event.altKey || event.ctrlKey || event.metaKey) return;
      const keys = {
        1: { tab: "email" },
        2: { tab: "text" },
        3: { tab: "source" },
        4: { tab: "web" },
        d: { width: "desktop" },
        m: { width: "mobile" },
        t: { scheme: prefs.scheme === "dark" ? "light" : "dark" },
      };
      const change = keys[event.key];
      if (change) {
        event.preventDefault();
        choose(change);
      }
    });
  }

  wireControls();
  applyPrefs();
  connect();
})();
