"""The language server behind ``charter lsp``: Charter's checks and knowledge of tables,
answered to an editor over the Language Server Protocol.

Only :mod:`charter.lsp.server` imports pygls (an optional dependency, ``charter[lsp]``); the
other modules are plain Python over Charter's own code, so they are tested without a
client: :mod:`~charter.lsp.positions` (Charter's places to LSP positions),
:mod:`~charter.lsp.checking` (``charter check`` over unsaved texts),
:mod:`~charter.lsp.index` (the workspace's policy files and where tables are defined),
:mod:`~charter.lsp.catalog` (datasource tables and their columns),
:mod:`~charter.lsp.context` (what is at or before the cursor), :mod:`~charter.lsp.hover`
and :mod:`~charter.lsp.completion`.
"""
