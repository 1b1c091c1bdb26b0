// Policies pages: put the cursor at a diagnostic's line and column when its place is
// clicked (charter.js asks data-confirm's question before a form is sent). The checking itself is the
// server's (htmx posts the editor's text to /ui/policies/<policy>/check as the user types).
(function () {
  "use strict";
  document.addEventListener("click", (event) => {
    const link = event.target.closest("#rule-check a.where");
    const editor = document.getElementById("rule-editor");
    if (!link || !editor) return;
    event.preventDefault();
    const line = Number(link.dataset.line) || 1, column = Number(link.dataset.column) || 1;
    const lines = editor.value.split("\n");
    let offset = 0;
    for (let i = 0; i < Math.min(line - 1, lines.length); i++) offset += lines[i].length + 1;
    offset = Math.min(offset + column - 1, editor.value.length);
    editor.focus();
    editor.setSelectionRange(offset, offset);
  });
})();
