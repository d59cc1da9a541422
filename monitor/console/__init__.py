"""The web console: server-rendered pages at ``/`` over the daemon's own reads and switch
service (``views`` has the routes, ``pages`` what each page shows, ``charts`` the SVG)."""
