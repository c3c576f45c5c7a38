"""Request and response bodies of the HTTP API (kept apart from the library's core types).

Requests refuse unknown keys; every text and number is bounded, so malformed input is a clear
422, never a 500. Responses carry the fields ``docs/api.md`` lists.
"""
