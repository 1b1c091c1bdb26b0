// Datasources page: choosing a driver in the "New datasource" form loads its config form
// (the form's Choose button does the same without JavaScript).
(function () {
  "use strict";
  document.addEventListener("change", (event) => {
    const select = event.target.closest && event.target.closest("select[data-autosubmit]");
    if (select && select.form) { select.form.requestSubmit ? select.form.requestSubmit() : select.form.submit(); }
  });
})();
