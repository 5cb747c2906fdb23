"""The separation service: an HTTP API and a web page over a pool of worker processes.

``jobs.py`` keeps the jobs in SQLite, ``workers.py`` runs them in processes through the same
stream processor as ``livestems separate``, ``app.py`` is the FastAPI application and the
uvicorn server, ``static/`` the page, ``screenshot.py`` the page's screenshots.
"""
