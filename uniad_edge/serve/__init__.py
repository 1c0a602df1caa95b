"""`uniad-edge serve`: the station as a service (HTTP scoring API, live dashboard, metrics).

Torch-free like the runtime it wraps. FastAPI and uvicorn come with the `serve` extra and are
imported by the modules that need them, so importing this package costs nothing.
"""
