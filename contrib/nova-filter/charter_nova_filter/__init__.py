"""A Nova scheduler filter that asks Charter which hosts a request may land on.

``charter_nova_filter.filter.CharterFilter`` is the Nova filter (it imports Nova);
``charter_nova_filter.client`` is the HTTP part, importable without Nova.
"""
