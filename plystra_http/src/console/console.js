// The Plystra Console's one script: small conveniences only; every page works without it.
"use strict";
document.documentElement.classList.add("has-js");
document.addEventListener("DOMContentLoaded", function () {
  // Expand or collapse the whole group tree.
  document.querySelectorAll("button[data-tree]").forEach(function (button) {
    button.addEventListener("click", function () {
      var open = button.getAttribute("data-tree") === "open";
      document.querySelectorAll("ul.tree details").forEach(function (d) { d.open = open; });
    });
  });
  // Ask before a change that cannot be undone from here (a revoke).
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
});
