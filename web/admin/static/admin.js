// Workteam admin pages: copy buttons and re-sync progress polling. No external code.
"use strict";
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const input = document.getElementById(button.dataset.copy);
  input.select();
  try { await navigator.clipboard.writeText(input.value); }
  catch (_) { document.execCommand("copy"); }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1500);
});

function pollResync() {
  const box = document.getElementById("resync-job");
  if (!box || !["pending", "running"].includes(box.dataset.state)) return;
  const tick = async () => {
    let job;
    try {
      const response = await fetch(box.dataset.poll, {headers: {"Accept": "application/json"}});
      if (!response.ok) throw new Error(String(response.status));
      job = await response.json();
    } catch (_) { setTimeout(tick, 3000); return; }
    const progress = document.getElementById("resync-progress");
    progress.max = job.total || 1;
    progress.value = job.done;
    for (const key of ["state", "done", "total", "percent"]) {
      document.getElementById("resync-" + key).textContent = job[key];
    }
    if (["pending", "running"].includes(job.state)) setTimeout(tick, 1000);
    else window.location.reload();
  };
  setTimeout(tick, 500);
}
document.addEventListener("DOMContentLoaded", pollResync);
