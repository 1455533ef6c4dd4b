"""The HTTP API (FastAPI on uvicorn): the services' interface for other programs and the web console.

It only translates: every decision, validation and query is the core's, the same the CLI calls. create_app() in
app.py joins one router per resource; what they use (settings, read models, the command sender) is built once in
the app's lifespan and handed in through dependencies (context.py). Errors are Problem Details (problems.py).
"""
