"""The HTTP front door: the WSGI app (``app``) and how it is served on waitress (``serving``).

Nothing is imported here, so that importing either module does not import the other's dependencies.
"""
