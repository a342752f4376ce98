"""The web dashboard: pages under `/ui` of the same Starlette app, drawn on the server
(HTML and SVG, no build step, nothing from the network), refreshed in place by a small
script, and changing state only through the admin API with the admin token."""
