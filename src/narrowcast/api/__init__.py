"""The HTTP API: event tracking, in-app inbox, web messages, webhooks, unsubscribe.

``narrowcast.api.app.create_app`` builds it. Nothing is imported here, so that
reading ``[api]`` settings does not load FastAPI.
"""
