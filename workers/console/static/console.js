// The console's only script: confirmations, "select all", and live refresh of marked blocks.
"use strict";

document.addEventListener("submit", (event) => {
  const message = event.submitter?.dataset.confirm || event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

document.addEventListener("change", (event) => {
  const name = event.target.dataset?.selectAll;
  if (!name) return;
  for (const box of event.target.form.querySelectorAll(`input[name="${name}"]`)) box.checked = event.target.checked;
});

// <div data-refresh="/console/?partial=1" data-every="5000">: re-fetch the block's HTML while visible.
for (const block of document.querySelectorAll("[data-refresh]")) {
  const every = Number(block.dataset.every || 5000);
  setInterval(async () => {
    if (document.hidden) return;
    try {
      const response = await fetch(block.dataset.refresh, { credentials: "same-origin" });
      if (response.ok && !response.redirected) block.innerHTML = await response.text();
    } catch (error) {
      console.warn("refresh failed", error);
    }
  }, every);
}
