// The browser terminal: xterm.js over the panel's WebSocket (see README, "Terminal and
// streamed exec"). Output frames carry a stream byte first; input goes as binary frames,
// resizes as JSON text frames.
(function () {
  "use strict";
  const el = document.getElementById("terminal");
  if (!el || typeof Terminal === "undefined") {
    return;
  }
  const term = new Terminal({ cursorBlink: true, scrollback: 5000, fontFamily: "monospace" });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(el);
  fit.fit();
  window.acetateTerminal = term;
  const status = document.getElementById("terminal-status");
  const path = el.dataset.ws;
  const sep = path.includes("?") ? "&" : "?";
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(
    scheme + "//" + location.host + path + sep + "cols=" + term.cols + "&rows=" + term.rows
  );
  ws.binaryType = "arraybuffer";
  const encoder = new TextEncoder();
  const send = (data) => {
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(data);
    }
  };
  ws.onopen = () => {
    el.dataset.state = "open";
    term.focus();
  };
  ws.onmessage = (ev) => {
    if (typeof ev.data === "string") {
      const m = JSON.parse(ev.data);
      status.textContent =
        m.type === "exit" ? "The shell exited (code " + m.code + ")." : "The session ended (" + m.reason + ").";
      return;
    }
    term.write(new Uint8Array(ev.data).subarray(1));
  };
  ws.onclose = () => {
    el.dataset.state = "closed";
    if (!status.textContent) {
      status.textContent = "Disconnected.";
    }
  };
  term.onData((d) => send(encoder.encode(d)));
  term.onBinary((d) => send(Uint8Array.from(d, (c) => c.charCodeAt(0))));
  term.onResize(({ cols, rows }) => send(JSON.stringify({ type: "resize", cols: cols, rows: rows })));
  term.attachCustomKeyEventHandler((ev) => {
    if (ev.type !== "keydown" || !ev.ctrlKey || !ev.shiftKey) {
      return true;
    }
    if (ev.code === "KeyC" && term.hasSelection()) {
      navigator.clipboard.writeText(term.getSelection());
      return false;
    }
    if (ev.code === "KeyV" && navigator.clipboard.readText) {
      navigator.clipboard.readText().then((t) => term.paste(t));
      return false;
    }
    return true;
  });
  window.addEventListener("resize", () => fit.fit());
})();
