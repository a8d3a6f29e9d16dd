// The follow-up form: show the sections of the chosen outcome, and the
// override reason only when the doctor changes the suggested classification.
// Without this file every section is visible and the form still works.
(function () {
  "use strict";
  function current(form, name) {
    var el = form.querySelector('input[name="' + name + '"]:checked');
    return el ? el.value : "";
  }
  function apply(form) {
    var outcome = current(form, "outcome") ||
      (form.querySelector('input[type=hidden][name="outcome"]') || {}).value || "completed";
    form.querySelectorAll("[data-outcome]").forEach(function (section) {
      var wanted = section.getAttribute("data-outcome").split(" ");
      section.hidden = wanted.indexOf(outcome) === -1;
    });
    var reason = form.querySelector("#override-reason");
    if (reason) {
      reason.hidden = current(form, "classification") === "" &&
        !reason.querySelector(".errorlist");
    }
  }
  // "Same as last visit": tick the last visit's answers (not the risk level
  // or symptoms, which the doctor assesses anew), then let the live
  // suggestion recompute.
  function copyLast(form) {
    var data = document.getElementById("last-values");
    var button = document.getElementById("copy-last");
    if (!data || !button) { return; }
    var values = JSON.parse(data.textContent);
    button.hidden = false;
    button.addEventListener("click", function () {
      Object.keys(values).forEach(function (name) {
        var wanted = [].concat(values[name]).map(String);
        form.querySelectorAll('input[name="' + name + '"]').forEach(function (input) {
          if (input.type === "radio" || input.type === "checkbox") {
            input.checked = wanted.indexOf(input.value) !== -1;
          }
        });
      });
      form.dispatchEvent(new Event("change", { bubbles: true }));
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("followup-form");
    if (!form) { return; }
    apply(form);
    copyLast(form);
    form.addEventListener("change", function () { apply(form); });
  });
})();
