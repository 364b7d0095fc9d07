// Acetate's pages work without JavaScript; this makes them nicer where it runs:
// - forms marked data-busy show that a long operation is under way and cannot be sent twice;
// - tables marked data-live refresh their rows every 5 seconds (live usage) without a reload.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.busy) return;
  const button = form.querySelector("button[type=submit]");
  if (button) {
    button.disabled = true;
    button.textContent = form.dataset.busy;
  }
  form.setAttribute("aria-busy", "true");
});

function refresh(body) {
  if (document.hidden) return;
  fetch(body.dataset.live, { credentials: "same-origin", headers: { Accept: "text/html" } })
    .then((r) => (r.ok && !r.redirected ? r.text() : Promise.reject(r.status)))
    .then((html) => {
      const fresh = new DOMParser().parseFromString(html, "text/html").querySelector("tbody[data-live]");
      if (fresh && !body.contains(document.activeElement)) body.replaceChildren(...fresh.childNodes);
    })
    .catch(() => {});
}

for (const body of document.querySelectorAll("tbody[data-live]")) {
  setInterval(() => refresh(body), 5000);
}
