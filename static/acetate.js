// Acetate's pages work without JavaScript; this makes them nicer where it runs:
// - forms marked data-busy show that a long operation is under way and cannot be sent twice;
// - tables marked data-live refresh their rows every 5 seconds (live usage) without a reload;
// - tables marked data-table get a filter, sortable headers and pages (see below).
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
      if (fresh && !body.contains(document.activeElement)) {
        body.replaceChildren(...fresh.childNodes);
        applyTable(body.closest("table"));
      }
    })
    .catch(() => {});
}

for (const body of document.querySelectorAll("tbody[data-live]")) {
  setInterval(() => refresh(body), 5000);
}

// Tables marked data-table stay usable with hundreds of rows: a filter box (rows whose text
// contains every word typed), headers that sort on a click (again: the other way; numbers
// in order, cells may give their own sort key in data-sort), and pages of 50 rows. The
// state lives on the table, so a live refresh of its rows keeps it.
const PAGE = 50;

function tableRows(table) {
  return Array.from(table.tBodies[0] ? table.tBodies[0].rows : []);
}

function cellKey(row, i) {
  const cell = row.cells[i];
  if (!cell) return "";
  return cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
}

function applyTable(table) {
  const st = table.acetate;
  const body = table.tBodies[0];
  if (!st || !body) return;
  let rows = tableRows(table);
  if (st.column !== null) {
    const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
    rows.sort((a, b) => st.direction * collator.compare(cellKey(a, st.column), cellKey(b, st.column)));
    rows.forEach((r) => body.appendChild(r));
  }
  const words = st.filter.toLowerCase().split(/\s+/).filter((w) => w);
  const shown = rows.filter((r) => {
    const text = r.textContent.toLowerCase();
    return words.every((w) => text.includes(w));
  });
  const pages = Math.max(1, Math.ceil(shown.length / PAGE));
  st.page = Math.min(st.page, pages - 1);
  const first = st.page * PAGE;
  rows.forEach((r) => (r.hidden = true));
  shown.slice(first, first + PAGE).forEach((r) => (r.hidden = false));
  st.status.textContent =
    shown.length === rows.length
      ? `${rows.length} rows` + (pages > 1 ? `, page ${st.page + 1} of ${pages}` : "")
      : `${shown.length} of ${rows.length} rows` + (pages > 1 ? `, page ${st.page + 1} of ${pages}` : "");
  st.previous.hidden = st.next.hidden = pages < 2;
  st.previous.disabled = st.page === 0;
  st.next.disabled = st.page >= pages - 1;
  table.querySelectorAll("thead th").forEach((th, i) => {
    th.setAttribute("aria-sort", i === st.column ? (st.direction > 0 ? "ascending" : "descending") : "none");
  });
}

function enhanceTable(table) {
  const tools = document.createElement("div");
  tools.className = "table-tools";
  const filter = document.createElement("input");
  filter.type = "search";
  filter.placeholder = "Filter";
  filter.setAttribute("aria-label", "Filter the rows");
  const status = document.createElement("span");
  status.className = "hint";
  status.setAttribute("aria-live", "polite");
  const previous = document.createElement("button");
  previous.type = "button";
  previous.textContent = "‹ previous";
  const next = document.createElement("button");
  next.type = "button";
  next.textContent = "next ›";
  tools.append(filter, " ", status, " ", previous, next);
  table.before(tools);
  table.acetate = { column: null, direction: 1, filter: "", page: 0, status, previous, next };
  filter.addEventListener("input", () => {
    table.acetate.filter = filter.value;
    table.acetate.page = 0;
    applyTable(table);
  });
  previous.addEventListener("click", () => {
    table.acetate.page -= 1;
    applyTable(table);
  });
  next.addEventListener("click", () => {
    table.acetate.page += 1;
    applyTable(table);
  });
  table.querySelectorAll("thead th").forEach((th, i) => {
    if (!th.textContent.trim()) return;
    th.classList.add("sortable");
    th.tabIndex = 0;
    const sort = () => {
      const st = table.acetate;
      st.direction = st.column === i ? -st.direction : 1;
      st.column = i;
      applyTable(table);
    };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        sort();
      }
    });
  });
  applyTable(table);
}

for (const table of document.querySelectorAll("table[data-table]")) {
  enhanceTable(table);
}
