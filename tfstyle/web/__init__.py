"""tfstyle in the browser: ``tfstyle-web`` serves a page that stylizes a photo (or
several, or a video clip) while the picture grows live.

Needs ``pip install 'tfstyle[web]'`` (Starlette, uvicorn, python-multipart). No other
part of tfstyle imports this one, and this one reaches the rest of tfstyle through
``library`` alone (``main`` its model flags through ``tfstyle.cli.model_flags``).
``app.create_app(app.Config(...))`` builds the ASGI app;
``main`` is the console script. Jobs run on the library (``tfstyle.Stylizer``) or on a
TF Serving (``tfstyle.TFServingClient``): ``engines``. What the page may ask for:
``settings``; what a job does: ``work``; its queue and events: ``jobs``; uploads and
their checks: ``uploads``; the token, Host and Origin checks: ``guard``.
"""
