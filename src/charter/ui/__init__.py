"""The web dashboard at ``/ui``: server-rendered pages and the assets they load."""
