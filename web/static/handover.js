// The handover page's one behaviour: its Print button. Kept in a file of its
// own so the page runs under the strict CSP (no inline script).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const b = document.getElementById("print");
  if (b) b.addEventListener("click", () => window.print());
});
