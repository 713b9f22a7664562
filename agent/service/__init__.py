"""The mutation service: nasagent's validation, scoring, mutation and runs over HTTP.

`create_app` (app.py) builds the FastAPI application; `nasagent serve` runs it with uvicorn.
The modules: `api` (the one door to the rest of nasagent), `models` (request and response
bodies), `runs` (run directories, the job queue and recovery after a crash), `events` (the
server-sent event stream of a run's events.jsonl) and `guard` (bearer token, body size).
FastAPI and uvicorn come with the `serve` extra.
"""
