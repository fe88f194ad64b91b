"""orders-console: the operator console, a Flask app that reads both services over HTTP only."""
