// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  // Confirmation for destructive buttons: <button data-confirm="...">
  document.addEventListener("click", function (ev) {
    var el = ev.target.closest("[data-confirm]");
    if (el && !window.confirm(el.getAttribute("data-confirm"))) {
      ev.preventDefault();
    }
  });
  // Auto-submit filter forms on change: <form data-autosubmit>
  document.addEventListener("change", function (ev) {
    var form = ev.target.closest("form[data-autosubmit]");
    if (form && !form.hasAttribute("hx-get")) { form.requestSubmit(); }
  });
  // Print buttons: <button data-print>
  document.addEventListener("click", function (ev) {
    if (ev.target.closest("[data-print]")) { window.print(); }
  });
})();
